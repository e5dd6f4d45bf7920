import NIOCore
import ThemisCore
import ThemisWire

/// FETCH-STATE, STATE-CHUNK and COMMITTED-BATCHES (FETCH-BATCHES is read inline; the outer
/// authenticator is read by the caller).
///
/// The chunk's length and the batch count are checked against `Limits` before anything is read or
/// allocated. `totalBytes` and `offset` are numbers, not lengths: nothing is allocated from them here,
/// and the state-transfer logic checks them against `Limits.stateBytesMax` and the agreed digest.
extension PayloadReader {
    mutating func readFetchState() throws(WireError) -> FetchState {
        let sequence = try readSequence()
        let stateDigest = try readDigest()
        let offset = try readUInt64()
        let sender = try readReplicaID()
        return FetchState(sequence: sequence, stateDigest: stateDigest, offset: offset, sender: sender)
    }

    mutating func readStateChunk() throws(WireError) -> StateChunk {
        let sequence = try readSequence()
        let stateDigest = try readDigest()
        let totalBytes = try readUInt64()
        let offset = try readUInt64()
        let bytes = try readByteString(field: "state chunk", max: limits.stateChunkBytes)
        let count = try readLength(field: "chunk digests", max: limits.stateChunksMax)
        var chunkDigests: [Digest] = []
        chunkDigests.reserveCapacity(reservation(count, entryBytesMin: WireCodec.digestBytes))
        for _ in 0..<count { chunkDigests.append(try readDigest()) }
        let sender = try readReplicaID()
        return StateChunk(sequence: sequence, stateDigest: stateDigest, totalBytes: totalBytes, offset: offset, bytes: bytes,
                          chunkDigests: chunkDigests, sender: sender)
    }

    /// sender, count (at most `limits.committedBatchesPerMessageMax`), then that many pre-prepares,
    /// each with at most `limits.batchRequestsMax` requests (0 allowed: a null batch).
    mutating func readCommittedBatches() throws(WireError) -> CommittedBatches {
        let sender = try readReplicaID()
        let count = try readLength(field: "committed batches", max: limits.committedBatchesPerMessageMax)
        var batches: [PrePrepare] = []
        batches.reserveCapacity(reservation(count, entryBytesMin: WireCodec.prePrepareBytesMin))
        for _ in 0..<count {
            batches.append(try readPrePrepare())
        }
        return CommittedBatches(batches: batches, sender: sender)
    }
}
