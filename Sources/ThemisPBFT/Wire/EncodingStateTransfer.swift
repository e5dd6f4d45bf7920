import NIOCore
import ThemisCore
import ThemisWire

/// Writers and exact sizes for the state-transfer messages: FETCH-STATE, STATE-CHUNK, FETCH-BATCHES
/// and COMMITTED-BATCHES (the layout is on `PBFTKind`). Each writer sits next to its size so the
/// two stay in step.
extension ByteBuffer {
    /// sequence, stateDigest, offset, sender.
    mutating func writeFetchState(_ fetchState: FetchState) {
        writeInteger(fetchState.sequence.rawValue)
        writeDigest(fetchState.stateDigest)
        writeInteger(fetchState.offset)
        writeInteger(fetchState.sender.rawValue)
    }

    /// sequence, stateDigest, totalBytes, offset, bytes (a byte string), sender.
    mutating func writeStateChunk(_ stateChunk: StateChunk) {
        writeInteger(stateChunk.sequence.rawValue)
        writeDigest(stateChunk.stateDigest)
        writeInteger(stateChunk.totalBytes)
        writeInteger(stateChunk.offset)
        writeByteString(stateChunk.bytes)
        writeInteger(WireCodec.wireLength(stateChunk.chunkDigests.count))
        for digest in stateChunk.chunkDigests { writeDigest(digest) }
        writeInteger(stateChunk.sender.rawValue)
    }

    /// sender, count, then each pre-prepare exactly as everywhere else (slot, request count, requests),
    /// without an authenticator of its own.
    mutating func writeCommittedBatches(_ committedBatches: CommittedBatches) {
        writeInteger(committedBatches.sender.rawValue)
        writeInteger(WireCodec.wireLength(committedBatches.batches.count))
        for prePrepare in committedBatches.batches {
            writePrePrepare(prePrepare)
        }
    }
}

extension WireCodec {
    /// sequence, stateDigest, offset, sender.
    static let fetchStateBytes = 8 + digestBytes + 8 + 4
    /// A STATE-CHUNK without its bytes: sequence, stateDigest, totalBytes, offset, length prefix, sender.
    static let stateChunkFixedBytes = 8 + digestBytes + 8 + 8 + lengthPrefixBytes + 4 + 4
    /// from, sender.
    static let fetchBatchesBytes = 8 + 4

    /// The exact size `writeCommittedBatches` writes.
    static func committedBatchesByteCount(_ committedBatches: CommittedBatches) -> Int {
        var total = 4 + 4
        for prePrepare in committedBatches.batches {
            total += prePrepareByteCount(prePrepare)
        }
        return total
    }
}
