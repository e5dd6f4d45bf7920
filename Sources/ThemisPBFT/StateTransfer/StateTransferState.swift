import ThemisCore
import ThemisProtocolKit

/// What state transfer keeps between events.
struct StateTransferState: Sendable {
    /// Encoded `CheckpointState` of our own checkpoints: the stable one (served to others) and later ones.
    var snapshots: [SequenceNumber: [UInt8]] = [:]
    /// The chunk digests of each state in `snapshots` (sent with the first chunk).
    var chunkDigests: [SequenceNumber: [Digest]] = [:]
    /// Per peer: FETCH replies it may still get in this burst, and the tick they were counted at.
    var fetchBudget: [ReplicaID: (replies: Int, tick: UInt64)] = [:]
    /// Per peer, its latest FETCH that arrived over budget: answered once the budget refills (a correct
    /// requester has one fetch outstanding and would otherwise wait for its timeout).
    var deferredFetches: [ReplicaID: PBFTMessage] = [:]
    /// The highest CHECKPOINT per sender beyond our window (bounded: one per replica).
    var farVotes: [ReplicaID: Authenticated<Checkpoint>] = [:]
    /// A fetch in progress.
    var fetch: Fetch?
    /// A checkpoint a NEW-VIEW proved that we have not reached, to fetch once execution is idle.
    var pending: (sequence: SequenceNumber, digest: Digest, proof: [Authenticated<Checkpoint>])?
    /// COMMITTED-BATCHES votes per sequence number above what we executed, by sender.
    var batchVotes: [SequenceNumber: [ReplicaID: PrePrepare]] = [:]
    /// Tick of the last FETCH-BATCHES broadcast (rate limit).
    var lastBatchFetch: UInt64 = 0
    /// After a state transfer, batches are fetched round after round while rounds bring progress.
    var catchingUp = false
    /// `lastScheduled` when the last round was sent.
    var scheduledAtLastFetch = SequenceNumber.zero

    struct Fetch: Sendable {
        let sequence: SequenceNumber
        let stateDigest: Digest
        let proof: [Authenticated<Checkpoint>]
        /// Replicas that vouched for the digest, asked in turn.
        let peers: [ReplicaID]
        var peerIndex = 0
        /// The verified prefix of the state: every chunk matched its digest. Kept when the peer changes.
        var received: [UInt8] = []
        var totalBytes: UInt64?
        /// The chunk digests, once a peer sent a list that matches the agreed state digest.
        var chunkDigests: [Digest]?
        var deadline: UInt64
        /// When the current peer was first asked: each peer gets a total budget, so a slow (Byzantine)
        /// peer that answers just before every deadline cannot stall us.
        var peerStarted: UInt64 = 0

        var peer: ReplicaID { peers[peerIndex % peers.count] }
    }
}
