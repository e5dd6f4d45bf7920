import ThemisCore

/// The state of a checkpoint as it travels in a state transfer: the application's snapshot and the
/// client table (last timestamp and reply per client), in one canonical byte string.
///
/// Layout (big-endian): application length u64, application bytes, client count u32, then per client in
/// id order: client u32, timestamp u64, result length u32, result bytes. The state digest is computed over
/// these bytes, so they hold only what every correct replica agrees on: not the view a reply was made in
/// (replicas may execute one batch in different views), which a restored reply takes from the installer.
package struct CheckpointState {
    package let applicationSnapshot: [UInt8]
    package let clientTable: ClientTable

    /// The state digest binds the sequence number and the checkpoint's state (application snapshot and
    /// client table, `CheckpointState`) through the SHA-256 of each of its chunks of `stateChunkBytes`:
    /// a replica fetching the state checks the chunk list against this digest, then every chunk as it
    /// arrives, so a lying peer is caught at its first bad chunk (issue 9, finding 6).
    package static func stateDigest(_ sequence: SequenceNumber, totalBytes: Int, chunkDigests: [Digest]) -> Digest {
        var builder = DigestBuilder(domain: "themis.checkpoint.v2")
        builder.append(sequence.rawValue)
        builder.append(UInt64(totalBytes))
        builder.append(UInt64(chunkDigests.count))
        for digest in chunkDigests { builder.append(digest) }
        return builder.finish()
    }

    /// The SHA-256 of every `chunkBytes` piece of `state` (the last may be shorter; an empty state has one
    /// empty chunk).
    package static func chunkDigests(of state: [UInt8], chunkBytes: Int) -> [Digest] {
        guard !state.isEmpty else { return [Digest.of([])] }
        return stride(from: 0, to: state.count, by: max(1, chunkBytes)).map {
            Digest.of(Array(state[$0..<min(state.count, $0 + chunkBytes)]))
        }
    }

    package init(applicationSnapshot: [UInt8], clientTable: ClientTable) {
        self.applicationSnapshot = applicationSnapshot
        self.clientTable = clientTable
    }

    package func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(applicationSnapshot.count + 16 + clientTable.count * 32)
        append(UInt64(applicationSnapshot.count), to: &bytes)
        bytes.append(contentsOf: applicationSnapshot)
        append(UInt64(clientTable.count), to: &bytes, width: 4)
        for client in clientTable.records.keys.sorted() {
            guard let record = clientTable.records[client] else { continue }
            append(UInt64(client.rawValue), to: &bytes, width: 4)
            append(record.lastExecuted.rawValue, to: &bytes)
            append(UInt64(record.lastReply.result.count), to: &bytes, width: 4)
            bytes.append(contentsOf: record.lastReply.result)
        }
        return bytes
    }

    /// Durable mode, at a restart: the saved state of checkpoint `sequence`, checked against the digest its
    /// log record names, decoded, with its chunk digests (to serve it to others).
    /// - Throws: `.snapshotMismatch` if the bytes do not match the digest or do not parse.
    package static func restore(_ state: [UInt8], sequence: SequenceNumber, digest: Digest, replica: ReplicaID, view: View,
                                limits: Limits) throws(RestoreError) -> (state: CheckpointState, chunks: [Digest]) {
        let chunks = chunkDigests(of: state, chunkBytes: limits.stateChunkBytes)
        guard stateDigest(sequence, totalBytes: state.count, chunkDigests: chunks) == digest,
            let decoded = decode(state, replica: replica, view: view, limits: limits)
        else { throw .snapshotMismatch(sequence) }
        return (decoded, chunks)
    }

    /// Parses bytes a peer sent; nil if they are malformed in any way (never traps).
    /// - Parameters:
    ///   - replica: this replica, named as the sender of the cached replies.
    ///   - view: the view the cached replies name (the installer's).
    ///   - limits: bounds on results and clients.
    package static func decode(_ bytes: [UInt8], replica: ReplicaID, view: View = View(0), limits: Limits) -> CheckpointState? {
        var reader = ByteReader(bytes)
        guard let applicationLength = reader.integer(8), let application = reader.bytes(applicationLength),
            let count = reader.integer(4), count <= UInt64(limits.clientsMax)
        else { return nil }
        var records: [ClientID: ClientTable.Record] = [:]
        for _ in 0..<count {
            guard let client = reader.integer(4), let timestamp = reader.integer(8),
                let resultLength = reader.integer(4), resultLength <= UInt64(limits.resultBytesMax),
                let result = reader.bytes(resultLength)
            else { return nil }
            let id = ClientID(UInt32(client))
            guard records[id] == nil else { return nil }
            let reply = Reply(view: view, timestamp: Timestamp(timestamp), client: id, replica: replica, result: result)
            records[id] = ClientTable.Record(lastExecuted: Timestamp(timestamp), lastReply: reply)
        }
        guard reader.isAtEnd else { return nil }
        return CheckpointState(applicationSnapshot: application, clientTable: ClientTable(records: records))
    }

    private func append(_ value: UInt64, to bytes: inout [UInt8], width: Int = 8) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }
}

/// Reads big-endian integers and byte strings from untrusted bytes; every read is bounds-checked.
package struct ByteReader {
    private let bytes: [UInt8]
    private var index = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    package var isAtEnd: Bool { index == bytes.count }

    package mutating func integer(_ width: Int) -> UInt64? {
        guard bytes.count - index >= width else { return nil }
        var value: UInt64 = 0
        for offset in 0..<width { value = value << 8 | UInt64(bytes[index + offset]) }
        index += width
        return value
    }

    package mutating func bytes(_ count: UInt64) -> [UInt8]? {
        guard count <= UInt64(bytes.count - index) else { return nil }
        let end = index + Int(count)
        defer { index = end }
        return Array(bytes[index..<end])
    }
}
