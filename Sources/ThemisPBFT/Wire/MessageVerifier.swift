import ThemisCore
import ThemisCrypto
import ThemisWire

/// Checks every authenticator a replica message carries, before the protocol core sees it: the message's
/// own, those of the client requests inside it, and those of the messages a VIEW-CHANGE or NEW-VIEW
/// forwards as proof. Runs on the connection's event loop, in parallel with other connections.
///
/// Inside a VIEW-CHANGE (or NEW-VIEW), an entry sent by the enclosing message's own sender may carry an
/// empty authenticator: the enclosing authenticator vouches for it (a replica cannot authenticate its
/// own messages to itself, and its VIEW-CHANGE asserts them).
public struct MessageVerifier: Sendable {
    public typealias Verdict = AuthenticationVerdict

    let keyring: Keyring

    public init(keyring: Keyring) {
        self.keyring = keyring
    }

    /// Checks a replica message. Client requests are checked only where this replica is the first to vouch
    /// for them: a forwarded REQUEST, and the batch of a PRE-PREPARE. Elsewhere other replicas already did:
    /// a prepared certificate in a VIEW-CHANGE names 2f+1 replicas that accepted the batch (the core checks
    /// the quorum), a NEW-VIEW's re-proposals must equal what its VIEW-CHANGEs prove (the core recomputes
    /// them), and a fetched batch counts only once f+1 replicas sent the same one.
    ///
    /// This matters with MAC authenticators: a faulty client can make its MAC vector valid for some
    /// replicas and not for others. A replica that re-checked such a request everywhere would reject every
    /// VIEW-CHANGE and NEW-VIEW carrying it and drop out of the protocol.
    public func verification(of message: PBFTMessage, authenticator: [UInt8]) -> Verdict {
        guard verify(message, authenticator, from: message.sender) else { return .forged }
        switch message {
        case .request(let request, _):
            return isAuthentic(request) ? .authentic : .forged
        case .prePrepare(let prePrepare):
            return areAuthentic(prePrepare.requests) ? .authentic : .requestsUnverified
        case .prepare, .commit, .checkpoint, .fetchState, .stateChunk, .fetchBatches, .committedBatches, .recoveryQuery:
            // Fetched batches need no authenticator of their own: f+1 matching copies make one believable.
            return .authentic
        case .viewChange(let viewChange):
            return isAuthentic(viewChange) ? .authentic : .forged
        case .recoveryReply(let reply):
            // The stable checkpoint's proof, as in a VIEW-CHANGE (the sender's own entry may be implied).
            for entry in reply.checkpointProof {
                guard isAuthentic(.checkpoint(entry.message), entry.authenticator, owner: reply.sender) else { return .forged }
            }
            return .authentic
        case .newViewRelay(let relay):
            // The NEW-VIEW as its primary sent it (the relayer's authenticator, checked above, covers the whole).
            return verification(of: .newView(relay.newView.message), authenticator: relay.newView.authenticator)
        case .newView(let newView):
            // Every re-proposal in O carries the new primary's own authenticator (it may be forwarded later).
            for entry in newView.prePrepares {
                guard entry.message.sender == newView.sender,
                    keyring.verify(WireCodec.authenticatedBytes(of: entry.message), authenticator: entry.authenticator,
                                   from: .replica(newView.sender))
                else { return .forged }
            }
            for entry in newView.viewChanges {
                let viewChange = entry.message
                let implied = viewChange.sender == newView.sender && entry.authenticator.isEmpty
                guard implied || verify(.viewChange(viewChange), entry.authenticator, from: viewChange.sender),
                    isAuthentic(viewChange)
                else { return .forged }
            }
            return .authentic
        }
    }

    /// True if `verification(of:authenticator:)` finds everything authentic.
    public func isAuthentic(_ message: PBFTMessage, authenticator: [UInt8]) -> Bool {
        verification(of: message, authenticator: authenticator) == .authentic
    }

    /// The proofs inside one VIEW-CHANGE, relative to its sender.
    private func isAuthentic(_ viewChange: ViewChange) -> Bool {
        let owner = viewChange.sender
        for entry in viewChange.checkpointProof {
            guard isAuthentic(.checkpoint(entry.message), entry.authenticator, owner: owner) else { return false }
        }
        for certificate in viewChange.prepared {
            let header = certificate.prePrepare
            let implied = header.message.sender == owner && header.authenticator.isEmpty
            guard implied || keyring.verify(WireCodec.authenticatedBytes(of: header.message), authenticator: header.authenticator,
                                            from: .replica(header.message.sender))
            else { return false }
            for prepare in certificate.prepares {
                guard isAuthentic(.prepare(prepare.message), prepare.authenticator, owner: owner) else { return false }
            }
        }
        return true
    }

    private func isAuthentic(_ message: PBFTMessage, _ authenticator: [UInt8], owner: ReplicaID) -> Bool {
        if message.sender == owner && authenticator.isEmpty { return true }
        return verify(message, authenticator, from: message.sender)
    }

    public func areAuthentic(_ requests: [Request]) -> Bool { keyring.areAuthentic(requests) }

    public func isAuthentic(_ request: Request) -> Bool { keyring.isAuthentic(request) }

    private func verify(_ message: PBFTMessage, _ authenticator: [UInt8], from sender: ReplicaID) -> Bool {
        keyring.verify(WireCodec.authenticatedBytes(of: message), authenticator: authenticator, from: .replica(sender))
    }

    /// What a driver does to a message the core broadcasts, before authenticating the whole: a NEW-VIEW's
    /// re-proposals in O get authenticators of their own (each becomes a PRE-PREPARE the backups keep as
    /// proof). Every other message is sent as the core made it.
    public func prepareForBroadcast(_ message: PBFTMessage) -> PBFTMessage {
        guard case .newView(let newView) = message else { return message }
        return .newView(authenticateReproposals(newView))
    }

    /// The new primary authenticates each re-proposal of O on its own before sending the NEW-VIEW.
    public func authenticateReproposals(_ newView: NewView) -> NewView {
        let prePrepares = newView.prePrepares.map { entry in
            Authenticated(entry.message, authenticator: keyring.authenticator(
                for: WireCodec.authenticatedBytes(of: entry.message), audience: .allReplicas))
        }
        return NewView(view: newView.view, viewChanges: newView.viewChanges, prePrepares: prePrepares, sender: newView.sender)
    }
}
