/// Why key-value bytes (an operation, a result or a snapshot) are malformed.
public enum KeyValueError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No bytes at all.
    case empty
    /// The first byte names no operation (or no result kind).
    case unknownTag(UInt8)
    /// The bytes end inside a field.
    case truncated
    /// Bytes are left after the last field.
    case trailingBytes(Int)
    /// A key longer than `KeyValueStore.keyBytesMax` UTF-8 bytes.
    case keyTooLong(Int)
    /// A value larger than `KeyValueStore.valueBytesMax` bytes.
    case valueTooLarge(Int)
    /// A key or message that is not UTF-8.
    case invalidUTF8
    /// The snapshot does not start with the snapshot magic.
    case notASnapshot
    /// Snapshot keys are not in strictly ascending byte order (unsorted or duplicated).
    case unsortedKeys
    /// More snapshot entries than the store allows.
    case tooManyEntries(Int, maximum: Int)

    public var description: String {
        switch self {
        case .empty: return "empty input"
        case .unknownTag(let tag): return "unknown tag \(tag)"
        case .truncated: return "input ends inside a field"
        case .trailingBytes(let count): return "\(count) bytes after the last field"
        case .keyTooLong(let count): return "key of \(count) bytes is longer than \(KeyValueStore.keyBytesMax)"
        case .valueTooLarge(let count): return "value of \(count) bytes is larger than \(KeyValueStore.valueBytesMax)"
        case .invalidUTF8: return "text is not valid UTF-8"
        case .notASnapshot: return "not a key-value snapshot"
        case .unsortedKeys: return "snapshot keys are not strictly ascending"
        case .tooManyEntries(let count, let maximum): return "\(count) entries, at most \(maximum) allowed"
        }
    }
}
