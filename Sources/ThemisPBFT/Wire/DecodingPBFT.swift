import NIOCore
import ThemisCore
import ThemisWire

/// The replica-to-replica messages (their authenticator is read by the caller).
extension PayloadReader {
    mutating func readPBFTFields(_ kind: PBFTKind) throws(WireError) -> PBFTMessage {
        switch kind {
        case .relayedRequest:
            let relayedBy = try readReplicaID()
            return .request(try readRequest(), relayedBy: relayedBy)
        case .prePrepare:
            return .prePrepare(try readPrePrepare())
        case .prepare:
            let slot = try readSlot()
            return .prepare(Prepare(view: slot.view, sequence: slot.sequence, digest: slot.digest, sender: slot.sender))
        case .commit:
            let slot = try readSlot()
            return .commit(Commit(view: slot.view, sequence: slot.sequence, digest: slot.digest, sender: slot.sender))
        case .checkpoint:
            let sequence = try readSequence()
            let stateDigest = try readDigest()
            let sender = try readReplicaID()
            return .checkpoint(Checkpoint(sequence: sequence, stateDigest: stateDigest, sender: sender))
        case .viewChange:
            return .viewChange(try readViewChange())
        case .newView:
            return .newView(try readNewView())
        case .fetchState:
            return .fetchState(try readFetchState())
        case .stateChunk:
            return .stateChunk(try readStateChunk())
        case .fetchBatches:
            let from = try readSequence()
            return .fetchBatches(FetchBatches(from: from, sender: try readReplicaID()))
        case .committedBatches:
            return .committedBatches(try readCommittedBatches())
        case .recoveryQuery:
            return .recoveryQuery(try readRecoveryQuery())
        case .recoveryReply:
            return .recoveryReply(try readRecoveryReply())
        case .newViewRelay:
            return .newViewRelay(try readNewViewRelay())
        }
    }

    /// The (view, sequence, digest, sender) fields shared by the three normal-case messages.
    mutating func readSlot() throws(WireError) -> (view: View, sequence: SequenceNumber, digest: Digest, sender: ReplicaID) {
        let view = try readView()
        let sequence = try readSequence()
        let digest = try readDigest()
        let sender = try readReplicaID()
        return (view, sequence, digest, sender)
    }

    /// A pre-prepare's fields: slot, request count (at most `limits.batchRequestsMax`; 0 is allowed,
    /// the core decides whether an empty batch is acceptable), requests.
    mutating func readPrePrepare() throws(WireError) -> PrePrepare {
        let slot = try readSlot()
        let count = try readLength(field: "batch", max: limits.batchRequestsMax)
        var requests: [Request] = []
        // Reserve no more than the remaining bytes can hold, so a lying count allocates little.
        requests.reserveCapacity(Swift.min(count, buffer.readableBytes / WireCodec.requestBytesMin))
        for _ in 0..<count {
            requests.append(try readRequest())
        }
        return PrePrepare(view: slot.view, sequence: slot.sequence, digest: slot.digest, requests: requests, sender: slot.sender)
    }

    /// A pre-prepare header: slot and request count, no requests (inside certificates and NEW-VIEWs).
    mutating func readPrePrepareHeader() throws(WireError) -> PrePrepareHeader {
        let slot = try readSlot()
        let count = try readLength(field: "batch", max: limits.batchRequestsMax)
        return PrePrepareHeader(view: slot.view, sequence: slot.sequence, digest: slot.digest, requestCount: count, sender: slot.sender)
    }
}
