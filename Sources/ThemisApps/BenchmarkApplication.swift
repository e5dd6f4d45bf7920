import ThemisCore

/// A no-op application for throughput measurements: every operation returns `replyBytes` bytes and only
/// a counter of executed operations changes. An operation whose first byte is `readMarker` is a read: it
/// leaves the counter as it is (`themis bench --read-only`).
public struct BenchmarkApplication: SynchronousApplication, Equatable {
    /// Size of every result.
    public let replyBytes: Int
    /// Operations executed so far.
    public private(set) var executedCount: UInt64 = 0

    /// - Parameter replyBytes: the result size; MUST NOT be negative (and should respect
    ///   `Limits.resultBytesMax`).
    public init(replyBytes: Int) {
        precondition(replyBytes >= 0, "replyBytes must not be negative, got \(replyBytes)")
        self.replyBytes = replyBytes
    }

    /// First byte of a read-only operation.
    public static let readMarker: UInt8 = 0x52

    public mutating func executeSynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8] {
        executeNow(isRead: operation.first == Self.readMarker)
    }

    /// A read (first byte `readMarker`) answered without ordering: the same result `execute` gives it.
    public func executeReadOnlySynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8]? {
        guard operation.first == Self.readMarker else { return nil }
        var copy = self
        return copy.executeNow(isRead: true)
    }

    /// Counts one operation (unless `isRead`) and returns its result: the count (8 bytes, big-endian)
    /// followed by the byte pattern 8, 9, 10, ..., cut or padded to `replyBytes`. Deterministic from the
    /// count alone.
    public mutating func executeNow(isRead: Bool = false) -> [UInt8] {
        if !isRead { executedCount &+= 1 }
        var result = UInt64Bytes.encode(executedCount)
        if replyBytes <= result.count {
            return Array(result.prefix(replyBytes))
        }
        result.reserveCapacity(replyBytes)
        for index in result.count..<replyBytes {
            result.append(UInt8(truncatingIfNeeded: index))
        }
        return result
    }

    /// The counter, 8 bytes big-endian.
    public func snapshotSynchronously() -> [UInt8] {
        UInt64Bytes.encode(executedCount)
    }

    /// - Throws: `SnapshotError.wrongLength` unless the snapshot is 8 bytes.
    public mutating func restoreSynchronously(from snapshot: [UInt8]) throws(SnapshotError) {
        guard let count = UInt64Bytes.decode(snapshot) else { throw .wrongLength(expected: 8, got: snapshot.count) }
        executedCount = count
    }
}
