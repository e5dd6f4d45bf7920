import ThemisCore
import ThemisCrypto

/// Hybster's replica-to-replica messages (Behl, Distler, Kapitza, EuroSys 2017), n = 2f + 1.
///
/// Ordered messages carry a certificate of the sender's trusted subsystem (`TrustedCertificate`) besides
/// the link authenticator every message gets from the driver: PREPARE and COMMIT an independent one on the
/// pillar's counter at value (view, order), VIEW-CHANGE a chain of continuing ones ending at (new view, 0),
/// NEW-VIEW-ACK an independent one per pillar, CHECKPOINT a trusted MAC. A replica cannot certify two
/// messages for one counter value, so it cannot equivocate, and f + 1 votes make a quorum.
public enum HybsterMessage: Hashable, Sendable {
    /// A client request relayed by a backup to the primary.
    case request(Request, relayedBy: ReplicaID)
    case prepare(HybsterPrepare)
    case commit(HybsterCommit)
    case checkpoint(HybsterCheckpoint)
    case viewChange(HybsterViewChange)
    case newView(HybsterNewView)
    case newViewAck(HybsterNewViewAck)
    /// Asks any replica for the PREPARE (with its batch) of an order number.
    case fetch(HybsterFetch)
    /// A certified PREPARE (or a NEW-VIEW's re-proposal) with its batch, sent by any replica that holds it.
    case forward(HybsterForward)
    case fetchState(HybsterFetchState)
    case stateChunk(HybsterStateChunk)
    /// REQ-VIEW-CHANGE(v'): the sender suspects the primary and asks for view v'. It stays in its view: only
    /// f + 1 such requests (one of them from a correct replica) make replicas leave it (MinBFT's rule), so a
    /// replica that suspects alone is not shut out of a view its counter no longer lets it return to.
    case requestViewChange(HybsterViewChangeRequest)
    /// A stable checkpoint and its proof (f + 1 CHECKPOINTs with trusted MACs), sent to a replica that asked
    /// for an order number the sender has truncated: it fetches the state instead.
    case stableCheckpoint(HybsterStableCheckpoint)

    /// The replica that sent (and link-authenticated) this message.
    public var sender: ReplicaID {
        switch self {
        case .request(_, let relayedBy): return relayedBy
        case .prepare(let message): return message.header.sender
        case .commit(let message): return message.sender
        case .checkpoint(let message): return message.sender
        case .viewChange(let message): return message.sender
        case .newView(let message): return message.sender
        case .newViewAck(let message): return message.sender
        case .fetch(let message): return message.sender
        case .forward(let message): return message.sender
        case .fetchState(let message): return message.sender
        case .stateChunk(let message): return message.sender
        case .requestViewChange(let message): return message.sender
        case .stableCheckpoint(let message): return message.sender
        }
    }

    public var kindName: String {
        switch self {
        case .request: return "request"
        case .prepare: return "prepare"
        case .commit: return "commit"
        case .checkpoint: return "checkpoint"
        case .viewChange: return "view-change"
        case .newView: return "new-view"
        case .newViewAck: return "new-view-ack"
        case .fetch: return "fetch"
        case .forward: return "forward"
        case .fetchState: return "fetch-state"
        case .stateChunk: return "state-chunk"
        case .requestViewChange: return "request-view-change"
        case .stableCheckpoint: return "stable-checkpoint"
        }
    }
}

/// PREPARE(v, o, d) without its batch: what the primary of v certifies at value (v, o) on the counter of
/// pillar o mod P, what VIEW-CHANGE entries and NEW-VIEW re-proposals carry (digests only, so those
/// messages do not grow with batch sizes).
public struct PrepareHeader: Hashable, Sendable {
    public let view: View
    public let order: SequenceNumber
    /// The batch digest (`Request.batchDigest`); an empty batch is a null request (a gap after a view change).
    public let digest: Digest
    public let sender: ReplicaID
    public let certificate: TrustedCertificate

    public init(view: View, order: SequenceNumber, digest: Digest, sender: ReplicaID, certificate: TrustedCertificate) {
        self.view = view
        self.order = order
        self.digest = digest
        self.sender = sender
        self.certificate = certificate
    }

    /// What the primary's trusted subsystem certifies.
    public var certifiedDigest: Digest { HybsterDigests.prepare(view: view, order: order, digest: digest, sender: sender) }
}

/// PREPARE(v, o, batch): the primary of v proposes a batch for order number o.
public struct HybsterPrepare: Hashable, Sendable {
    public let header: PrepareHeader
    public let requests: [Request]

    public init(header: PrepareHeader, requests: [Request]) {
        self.header = header
        self.requests = requests
    }
}

/// COMMIT(v, o, d, i): replica i accepted the primary's PREPARE for (v, o) with digest d; certified at (v, o).
public struct HybsterCommit: Hashable, Sendable {
    public let view: View
    public let order: SequenceNumber
    public let digest: Digest
    public let sender: ReplicaID
    public let certificate: TrustedCertificate

    public init(view: View, order: SequenceNumber, digest: Digest, sender: ReplicaID, certificate: TrustedCertificate) {
        self.view = view
        self.order = order
        self.digest = digest
        self.sender = sender
        self.certificate = certificate
    }

