// Fixtures for the state-transfer messages: FETCH-STATE, STATE-CHUNK (empty, small, and at the chunk
// limit), FETCH-BATCHES and COMMITTED-BATCHES (none, one, several with full, empty and null batches).
import ThemisCore
import ThemisPBFT
import ThemisWire

extension Fixtures {
    static let fetchState = FetchState(sequence: SequenceNumber(2000), stateDigest: digest(4), offset: 65_536, sender: ReplicaID(2))
    static let stateChunk = StateChunk(
        sequence: SequenceNumber(2000), stateDigest: digest(4), totalBytes: 70_000, offset: 65_536, bytes: [0x10, 0x00, 0xFF, 0x7F, 0x01],
        sender: ReplicaID(1)
    )
    static let emptyStateChunk = StateChunk(
        sequence: SequenceNumber(0), stateDigest: .zero, totalBytes: 0, offset: 0, bytes: [], sender: ReplicaID(3)
    )
    static let fetchBatches = FetchBatches(from: SequenceNumber(2001), sender: ReplicaID(2))

    /// The committed batch at `sequence`, proposed by the primary of `view`.
    static func committedBatch(_ sequence: UInt64, view: UInt64 = 3, requests: [Request]) -> PrePrepare {
        PrePrepare(view: View(view), sequence: SequenceNumber(sequence), requests: requests, sender: ReplicaID(UInt32(view % 4)))
    }

    /// Several batches: one of three requests (one with an empty operation, one with an empty
    /// authenticator), a null batch, one from an earlier view, one of a single request.
    static let committedBatches = CommittedBatches(
        batches: [
            committedBatch(2001, requests: [request(1), request(2, operation: []), request(3, authenticator: [])]),
            committedBatch(2002, requests: []),
            committedBatch(2003, view: 2, requests: [request(4)]),
            committedBatch(2004, requests: [request(5, operation: [0xAA, 0xBB])]),
        ],
        sender: ReplicaID(3)
    )
    static let noCommittedBatches = CommittedBatches(batches: [], sender: ReplicaID(0))

    /// A chunk of exactly `count` bytes.
    static func stateChunk(bytes count: Int) -> StateChunk {
        StateChunk(
            sequence: SequenceNumber(1000), stateDigest: digest(5), totalBytes: UInt64(count) * 3, offset: UInt64(count),
            bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) }, sender: ReplicaID(1)
        )
    }

    /// `count` batches of `requestsPerBatch` requests each.
    static func committedBatches(count: Int, requestsPerBatch: Int) -> CommittedBatches {
        CommittedBatches(
            batches: (0..<count).map { index in
                committedBatch(UInt64(index) + 1, requests: (0..<requestsPerBatch).map { request(UInt32($0)) })
            },
            sender: ReplicaID(1)
        )
    }

    /// Small state-transfer messages (also part of `samples`), with empty and non-empty authenticators.
    static let stateTransferSamples: [WireMessage] = [
        .pbft(.fetchState(fetchState), authenticator: [0x17]),
        .pbft(.fetchState(FetchState(sequence: SequenceNumber(0), stateDigest: .zero, offset: 0, sender: ReplicaID(0))), authenticator: []),
        .pbft(.stateChunk(stateChunk), authenticator: [0x18, 0x18]),
        .pbft(.stateChunk(emptyStateChunk), authenticator: []),
        .pbft(.fetchBatches(fetchBatches), authenticator: [0x19]),
        .pbft(.fetchBatches(FetchBatches(from: SequenceNumber(UInt64.max), sender: ReplicaID(UInt32.max))), authenticator: []),
        .pbft(.committedBatches(committedBatches), authenticator: [0x1A, 0x00, 0x1A]),
        .pbft(.committedBatches(CommittedBatches(batches: [committedBatch(7, requests: [])], sender: ReplicaID(2))), authenticator: [1]),
        .pbft(.committedBatches(noCommittedBatches), authenticator: []),
        .pbft(.recoveryQuery(RecoveryQuery(nonce: 0xFEED_0000_0000_0001, target: SequenceNumber(2024), view: View(5), sender: ReplicaID(3))), authenticator: [0x1B]),
        .pbft(.recoveryQuery(RecoveryQuery(nonce: 0, target: .zero, view: View(0), sender: ReplicaID(0))), authenticator: []),
        .pbft(.recoveryReply(RecoveryReply(nonce: 7, view: View(3), lastExecuted: SequenceNumber(2005),
                                           stableCheckpoint: SequenceNumber(2000), stableDigest: digest(4),
                                           checkpointProof: [Authenticated(Checkpoint(sequence: SequenceNumber(2000), stateDigest: digest(4), sender: ReplicaID(1)), authenticator: [0x14]),
                                                             Authenticated(Checkpoint(sequence: SequenceNumber(2000), stateDigest: digest(4), sender: ReplicaID(2)), authenticator: [])],
                                           sender: ReplicaID(2))), authenticator: [0x1C, 0x1C]),
        .pbft(.recoveryReply(RecoveryReply(nonce: 0, view: View(0), lastExecuted: .zero, stableCheckpoint: .zero,
                                           stableDigest: .zero, checkpointProof: [], sender: ReplicaID(0))), authenticator: []),
        .pbft(.newViewRelay(NewViewRelay(newView: Authenticated(NewView(view: View(2), viewChanges: [], prePrepares: [], sender: ReplicaID(2)),
                                                                authenticator: [0x16]), sender: ReplicaID(1))), authenticator: [0x1D]),
    ]
}
