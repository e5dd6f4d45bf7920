import ThemisCore

/// PBFT's view-change messages (Castro & Liskov, OSDI'99, section 4.4; TOCS 2002 section 4.5).

/// Proof that a batch prepared at a replica: the primary's PRE-PREPARE (its header: the digest, not the
/// batch) and PREPAREs from distinct backups, all matching (view, sequence, digest). A replica that needs
/// the batch later fetches it by its digest.
public struct PreparedCertificate: Hashable, Sendable {
    public let prePrepare: Authenticated<PrePrepareHeader>
    public let prepares: [Authenticated<Prepare>]

    public init(prePrepare: Authenticated<PrePrepareHeader>, prepares: [Authenticated<Prepare>]) {
        self.prePrepare = prePrepare
        self.prepares = prepares
    }

    public var view: View { prePrepare.message.view }
    public var sequence: SequenceNumber { prePrepare.message.sequence }
    public var digest: Digest { prePrepare.message.digest }
}

/// VIEW-CHANGE(v+1, n, C, P, i): replica i moves to `newView`; its last stable checkpoint is
/// `stableCheckpoint` with state digest `stableDigest`, proven by `checkpointProof` (a quorum of matching
/// CHECKPOINT messages; empty for sequence 0); `prepared` holds, for every sequence number above it, the
/// certificate of the highest view in which the batch prepared at i.
public struct ViewChange: Hashable, Sendable {
    public let newView: View
    public let stableCheckpoint: SequenceNumber
    public let stableDigest: Digest
    public let checkpointProof: [Authenticated<Checkpoint>]
    public let prepared: [PreparedCertificate]
    public let sender: ReplicaID

    public init(newView: View, stableCheckpoint: SequenceNumber, stableDigest: Digest,
                checkpointProof: [Authenticated<Checkpoint>], prepared: [PreparedCertificate], sender: ReplicaID) {
        self.newView = newView
        self.stableCheckpoint = stableCheckpoint
        self.stableDigest = stableDigest
        self.checkpointProof = checkpointProof
        self.prepared = prepared
        self.sender = sender
    }
}

/// NEW-VIEW(v+1, V, O): the primary of `view` proves with a quorum of VIEW-CHANGEs (V) that it may
/// start the view, and re-proposes in O, for every sequence number between the latest stable checkpoint
/// in V and the highest prepared one, the batch prepared in the highest view, or an empty (null) batch.
///
/// O carries pre-prepare headers (digests): a replica that lacks a batch fetches it (`FetchBatches`).
/// Each pre-prepare of O carries its own authenticator by the new primary, so that a backup can later
/// show it in a prepared certificate. The core creates them with empty authenticators; the shell of the
/// new primary fills them in before sending.
public struct NewView: Hashable, Sendable {
    public let view: View
    public let viewChanges: [Authenticated<ViewChange>]
    public let prePrepares: [Authenticated<PrePrepareHeader>]
    public let sender: ReplicaID

    public init(view: View, viewChanges: [Authenticated<ViewChange>], prePrepares: [Authenticated<PrePrepareHeader>], sender: ReplicaID) {
        self.view = view
        self.viewChanges = viewChanges
        self.prePrepares = prePrepares
        self.sender = sender
    }
}
