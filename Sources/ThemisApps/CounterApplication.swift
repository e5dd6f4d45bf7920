import ThemisCore

/// The smallest useful application, for tests: a UInt64 counter that operations increment.
///
/// An operation is the increment, 8 bytes big-endian; the result is the new value, 8 bytes big-endian
/// (the counter wraps around). Any other operation length changes nothing and returns an empty result.
public struct CounterApplication: SynchronousApplication, Equatable {
    public private(set) var value: UInt64

    public init(value: UInt64 = 0) {
        self.value = value
    }

    /// The operation that adds `amount`.
    public static func increment(by amount: UInt64) -> [UInt8] {
        UInt64Bytes.encode(amount)
    }

    /// The counter value in a result, or nil if the result is not 8 bytes (the operation was malformed).
    public static func value(in result: [UInt8]) -> UInt64? {
        UInt64Bytes.decode(result)
    }

    public mutating func executeSynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8] {
        executeNow(operation)
    }

    /// Nothing is read-only: every operation is ordered.
    public func executeReadOnlySynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8]? {
        nil
    }

    /// `execute` without suspension.
    public mutating func executeNow(_ operation: [UInt8]) -> [UInt8] {
        guard let amount = UInt64Bytes.decode(operation) else { return [] }
        value &+= amount
        return UInt64Bytes.encode(value)
    }

    /// The value, 8 bytes big-endian.
    public func snapshotSynchronously() -> [UInt8] {
        UInt64Bytes.encode(value)
    }

    /// - Throws: `SnapshotError.wrongLength` unless the snapshot is 8 bytes.
    public mutating func restoreSynchronously(from snapshot: [UInt8]) throws(SnapshotError) {
        guard let restored = UInt64Bytes.decode(snapshot) else { throw .wrongLength(expected: 8, got: snapshot.count) }
        value = restored
    }
}
