/// Why bytes are not a snapshot of one of the small fixed-size applications.
public enum SnapshotError: Error, Hashable, Sendable, CustomStringConvertible {
    case wrongLength(expected: Int, got: Int)

    public var description: String {
        switch self {
        case .wrongLength(let expected, let got): return "a snapshot is \(expected) bytes, got \(got)"
        }
    }
}

/// A UInt64 as 8 big-endian bytes, and back.
enum UInt64Bytes {
    static func encode(_ value: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 8)
        writer.append(value)
        return writer.bytes
    }

    /// - Returns: nil unless there are exactly 8 bytes.
    static func decode(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        var reader = ByteReader(bytes)
        return reader.readUInt64()
    }
}
