import NIOCore
import ThemisCore
import ThemisWire

/// What a PBFT replica writes to its write-ahead log in durable mode (PROTOCOLS.md, "Durability and
/// recovery"): what it told others, and what it needs to rebuild the application after a crash of the
/// whole cluster. Each urgent record (`PBFT.isUrgent`) is durable before the message it stands for is sent.
public enum PBFTRecord: Hashable, Sendable {
    /// The replica entered `View` in normal operation; the slots of the view before are gone (the
    /// re-proposals of its NEW-VIEW follow as `prePrepare` records).
    case enteredView(View)
    /// The replica's own VIEW-CHANGE: it left its view for `newView`.
    case viewChange(ViewChange)
    /// A PRE-PREPARE this replica accepted (as a backup, before its PREPARE) or made (as the primary,
    /// before sending it), with its batch if held. `vouched` says the backup's PREPARE went out: false while it
    /// waits for others to vouch for requests it could not authenticate, and in the view it was restored in
    /// (where it sends none). Not urgent (its PREPARE leaves before it is durable, one sync less on every
    /// batch's path; the `prepared` record before its COMMIT syncs it): a replica restarted from disk therefore
    /// sends no PREPARE in that view.
    case prePrepare(Authenticated<PrePrepareHeader>, batch: [Request]?, vouched: Bool)
    /// The batch of a pre-prepare accepted by digest only, fetched later.
    case batch(SequenceNumber, [Request])
    /// The proof that a batch prepared here, written before this replica's COMMIT.
    case prepared(PreparedCertificate)
    /// The batch at this sequence number committed here (written before it executes and replies).
    case committed(SequenceNumber)
    /// A committed batch taken from f + 1 matching COMMITTED-BATCHES (state transfer), or restated at a
    /// checkpoint: committed whatever its view, no certificate of ours.
    case committedBatch(PrePrepare)
    /// As the primary: a batch it proposed. Not urgent (its PRE-PREPARE leaves before it is durable, one sync
    /// less on every batch's path): a primary restarted from disk therefore proposes nothing more in that
    /// view (it may have forgotten a proposal), and the view change replaces it.
    case proposed(PrePrepare)
    /// As the new primary: the NEW-VIEW it sent (it sends it again to replicas that missed it).
    case newViewSent(NewView)
    /// A stable checkpoint and its proof. The first record of a log segment: the records after it restate
    /// what the replica must not forget above it (its state is in the snapshot file of that sequence number).
    case stable(SequenceNumber, Digest, proof: [Authenticated<Checkpoint>])
    /// The replica started with nothing to remember (an empty or deleted data directory) and runs the recovery
    /// protocol; nothing else is written until it is over. A restart that finds this record last recovers again.
    case recovering
    /// The recovery protocol is over: what follows (or precedes, restated in the same step) is the replica's.
    case recovered
}

/// The encoding of `PBFTRecord`: a kind byte, then the fields as PBFT messages write them.
enum PBFTRecordCodec {
    enum Kind: UInt8 {
        case enteredView = 1, viewChange, prePrepare, batch, prepared, committed, stable, committedBatch, newViewSent, proposed
        case recovering, recovered
    }

