import ThemisCore
import ThemisProtocolKit

/// What the view-change sub-protocol keeps between events.
struct ViewChangeState: Sendable {
    /// Requests this replica knows of and has not executed, the newest per client. While any waits, the
    /// request timer runs; it restarts whenever one executes (PBFT section 4.5.2).
    var waiting: [ClientID: Request] = [:]
    /// Tick at which the request timer expires, if it runs.
    var requestDeadline: UInt64?
    /// Tick at which, while changing views, this replica gives up on the target view and moves on.
    var viewChangeDeadline: UInt64?
    /// Consecutive view changes without progress: the timeout doubles with each (exponential backoff).
    var attempts = 0
    /// For every sequence number above the stable checkpoint, the certificate of the highest view in
    /// which the batch prepared here.
    var preparedCertificates: [SequenceNumber: PreparedCertificate] = [:]
    /// Batches this replica accepted above the stable checkpoint, by sequence number, the latest
    /// `heldBatchesPerSequenceMax` each, oldest first. Certificates and NEW-VIEWs carry digests only, so the
    /// batches must outlive the view they were proposed in: a later view may re-propose any of them (the
    /// one a certificate names), and then the replicas that hold it attach it and serve it to the others.
    var heldBatches: [SequenceNumber: [(digest: Digest, requests: [Request])]] = [:]
    static let heldBatchesPerSequenceMax = 4

    /// Keeps `requests` (whose digest is `digest`) for `sequence`.
    mutating func hold(_ requests: [Request], digest: Digest, at sequence: SequenceNumber) {
        var held = heldBatches[sequence] ?? []
        guard !held.contains(where: { $0.digest == digest }) else { return }
        if held.count >= Self.heldBatchesPerSequenceMax { held.removeFirst() }
        held.append((digest, requests))
        heldBatches[sequence] = held
    }
    /// As the primary of the current view: the NEW-VIEW that started it, sent again to a replica that still
    /// asks for this view (it missed the NEW-VIEW: lost, or it crashed), at most once per sender and half timeout.
    var sentNewView: NewView?
    var newViewResent: [ReplicaID: UInt64] = [:]
    /// As a backup: the NEW-VIEW (with the new primary's authenticator) that started the current view, relayed
    /// to a replica still in an earlier view (`relayNewView`).
    var acceptedNewView: Authenticated<NewView>?
    /// The VIEW-CHANGE of the highest view per sender (ours included, with an empty authenticator).
    var received: [ReplicaID: Authenticated<ViewChange>] = [:]
    /// Normal-case messages for a view this replica has not entered yet, replayed when it does.
    var future: [Verified<PBFTMessage>] = []
    /// Buffered messages per sender (bounds `future`).
    var futureCount: [ReplicaID: Int] = [:]
    /// Estimated bytes of the buffered messages per sender (bounds `future` by size: one PRE-PREPARE may
    /// hold a quarter of a frame).
    var futureBytes: [ReplicaID: Int] = [:]

    /// Keeps a message for the next view unless its sender is over its count or byte budget (then it is
    /// dropped: a correct sender retransmits it).
    /// - Returns: false if the message was dropped.
    @discardableResult
    mutating func buffer(_ message: Verified<PBFTMessage>, limitPerSender: Int, bytesPerSenderMax: Int) -> Bool {
        let sender = message.message.sender
        let bytes = RetainedBytes.bytes(message.message) + message.authenticator.count
        guard futureCount[sender, default: 0] < limitPerSender, futureBytes[sender, default: 0] + bytes <= bytesPerSenderMax else {
            return false
        }
        futureCount[sender, default: 0] += 1
        futureBytes[sender, default: 0] += bytes
        future.append(message)
        return true
    }

    /// The bytes (by the size model of `RetainedBytes`, authenticators included) one sender may park for
    /// the next view: a correct replica has at most `pipelineDepthMax` batches in flight, so at most that
    /// many PRE-PREPAREs (each a slot, a batch within `batchBytesMax` by the same estimate, and an
    /// authenticator) and a PREPARE and a COMMIT for each.
    static func futureBytesPerSenderMax(_ limits: Limits) -> Int {
        limits.pipelineDepthMax * (RetainedBytes.slotOverhead + limits.batchBytesMax + limits.authenticatorBytesMax
            + 2 * (RetainedBytes.entryOverhead + limits.authenticatorBytesMax))
    }

    mutating func clearFuture() {
        future = []
        futureCount = [:]
        futureBytes = [:]
    }
}
