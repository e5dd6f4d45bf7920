/// Big-endian encoding helpers for the applications' compact binary formats.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ value: UInt8) {
        bytes.append(value)
    }

    mutating func append(_ value: UInt16) {
        appendBigEndian(UInt64(value), byteCount: 2)
    }

    mutating func append(_ value: UInt32) {
        appendBigEndian(UInt64(value), byteCount: 4)
    }

    mutating func append(_ value: UInt64) {
        appendBigEndian(value, byteCount: 8)
    }

    mutating func append(contentsOf other: some Sequence<UInt8>) {
        bytes.append(contentsOf: other)
    }

    private mutating func appendBigEndian(_ value: UInt64, byteCount: Int) {
        for index in stride(from: byteCount - 1, through: 0, by: -1) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(index * 8)))
        }
    }
}

/// Reads big-endian fields; every read returns nil instead of reading past the end.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var remainingCount: Int { bytes.count - offset }

    mutating func readUInt8() -> UInt8? {
        readBigEndian(byteCount: 1).map { UInt8(truncatingIfNeeded: $0) }
    }

    mutating func readUInt16() -> UInt16? {
        readBigEndian(byteCount: 2).map { UInt16(truncatingIfNeeded: $0) }
    }

    mutating func readUInt32() -> UInt32? {
        readBigEndian(byteCount: 4).map { UInt32(truncatingIfNeeded: $0) }
    }

    mutating func readUInt64() -> UInt64? {
        readBigEndian(byteCount: 8)
    }

    mutating func readBytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, count <= remainingCount else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    private mutating func readBigEndian(byteCount: Int) -> UInt64? {
        guard byteCount <= remainingCount else { return nil }
        var value: UInt64 = 0
        for index in offset..<(offset + byteCount) {
            value = (value << 8) | UInt64(bytes[index])
        }
        offset += byteCount
        return value
    }
}
