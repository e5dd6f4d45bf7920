/// An operation on a `KeyValueStore`, in a compact binary encoding:
/// a tag byte (1 put, 2 get, 3 delete), the key as a UInt16 length and UTF-8 bytes, and for put the
/// value as a UInt32 length and bytes. All integers big-endian; nothing may follow.
public enum KeyValueOperation: Hashable, Sendable {
    case put(key: String, value: [UInt8])
    case get(key: String)
    case delete(key: String)

    enum Tag: UInt8 {
        case put = 1
        case get = 2
        case delete = 3
    }

    public var key: String {
        switch self {
        case .put(let key, _), .get(let key), .delete(let key): return key
        }
    }

    /// The binary encoding. Keys and values beyond the bounds are encoded anyway (their lengths are
    /// capped by the field widths) and rejected by the decoder.
    public func encoded() -> [UInt8] {
        let key = Array(key.utf8)
        var writer = ByteWriter(capacity: 1 + 2 + key.count)
        switch self {
        case .put: writer.append(Tag.put.rawValue)
        case .get: writer.append(Tag.get.rawValue)
        case .delete: writer.append(Tag.delete.rawValue)
        }
        let keyLength = min(key.count, Int(UInt16.max))
        writer.append(UInt16(keyLength))
        writer.append(contentsOf: key.prefix(keyLength))
        if case .put(_, let value) = self {
            writer.append(UInt32(truncatingIfNeeded: value.count))
            writer.append(contentsOf: value)
        }
        return writer.bytes
    }

    /// Decodes and bounds-checks an operation.
    /// - Parameter bytes: an encoding made by `encoded()`, or anything a client sent.
    /// - Throws: `KeyValueError` saying what is wrong; never traps.
    public init(decoding bytes: [UInt8]) throws(KeyValueError) {
        var reader = ByteReader(bytes)
        guard let tagByte = reader.readUInt8() else { throw .empty }
        guard let tag = Tag(rawValue: tagByte) else { throw .unknownTag(tagByte) }
        let key = try Self.readKey(&reader)
        switch tag {
        case .put:
            guard let length = reader.readUInt32() else { throw .truncated }
            guard length <= KeyValueStore.valueBytesMax else { throw .valueTooLarge(Int(length)) }
            guard let value = reader.readBytes(Int(length)) else { throw .truncated }
            self = .put(key: key, value: value)
        case .get:
            self = .get(key: key)
        case .delete:
            self = .delete(key: key)
        }
        guard reader.remainingCount == 0 else { throw .trailingBytes(reader.remainingCount) }
    }

    static func readKey(_ reader: inout ByteReader) throws(KeyValueError) -> String {
        guard let length = reader.readUInt16() else { throw .truncated }
        guard length <= KeyValueStore.keyBytesMax else { throw .keyTooLong(Int(length)) }
        guard let bytes = reader.readBytes(Int(length)) else { throw .truncated }
        guard let key = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
        return key
    }
}
