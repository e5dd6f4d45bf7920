/// The result of a `KeyValueOperation`, in a compact binary encoding:
/// a tag byte (0 ok, 1 value present, 2 value absent, 3 error), then for a present value a UInt32
/// length and the bytes, for an error a UInt32 length and the UTF-8 message. Big-endian; nothing may follow.
public enum KeyValueResult: Hashable, Sendable {
    /// A put or delete succeeded.
    case ok
    /// A get's answer: the value, or nil if the key is absent.
    case value([UInt8]?)
    /// The operation was malformed or refused; it changed nothing.
    case error(String)

    enum Tag: UInt8 {
        case ok = 0
        case present = 1
        case absent = 2
        case error = 3
    }

    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        switch self {
        case .ok:
            writer.append(Tag.ok.rawValue)
        case .value(.some(let bytes)):
            writer.append(Tag.present.rawValue)
            writer.append(UInt32(truncatingIfNeeded: bytes.count))
            writer.append(contentsOf: bytes)
        case .value(.none):
            writer.append(Tag.absent.rawValue)
        case .error(let message):
            let utf8 = Array(message.utf8)
            writer.append(Tag.error.rawValue)
            writer.append(UInt32(truncatingIfNeeded: utf8.count))
            writer.append(contentsOf: utf8)
        }
        return writer.bytes
    }

    /// Decodes a result, e.g. from a replica's reply.
    /// - Throws: `KeyValueError` saying what is wrong; never traps.
    public init(decoding bytes: [UInt8]) throws(KeyValueError) {
        var reader = ByteReader(bytes)
        guard let tagByte = reader.readUInt8() else { throw .empty }
        guard let tag = Tag(rawValue: tagByte) else { throw .unknownTag(tagByte) }
        switch tag {
        case .ok:
            self = .ok
        case .absent:
            self = .value(nil)
        case .present:
            guard let length = reader.readUInt32() else { throw .truncated }
            guard length <= KeyValueStore.valueBytesMax else { throw .valueTooLarge(Int(length)) }
            guard let value = reader.readBytes(Int(length)) else { throw .truncated }
            self = .value(value)
        case .error:
            guard let length = reader.readUInt32(), let utf8 = reader.readBytes(Int(length)) else { throw .truncated }
            guard let message = String(validating: utf8, as: UTF8.self) else { throw .invalidUTF8 }
            self = .error(message)
        }
        guard reader.remainingCount == 0 else { throw .trailingBytes(reader.remainingCount) }
    }
}
