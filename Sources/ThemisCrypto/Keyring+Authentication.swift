import Crypto
import ThemisCore

extension Keyring {
    /// Authenticates bytes for an audience.
    ///
    /// Signature schemes: a signature with my signing key (the audience is ignored). `hmac`:
    /// `.allReplicas` gives n MACs of 32 bytes, entry i for replica i (my own entry, if I am a replica, is
    /// made with my key with myself, so I can recognise my message when it is forwarded back to me);
    /// `.principal(p)` gives one 32-byte MAC for p.
    /// - Parameters:
    ///   - bytes: the canonical bytes of the message (they MUST name the sender and the message kind).
    ///   - audience: who will check the authenticator.
    /// - Returns: the authenticator; empty (accepted by no one) if the audience is not a peer of mine, or
    ///   if the crypto library fails internally.
    public func authenticator(for bytes: [UInt8], audience: Audience) -> [UInt8] {
        switch scheme {
        case .ed25519, .ecdsa, .rsa, .simulatedInsecure:
            return signer?.signature(for: bytes) ?? []
        case .hmac:
            switch audience {
            case .allReplicas:
                return macVector(for: bytes)
            case .principal(let peer):
                guard let link = link(with: peer) else { return [] }
                return link.messageMAC(bytes)
            }
        }
    }

    private func macVector(for bytes: [UInt8]) -> [UInt8] {
        let replicaCount = cluster.configuration.replicaCount
        var vector: [UInt8] = []
        vector.reserveCapacity(replicaCount * LinkKey.macByteCount)
        for index in 0..<replicaCount {
            if index == myReplicaIndex, let selfLink {
                selfLink.appendMessageMAC(bytes, to: &vector)
            } else if let link = link(with: .replica(ReplicaID(UInt32(index)))) {
                link.appendMessageMAC(bytes, to: &vector)
            } else {
                vector.append(contentsOf: repeatElement(0, count: LinkKey.macByteCount))
            }
        }
        return vector
    }

    /// Checks an authenticator made by `sender` with `authenticator(for:audience:)`.
    ///
    /// With `hmac`, a replica accepts a 32-byte MAC or a vector of n MACs (it checks its own entry); a
    /// client accepts only a 32-byte MAC. Never traps: any length and content is just invalid.
    /// - Parameters:
    ///   - bytes: the canonical bytes the sender authenticated.
    ///   - authenticator: the bytes received.
    ///   - sender: who claims to have made it.
    /// - Returns: true only if the authenticator is valid for these bytes from this sender.
    public func verify(_ bytes: [UInt8], authenticator: [UInt8], from sender: Principal) -> Bool {
        switch scheme {
        case .ed25519, .ecdsa, .rsa, .simulatedInsecure:
            guard isPeerOrMe(sender), let key = cluster.publicKeys(of: sender)?.signing else { return false }
            guard let signatureMemo else { return key.isValidSignature(authenticator, for: bytes) }
            return signatureMemo.isValid(authenticator, for: bytes, by: sender) { key.isValidSignature(authenticator, for: bytes) }
        case .hmac:
            guard let link = sender == me ? selfLink : link(with: sender) else { return false }
            if authenticator.count == LinkKey.macByteCount {
                return link.isValidMessageMAC(authenticator, for: bytes)
            }
            let replicaCount = cluster.configuration.replicaCount
            guard let index = myReplicaIndex, authenticator.count == replicaCount * LinkKey.macByteCount else {
                return false
            }
            let start = index * LinkKey.macByteCount
            return link.isValidMessageMAC(authenticator[start..<(start + LinkKey.macByteCount)], for: bytes)
        }
    }

    /// Whether signed messages from this principal are accepted: a replica hears from everyone in the
    /// cluster (itself included, for certificates), a client only from replicas.
    private func isPeerOrMe(_ sender: Principal) -> Bool {
        switch (me, sender) {
        case (.client, .client): return false
        case (.replica, _), (.client, .replica): return true
        }
    }

    /// Proves to a peer, during a connection handshake, that I hold the X25519 private key named for me in
    /// the cluster file: HMAC-SHA256 with our link key over my identity and the transcript (all schemes).
    /// - Parameters:
    ///   - transcript: the handshake bytes both sides saw (they MUST include fresh nonces of both sides).
    ///   - peer: whom the proof is for.
    /// - Returns: 32 bytes; empty if the peer is not one I talk to.
    public func handshakeProof(transcript: [UInt8], peer: Principal) -> [UInt8] {
        guard let link = link(with: peer) else { return [] }
        return link.handshakeMAC(prover: me, transcript: transcript)
    }

    /// Checks a peer's handshake proof.
    /// - Returns: true only if `peer` made `proof` over `transcript` for me.
    public func verifyHandshakeProof(_ proof: [UInt8], transcript: [UInt8], from peer: Principal) -> Bool {
        guard proof.count == LinkKey.macByteCount, let link = link(with: peer) else { return false }
        return PrekeyedMAC.constantTimeEquals(link.handshakeMAC(prover: peer, transcript: transcript), proof)
    }
}

extension Keyring {
    /// A single HMAC-SHA256 with the pairwise link key, whatever the cluster's scheme: for messages that
    /// only `peer` must believe and never needs to show to a third party (replies to a client). It costs
    /// about a microsecond where a signature costs tens.
    /// - Returns: 32 bytes; empty if `peer` is not a principal I share a link key with.
    public func linkAuthenticator(for bytes: [UInt8], peer: Principal) -> [UInt8] {
        guard let link = link(with: peer) else { return [] }
        return link.messageMAC(bytes)
    }

    /// Checks an authenticator made with `linkAuthenticator(for:peer:)` by `sender` for me.
    public func verifyLinkAuthenticator(_ bytes: [UInt8], authenticator: [UInt8], from sender: Principal) -> Bool {
        guard authenticator.count == LinkKey.macByteCount, let link = link(with: sender) else { return false }
        return link.isValidMessageMAC(authenticator, for: bytes)
    }
}
