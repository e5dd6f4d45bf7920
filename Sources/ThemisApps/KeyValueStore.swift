import ThemisCore

/// A replicated key-value store: put, get and delete of byte values under string keys.
///
/// Keys are stored by their UTF-8 bytes, not as `String`s: String equality follows Unicode canonical
/// equivalence, whose tables may differ between Swift versions, and replicas MUST agree on every byte.
/// Snapshots list entries sorted by key bytes, so equal states give equal snapshots.
public struct KeyValueStore: Application, Equatable {
    /// Longest key, in UTF-8 bytes.
    public static let keyBytesMax = 1024
    /// Largest value, in bytes.
    public static let valueBytesMax = 64 * 1024
    /// Snapshot magic: "tkv1".
    static let snapshotMagic: [UInt8] = Array("tkv1".utf8)

    /// Most entries the store holds; a put of a new key beyond it fails with `.error`.
    public let entriesMax: Int
    private var entries: [[UInt8]: [UInt8]] = [:]

    /// - Parameter entriesMax: the bound on the number of keys (the same on every replica).
    public init(entriesMax: Int = 1 << 20) {
        self.entriesMax = entriesMax
    }

    /// The number of keys stored.
    public var count: Int { entries.count }

    /// The value under a key, or nil.
    public func value(for key: String) -> [UInt8]? {
        entries[Array(key.utf8)]
    }

    /// Applies a decoded operation. Out-of-bound keys and values are refused with `.error`.
    /// - Returns: `.ok` for put and delete, `.value` for get, `.error` if refused (state unchanged).
    public mutating func apply(_ operation: KeyValueOperation) -> KeyValueResult {
        let key = Array(operation.key.utf8)
        guard key.count <= Self.keyBytesMax else { return .error(KeyValueError.keyTooLong(key.count).description) }
        switch operation {
        case .put(_, let value):
            guard value.count <= Self.valueBytesMax else { return .error(KeyValueError.valueTooLarge(value.count).description) }
            guard entries[key] != nil || entries.count < entriesMax else {
                return .error("store is full (\(entriesMax) entries)")
            }
            entries[key] = value
            return .ok
        case .get:
            return .value(entries[key])
        case .delete:
            entries[key] = nil
            return .ok
        }
    }

    /// Decodes and applies one operation; malformed bytes give an encoded `.error` and change nothing.
    public mutating func execute(_ operation: [UInt8], from client: ClientID) async -> [UInt8] {
        executeNow(operation).encoded()
    }

    /// A `get` answered without ordering; nil for anything else (a write, or bytes that do not decode: the
    /// ordered path gives those their error).
    public func executeReadOnly(_ operation: [UInt8], from client: ClientID) async -> [UInt8]? {
        executeReadOnlyNow(operation)?.encoded()
    }

    /// `executeReadOnly` without suspension (tests, simulator).
    public func executeReadOnlyNow(_ operation: [UInt8]) -> KeyValueResult? {
        guard case .get(let key)? = try? KeyValueOperation(decoding: operation) else { return nil }
        let bytes = Array(key.utf8)
        guard bytes.count <= Self.keyBytesMax else { return .error(KeyValueError.keyTooLong(bytes.count).description) }
        return .value(entries[bytes])
    }

    /// `execute` without suspension, for callers outside an async context (tests, simulator).
    public mutating func executeNow(_ operation: [UInt8]) -> KeyValueResult {
        do {
            return apply(try KeyValueOperation(decoding: operation))
        } catch {
            return .error("malformed operation: \(error)")
        }
    }

    public func snapshot() async -> [UInt8] {
        snapshotBytes()
    }

    /// The canonical snapshot: magic "tkv1", a UInt32 entry count, then for each entry in ascending key
    /// byte order a UInt16 key length, the key, a UInt32 value length and the value (big-endian).
    public func snapshotBytes() -> [UInt8] {
        var writer = ByteWriter()
        writer.append(contentsOf: Self.snapshotMagic)
        writer.append(UInt32(truncatingIfNeeded: entries.count))
        for key in entries.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let value = entries[key] ?? []
            writer.append(UInt16(truncatingIfNeeded: key.count))
            writer.append(contentsOf: key)
            writer.append(UInt32(truncatingIfNeeded: value.count))
            writer.append(contentsOf: value)
        }
        return writer.bytes
    }

    public mutating func restore(from snapshot: [UInt8]) async throws(KeyValueError) {
        try restoreNow(from: snapshot)
    }

    /// Replaces the state with a snapshot made by `snapshotBytes()`; on error the state is unchanged.
    /// - Throws: `KeyValueError` if the bytes are not a canonical snapshot within this store's bounds.
    public mutating func restoreNow(from snapshot: [UInt8]) throws(KeyValueError) {
        var reader = ByteReader(snapshot)
        guard reader.readBytes(Self.snapshotMagic.count) == Self.snapshotMagic else { throw .notASnapshot }
        guard let count = reader.readUInt32() else { throw .truncated }
        guard count <= entriesMax else { throw .tooManyEntries(Int(count), maximum: entriesMax) }
        var restored: [[UInt8]: [UInt8]] = [:]
        var previousKey: [UInt8]?
        for _ in 0..<count {
            let key = Array(try KeyValueOperation.readKey(&reader).utf8)
            if let previousKey, !previousKey.lexicographicallyPrecedes(key) { throw .unsortedKeys }
            guard let length = reader.readUInt32() else { throw .truncated }
            guard length <= Self.valueBytesMax else { throw .valueTooLarge(Int(length)) }
            guard let value = reader.readBytes(Int(length)) else { throw .truncated }
            restored[key] = value
            previousKey = key
        }
        guard reader.remainingCount == 0 else { throw .trailingBytes(reader.remainingCount) }
        entries = restored
    }
}