    public var certifiedDigest: Digest { HybsterDigests.commit(view: view, order: order, digest: digest, sender: sender) }
}

/// CHECKPOINT(s, d, i) with a trusted MAC: replica i's state after order number s has digest d.
public struct HybsterCheckpoint: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let stateDigest: Digest
    public let sender: ReplicaID
    public let certificate: TrustedCertificate

    public init(sequence: SequenceNumber, stateDigest: Digest, sender: ReplicaID, certificate: TrustedCertificate) {
        self.sequence = sequence
        self.stateDigest = stateDigest
        self.sender = sender
        self.certificate = certificate
    }

    public var certifiedDigest: Digest { HybsterDigests.checkpoint(sequence: sequence, stateDigest: stateDigest, sender: sender) }
}

/// VIEW-CHANGE: replica i leaves `fromView` (the last view it was in normal operation) for `toView`.
///
/// The content (sender, fromView, checkpoint, entries) is fixed when the replica leaves `fromView`; each
/// pillar's chain of continuing certificates over it runs from the last value the replica certified on that
/// pillar to (toView, 0). A later attempt (toView + 1, ...) adds one link per pillar, so every value the
/// counter took since it left `fromView` is accounted for: the history is complete, and the replica can no
/// longer certify anything in the views it leaves.
public struct HybsterViewChange: Hashable, Sendable {
    public let sender: ReplicaID
    public let fromView: View
    public let toView: View
    /// The sender's stable checkpoint and its proof (f + 1 matching CHECKPOINTs; empty at 0).
    public let checkpoint: SequenceNumber
    public let checkpointDigest: Digest
    public let checkpointProof: [HybsterCheckpoint]
    /// The PREPAREs of `fromView` the sender accepted above its checkpoint, by order number.
    public let entries: [PrepareHeader]
    /// Per pillar, the chain of continuing certificates over `certifiedDigest`.
    public let chains: [[TrustedCertificate]]

    public init(sender: ReplicaID, fromView: View, toView: View, checkpoint: SequenceNumber, checkpointDigest: Digest,
                checkpointProof: [HybsterCheckpoint], entries: [PrepareHeader], chains: [[TrustedCertificate]]) {
        self.sender = sender
        self.fromView = fromView
        self.toView = toView
        self.checkpoint = checkpoint
        self.checkpointDigest = checkpointDigest
        self.checkpointProof = checkpointProof
        self.entries = entries
        self.chains = chains
    }

    /// What every link of every chain certifies (not the target view: that is in the links' values).
    public var certifiedDigest: Digest {
        HybsterDigests.viewChange(sender: sender, fromView: fromView, checkpoint: checkpoint, checkpointDigest: checkpointDigest, entries: entries)
    }
}

/// NEW-VIEW(v): the new primary's f + 1 VIEW-CHANGEs for v and the re-proposals they determine, each a
/// PREPARE of view v it certified (orders after the highest checkpoint up to the highest entry; null
/// batches for gaps). Backups recompute the re-proposals from the VIEW-CHANGEs.
public struct HybsterNewView: Hashable, Sendable {
    public let view: View
    public let sender: ReplicaID
    public let viewChanges: [HybsterViewChange]
    public let reproposals: [PrepareHeader]

    public init(view: View, sender: ReplicaID, viewChanges: [HybsterViewChange], reproposals: [PrepareHeader]) {
        self.view = view
        self.sender = sender
        self.viewChanges = viewChanges
        self.reproposals = reproposals
    }
}

/// NEW-VIEW-ACK(v, d, i): backup i accepted the NEW-VIEW of v whose re-proposals have digest d. One
/// independent certificate per pillar that has re-proposals, at (v, highest re-proposed order of the
/// pillar): it is i's COMMIT for every re-proposal, and a later VIEW-CHANGE of i must list them all.
public struct HybsterNewViewAck: Hashable, Sendable {
    public let view: View
    public let reproposalsDigest: Digest
    public let sender: ReplicaID
    public let certificates: [TrustedCertificate]

    public init(view: View, reproposalsDigest: Digest, sender: ReplicaID, certificates: [TrustedCertificate]) {
        self.view = view
        self.reproposalsDigest = reproposalsDigest
        self.sender = sender
        self.certificates = certificates
    }

    public var certifiedDigest: Digest { HybsterDigests.newViewAck(view: view, reproposalsDigest: reproposalsDigest, sender: sender) }
}

/// FETCH(o): asks for the PREPARE of order number o (a replica that missed it, or lacks a re-proposal's batch).
public struct HybsterFetch: Hashable, Sendable {
    public let order: SequenceNumber
    public let sender: ReplicaID

    public init(order: SequenceNumber, sender: ReplicaID) {
        self.order = order
        self.sender = sender
    }
}

/// FORWARD: a certified PREPARE header and its batch, from any replica holding them. The header's trusted
/// certificate proves the primary proposed it, the digest binds the batch: the forwarder is not trusted.
public struct HybsterForward: Hashable, Sendable {
    public let prepare: HybsterPrepare
    public let sender: ReplicaID

