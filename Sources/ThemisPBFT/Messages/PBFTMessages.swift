import ThemisCore

/// PBFT's replica-to-replica messages (Castro & Liskov, OSDI'99, section 4).
///
/// They live in the vocabulary module so that the codec (ThemisWire) and the protocol core (ThemisPBFT)
/// share them without depending on each other. Every message names its sender; the shell checks that
/// the authenticated sender is the named one before the core sees it.
public enum PBFTMessage: Hashable, Sendable {
    /// A client request relayed by a backup to the primary.
    case request(Request, relayedBy: ReplicaID)
    case prePrepare(PrePrepare)
    case prepare(Prepare)
    case commit(Commit)
    case checkpoint(Checkpoint)
    case viewChange(ViewChange)
    case newView(NewView)
    case fetchState(FetchState)
    case stateChunk(StateChunk)
    case fetchBatches(FetchBatches)
    case committedBatches(CommittedBatches)
    case recoveryQuery(RecoveryQuery)
    case recoveryReply(RecoveryReply)
    case newViewRelay(NewViewRelay)

    /// The replica that sent (and authenticated) this message.
    public var sender: ReplicaID {
        switch self {
        case .request(_, let relayedBy): return relayedBy
        case .prePrepare(let message): return message.sender
        case .prepare(let message): return message.sender
        case .commit(let message): return message.sender
        case .checkpoint(let message): return message.sender
        case .viewChange(let message): return message.sender
        case .newView(let message): return message.sender
        case .fetchState(let message): return message.sender
        case .stateChunk(let message): return message.sender
        case .fetchBatches(let message): return message.sender
        case .committedBatches(let message): return message.sender
        case .recoveryQuery(let message): return message.sender
        case .recoveryReply(let message): return message.sender
        case .newViewRelay(let message): return message.sender
        }
    }

    /// The view of a normal-case message (PRE-PREPARE, PREPARE, COMMIT); nil for the others.
    public var normalCaseView: View? {
        switch self {
        case .prePrepare(let message): return message.view
        case .prepare(let message): return message.view
        case .commit(let message): return message.view
        case .request, .checkpoint, .viewChange, .newView, .fetchState, .stateChunk, .fetchBatches, .committedBatches,
             .recoveryQuery, .recoveryReply, .newViewRelay:
            return nil
        }
    }

    /// The message kind, for logs.
    public var kindName: String {
        switch self {
        case .request: return "request"
        case .prePrepare: return "pre-prepare"
        case .prepare: return "prepare"
        case .commit: return "commit"
        case .checkpoint: return "checkpoint"
        case .viewChange: return "view-change"
        case .newView: return "new-view"
        case .fetchState: return "fetch-state"
        case .stateChunk: return "state-chunk"
        case .fetchBatches: return "fetch-batches"
        case .committedBatches: return "committed-batches"
        case .recoveryQuery: return "recovery-query"
        case .recoveryReply: return "recovery-reply"
        case .newViewRelay: return "new-view-relay"
        }
    }

    /// Client requests inside this message; each carries its own client authenticator that the shell
    /// verifies before the message reaches the core.
    /// VIEW-CHANGE and NEW-VIEW carry digests only.
    public var embeddedRequests: [Request] {
        switch self {
        case .request(let request, _): return [request]
        case .prePrepare(let message): return message.requests
        case .prepare, .commit, .checkpoint, .fetchState, .stateChunk, .fetchBatches, .viewChange, .newView, .recoveryQuery,
             .recoveryReply, .newViewRelay:
            return []
        case .committedBatches(let message): return message.batches.flatMap(\.requests)
        }
    }
}

/// PRE-PREPARE(v, s, d) with the batch whose digest is d, sent by the primary of v.
public struct PrePrepare: Hashable, Sendable {
    public let view: View
    public let sequence: SequenceNumber
    public let digest: Digest
    public let requests: [Request]
    public let sender: ReplicaID

    public init(view: View, sequence: SequenceNumber, requests: [Request], sender: ReplicaID) {
        self.view = view
        self.sequence = sequence
        self.requests = requests
        self.digest = Request.batchDigest(requests)
        self.sender = sender
    }

    /// The pre-prepare as it is authenticated and forwarded in proofs: without the batch.
    public var header: PrePrepareHeader {
        PrePrepareHeader(view: view, sequence: sequence, digest: digest, requestCount: requests.count, sender: sender)
    }

    /// For the codec: a pre-prepare as received, whose digest field may not match its batch.
    /// The core recomputes the batch digest and rejects a mismatch.
    public init(view: View, sequence: SequenceNumber, digest: Digest, requests: [Request], sender: ReplicaID) {
        self.view = view
        self.sequence = sequence
        self.digest = digest
        self.requests = requests
        self.sender = sender
    }
}

/// PRE-PREPARE(v, s, d) without its batch: what the primary authenticates, what a prepared certificate
/// and a NEW-VIEW's re-proposals carry. As in the PBFT paper, the batch travels next to the pre-prepare
/// (in the normal case) or is fetched by its digest (after a view change); the digest and the request
/// count bind it. Carrying digests keeps VIEW-CHANGE and NEW-VIEW within a frame whatever the batch sizes.
public struct PrePrepareHeader: Hashable, Sendable {
    public let view: View
    public let sequence: SequenceNumber
    public let digest: Digest
    public let requestCount: Int
    public let sender: ReplicaID

    public init(view: View, sequence: SequenceNumber, digest: Digest, requestCount: Int, sender: ReplicaID) {
        self.view = view
        self.sequence = sequence
        self.digest = digest
        self.requestCount = requestCount
        self.sender = sender
    }

    /// True if `requests` is the batch this header names. Only the digest counts (it binds the request
    /// count too): `requestCount` is the sender's word, which a faulty replica may get wrong in a header of
    /// its own, and a replica that trusted it would turn away the batch it holds.
    public func matches(_ requests: [Request]) -> Bool {
        Request.batchDigest(requests) == digest
    }

    /// The pre-prepare with its batch; the caller has checked `matches(requests)`.
    public func with(_ requests: [Request]) -> PrePrepare {
        PrePrepare(view: view, sequence: sequence, digest: digest, requests: requests, sender: sender)
    }
}

/// PREPARE(v, s, d, i): backup i accepted the primary's pre-prepare for (v, s) with digest d.
public struct Prepare: Hashable, Sendable {
    public let view: View
    public let sequence: SequenceNumber
    public let digest: Digest
    public let sender: ReplicaID

    public init(view: View, sequence: SequenceNumber, digest: Digest, sender: ReplicaID) {
        self.view = view
        self.sequence = sequence
        self.digest = digest
        self.sender = sender
    }
}

/// COMMIT(v, s, d, i): replica i has prepared (v, s, d).
public struct Commit: Hashable, Sendable {
    public let view: View
    public let sequence: SequenceNumber
    public let digest: Digest
    public let sender: ReplicaID

    public init(view: View, sequence: SequenceNumber, digest: Digest, sender: ReplicaID) {
        self.view = view
        self.sequence = sequence
        self.digest = digest
        self.sender = sender
    }
}

/// CHECKPOINT(s, d, i): replica i's state after executing s has digest d.
public struct Checkpoint: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let stateDigest: Digest
    public let sender: ReplicaID

    public init(sequence: SequenceNumber, stateDigest: Digest, sender: ReplicaID) {
        self.sequence = sequence
        self.stateDigest = stateDigest
        self.sender = sender
    }
}