    static func encode(_ record: PBFTRecord) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        switch record {
        case .enteredView(let view):
            buffer.writeInteger(Kind.enteredView.rawValue)
            buffer.writeInteger(view.rawValue)
        case .viewChange(let viewChange):
            buffer.writeInteger(Kind.viewChange.rawValue)
            buffer.writeViewChange(viewChange)
        case .prePrepare(let header, let batch, let vouched):
            buffer.writeInteger(Kind.prePrepare.rawValue)
            buffer.writePrePrepareHeader(header.message)
            buffer.writeByteString(header.authenticator)
            buffer.writeInteger(UInt8(vouched ? 1 : 0))
            buffer.writeInteger(UInt8(batch == nil ? 0 : 1))
            if let batch { writeBatch(batch, into: &buffer) }
        case .batch(let sequence, let requests):
            buffer.writeInteger(Kind.batch.rawValue)
            buffer.writeInteger(sequence.rawValue)
            writeBatch(requests, into: &buffer)
        case .prepared(let certificate):
            buffer.writeInteger(Kind.prepared.rawValue)
            buffer.writePreparedCertificate(certificate)
        case .committed(let sequence):
            buffer.writeInteger(Kind.committed.rawValue)
            buffer.writeInteger(sequence.rawValue)
        case .committedBatch(let prePrepare):
            buffer.writeInteger(Kind.committedBatch.rawValue)
            buffer.writePrePrepare(prePrepare)
        case .newViewSent(let newView):
            buffer.writeInteger(Kind.newViewSent.rawValue)
            buffer.writeNewView(newView)
        case .proposed(let prePrepare):
            buffer.writeInteger(Kind.proposed.rawValue)
            buffer.writePrePrepare(prePrepare)
        case .stable(let sequence, let digest, let proof):
            buffer.writeInteger(Kind.stable.rawValue)
            buffer.writeInteger(sequence.rawValue)
            buffer.writeDigest(digest)
            buffer.writeCheckpointProof(proof)
        case .recovering:
            buffer.writeInteger(Kind.recovering.rawValue)
        case .recovered:
            buffer.writeInteger(Kind.recovered.rawValue)
        }
        return Array(buffer.readableBytesView)
    }

    static func writeBatch(_ requests: [Request], into buffer: inout ByteBuffer) {
        buffer.writeInteger(WireCodec.wireLength(requests.count))
        for request in requests { buffer.writeRequest(request) }
    }

    static func decode(_ bytes: [UInt8], limits: Limits) throws(WireError) -> PBFTRecord {
        var reader = PayloadReader(buffer: ByteBuffer(bytes: bytes), limits: limits)
        let rawKind = try reader.readUInt8()
        guard let kind = Kind(rawValue: rawKind) else { throw .unknownMessageKind(rawKind) }
        let record: PBFTRecord
        switch kind {
        case .enteredView:
            record = .enteredView(try reader.readView())
        case .viewChange:
            record = .viewChange(try reader.readViewChange())
        case .prePrepare:
            let header = try reader.readPrePrepareHeader()
            let authenticator = try reader.readByteString(field: "pre-prepare authenticator", max: limits.authenticatorBytesMax)
            let vouched = try reader.readUInt8() == 1
            let batch = try reader.readUInt8() == 1 ? try readBatch(&reader) : nil
            record = .prePrepare(Authenticated(header, authenticator: authenticator), batch: batch, vouched: vouched)
        case .batch:
            let sequence = try reader.readSequence()
            record = .batch(sequence, try readBatch(&reader))
        case .prepared:
            record = .prepared(try reader.readPreparedCertificate())
        case .committed:
            record = .committed(try reader.readSequence())
        case .committedBatch:
            record = .committedBatch(try reader.readPrePrepare())
        case .newViewSent:
            record = .newViewSent(try reader.readNewView())
        case .proposed:
            record = .proposed(try reader.readPrePrepare())
        case .stable:
            let sequence = try reader.readSequence()
            let digest = try reader.readDigest()
            record = .stable(sequence, digest, proof: try reader.readCheckpointProof())
        case .recovering:
            record = .recovering
        case .recovered:
            record = .recovered
        }
        guard reader.buffer.readableBytes == 0 else { throw .trailingBytes(count: reader.buffer.readableBytes) }
        return record
    }

    static func readBatch(_ reader: inout PayloadReader) throws(WireError) -> [Request] {
        let count = try reader.readLength(field: "batch", max: reader.limits.batchRequestsMax)
        var requests: [Request] = []
        for _ in 0..<count { requests.append(try reader.readRequest()) }
        return requests
    }
}