    public init(prepare: HybsterPrepare, sender: ReplicaID) {
        self.prepare = prepare
        self.sender = sender
    }
}

/// FETCH-STATE(s, d, offset): asks for the state of checkpoint s (digest d) from byte `offset` on.
public struct HybsterFetchState: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let stateDigest: Digest
    public let offset: UInt64
    public let sender: ReplicaID

    public init(sequence: SequenceNumber, stateDigest: Digest, offset: UInt64, sender: ReplicaID) {
        self.sequence = sequence
        self.stateDigest = stateDigest
        self.offset = offset
        self.sender = sender
    }
}

/// STATE-CHUNK: bytes [offset, offset + bytes.count) of the state of checkpoint s; the reply to offset 0
/// carries every chunk's digest, which the state digest covers (`CheckpointState.stateDigest`).
public struct HybsterStateChunk: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let stateDigest: Digest
    public let totalBytes: UInt64
    public let offset: UInt64
    public let bytes: [UInt8]
    public let chunkDigests: [Digest]
    public let sender: ReplicaID

    public init(sequence: SequenceNumber, stateDigest: Digest, totalBytes: UInt64, offset: UInt64, bytes: [UInt8],
                chunkDigests: [Digest], sender: ReplicaID) {
        self.sequence = sequence
        self.stateDigest = stateDigest
        self.totalBytes = totalBytes
        self.offset = offset
        self.bytes = bytes
        self.chunkDigests = chunkDigests
        self.sender = sender
    }
}

/// REQ-VIEW-CHANGE(v'): a request to move to view v' (link-authenticated, not certified).
public struct HybsterViewChangeRequest: Hashable, Sendable {
    public let toView: View
    public let sender: ReplicaID

    public init(toView: View, sender: ReplicaID) {
        self.toView = toView
        self.sender = sender
    }
}

/// STABLE-CHECKPOINT(s, d, proof): checkpoint s with state digest d is stable; `proof` holds f + 1 matching
/// CHECKPOINTs (each carries its own trusted MAC, so the forwarder need not be trusted).
public struct HybsterStableCheckpoint: Hashable, Sendable {
    public let sequence: SequenceNumber
    public let stateDigest: Digest
    public let proof: [HybsterCheckpoint]
    public let sender: ReplicaID

    public init(sequence: SequenceNumber, stateDigest: Digest, proof: [HybsterCheckpoint], sender: ReplicaID) {
        self.sequence = sequence
        self.stateDigest = stateDigest
        self.proof = proof
        self.sender = sender
    }
}

/// The digests trusted subsystems certify: a domain per message kind, then the fields that identify it.
public enum HybsterDigests {
    public static func prepare(view: View, order: SequenceNumber, digest: Digest, sender: ReplicaID) -> Digest {
        var builder = DigestBuilder(domain: "hybster.prepare")
        builder.append(view.rawValue)
        builder.append(order.rawValue)
        builder.append(digest)
        builder.append(sender.rawValue)
        return builder.finish()
    }

    public static func commit(view: View, order: SequenceNumber, digest: Digest, sender: ReplicaID) -> Digest {
        var builder = DigestBuilder(domain: "hybster.commit")
        builder.append(view.rawValue)
        builder.append(order.rawValue)
        builder.append(digest)
        builder.append(sender.rawValue)
        return builder.finish()
    }

    public static func checkpoint(sequence: SequenceNumber, stateDigest: Digest, sender: ReplicaID) -> Digest {
        var builder = DigestBuilder(domain: "hybster.checkpoint")
        builder.append(sequence.rawValue)
        builder.append(stateDigest)
        builder.append(sender.rawValue)
        return builder.finish()
    }

    public static func viewChange(sender: ReplicaID, fromView: View, checkpoint: SequenceNumber, checkpointDigest: Digest,
                                  entries: [PrepareHeader]) -> Digest {
        var builder = DigestBuilder(domain: "hybster.view-change")
        builder.append(sender.rawValue)
        builder.append(fromView.rawValue)
        builder.append(checkpoint.rawValue)
        builder.append(checkpointDigest)
        builder.append(UInt64(entries.count))
        for entry in entries {
            builder.append(entry.view.rawValue)
            builder.append(entry.order.rawValue)
            builder.append(entry.digest)
            builder.append(entry.sender.rawValue)
        }
        return builder.finish()
    }

    /// The re-proposals of a NEW-VIEW, as a backup acknowledges them.
    public static func reproposals(view: View, _ headers: [PrepareHeader]) -> Digest {
        var builder = DigestBuilder(domain: "hybster.reproposals")
        builder.append(view.rawValue)
        builder.append(UInt64(headers.count))
        for header in headers {
            builder.append(header.order.rawValue)
            builder.append(header.digest)
        }
        return builder.finish()
    }

    public static func newViewAck(view: View, reproposalsDigest: Digest, sender: ReplicaID) -> Digest {
        var builder = DigestBuilder(domain: "hybster.new-view-ack")
        builder.append(view.rawValue)
        builder.append(reproposalsDigest)
        builder.append(sender.rawValue)
        return builder.finish()
    }
}
