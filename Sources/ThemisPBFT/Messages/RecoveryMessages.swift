import ThemisCore

/// Messages of the recovery protocol for a replica that lost its state (PBFT proactive recovery's
/// high-watermark estimate, Castro & Liskov TOCS 2002 section 4.3.2, adapted; see `Recovery.swift`).

/// RECOVERY-QUERY(nonce, target): a replica that lost its state asks how far the cluster got. `nonce` is
/// fresh per incarnation, so no reply meant for an earlier one counts. `target` is the stable checkpoint the
/// sender waits for once it has computed it (0 before): the primary fills an idle window with null batches
/// so that the cluster reaches it.
public struct RecoveryQuery: Hashable, Sendable {
    public let nonce: UInt64
    public let target: SequenceNumber
    /// The view the sender is in: a replica in a later view relays the NEW-VIEW that started it.
    public let view: View
    public let sender: ReplicaID

    public init(nonce: UInt64, target: SequenceNumber, view: View, sender: ReplicaID) {
        self.nonce = nonce
        self.target = target
        self.view = view
        self.sender = sender
    }
}

/// NEW-VIEW-RELAY: a replica forwards the NEW-VIEW that started its current view, with the new primary's
/// authenticator, to a replica still in an earlier view (one that restarted, or missed the NEW-VIEW while the
/// primary that sent it has crashed since). The receiver checks the NEW-VIEW as if the primary had sent it.
public struct NewViewRelay: Hashable, Sendable {
    public let newView: Authenticated<NewView>
    public let sender: ReplicaID

    public init(newView: Authenticated<NewView>, sender: ReplicaID) {
        self.newView = newView
        self.sender = sender
    }
}

/// RECOVERY-REPLY(nonce, v, executed, stable checkpoint and proof): what the sender knows. `view` is the
/// highest view it is in or moving to. The stable checkpoint comes with its proof (a quorum of
/// CHECKPOINT messages, empty for 0), so a faulty sender cannot claim progress the cluster never made.
public struct RecoveryReply: Hashable, Sendable {
    public let nonce: UInt64
    public let view: View
    public let lastExecuted: SequenceNumber
    public let stableCheckpoint: SequenceNumber
    public let stableDigest: Digest
    public let checkpointProof: [Authenticated<Checkpoint>]
    public let sender: ReplicaID

    public init(nonce: UInt64, view: View, lastExecuted: SequenceNumber, stableCheckpoint: SequenceNumber,
                stableDigest: Digest, checkpointProof: [Authenticated<Checkpoint>], sender: ReplicaID) {
        self.nonce = nonce
        self.view = view
        self.lastExecuted = lastExecuted
        self.stableCheckpoint = stableCheckpoint
        self.stableDigest = stableDigest
        self.checkpointProof = checkpointProof
        self.sender = sender
    }

    /// True if the sender has no history: nothing executed, stable checkpoint 0, view 0 (the first-start rule
    /// counts only such replies).
    public var isBlank: Bool {
        view == View(0) && lastExecuted == .zero && stableCheckpoint == .zero
    }
}
