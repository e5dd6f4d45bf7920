import ThemisCore
import ThemisWire

/// Authenticated bytes of the state-transfer messages: fixed-width fields after the domain and kind
/// byte; variable-length data (a chunk's bytes, the committed batches) bound through its SHA-256.
extension WireCodec {
    /// domain, kind, sender, sequence, stateDigest, offset.
    static func fetchStateAuthenticatedBytes(_ fetchState: FetchState) -> [UInt8] {
        var bytes = authenticationPrefix(.fetchState, fieldBytes: 4 + 8 + digestBytes + 8)
        bytes.appendBigEndian(fetchState.sender.rawValue)
        bytes.appendBigEndian(fetchState.sequence.rawValue)
        bytes.appendDigest(fetchState.stateDigest)
        bytes.appendBigEndian(fetchState.offset)
        return bytes
    }

    /// domain, kind, sender, sequence, stateDigest, totalBytes, offset, SHA-256 of the chunk's bytes,
    /// SHA-256 of the chunk digest list (as encoded: count, digests).
    static func stateChunkAuthenticatedBytes(_ stateChunk: StateChunk) -> [UInt8] {
        var bytes = authenticationPrefix(.stateChunk, fieldBytes: 4 + 8 + digestBytes + 8 + 8 + digestBytes + digestBytes)
        bytes.appendBigEndian(stateChunk.sender.rawValue)
        bytes.appendBigEndian(stateChunk.sequence.rawValue)
        bytes.appendDigest(stateChunk.stateDigest)
        bytes.appendBigEndian(stateChunk.totalBytes)
        bytes.appendBigEndian(stateChunk.offset)
        bytes.appendDigest(Digest.of(stateChunk.bytes))
        var list: [UInt8] = []
        list.reserveCapacity(4 + digestBytes * stateChunk.chunkDigests.count)
        list.appendBigEndian(wireLength(stateChunk.chunkDigests.count))
        for digest in stateChunk.chunkDigests { list.appendDigest(digest) }
        bytes.appendDigest(Digest.of(list))
        return bytes
    }

    /// domain, kind, sender, from.
    static func fetchBatchesAuthenticatedBytes(_ fetchBatches: FetchBatches) -> [UInt8] {
        var bytes = authenticationPrefix(.fetchBatches, fieldBytes: 4 + 8)
        bytes.appendBigEndian(fetchBatches.sender.rawValue)
        bytes.appendBigEndian(fetchBatches.from.rawValue)
        return bytes
    }

    /// domain, kind, sender, body digest (SHA-256 of sender, count and every pre-prepare with its
    /// batch, exactly as encoded).
    static func committedBatchesAuthenticatedBytes(_ committedBatches: CommittedBatches, bodyDigest: Digest) -> [UInt8] {
        var bytes = authenticationPrefix(.committedBatches, fieldBytes: 4 + digestBytes)
        bytes.appendBigEndian(committedBatches.sender.rawValue)
        bytes.appendDigest(bodyDigest)
        return bytes
    }
}
