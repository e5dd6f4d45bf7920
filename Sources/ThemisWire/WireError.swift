/// Why bytes from a peer could not be decoded. Every case is an operating error (bad input from
/// outside): the connection is closed, the error is counted, nothing crashes.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The payload ends in the middle of a field.
    case truncated
    /// A whole message was decoded but `count` bytes are left in the payload.
    case trailingBytes(count: Int)
    /// The payload's version byte is not `WireCodec.version`.
    case unsupportedVersion(UInt8)
    /// The payload's kind byte names no message.
    case unknownMessageKind(UInt8)
    /// A principal's kind byte is neither replica (0) nor client (1).
    case unknownPrincipalKind(UInt8)
    /// A length or count field exceeds its limit; checked before anything is read or allocated.
    case lengthTooLarge(field: String, length: Int, max: Int)
    /// A frame (or payload) is larger than `Limits.frameBytesMax`.
    case frameTooLarge(length: Int, max: Int)
    /// A frame's length prefix is 0: no message is empty, so the peer is broken.
    case emptyFrame
    /// A hello's nonce is not exactly `Hello.nonceByteCount` bytes.
    case invalidNonce
    /// A goodbye reason is not valid UTF-8.
    case invalidUTF8
    /// A replica message for another protocol than the one this replica runs.
    case unknownProtocol(UInt8)
    /// A well-formed message of a kind that is not expected here (a framework message where a protocol
    /// message must be).
    case unexpectedMessage
    /// A field holds a value no encoder writes (an unknown enumeration byte, say).
    case invalidValue(field: String, value: UInt64)

    public var description: String {
        switch self {
        case .truncated: return "message truncated: the payload ends inside a field"
        case .trailingBytes(let count): return "\(count) unexpected bytes after the end of the message"
        case .unsupportedVersion(let version): return "unsupported wire version \(version) (this side speaks \(WireCodec.version))"
        case .unknownMessageKind(let kind): return "unknown message kind \(kind)"
        case .unknownPrincipalKind(let kind): return "unknown principal kind \(kind)"
        case .lengthTooLarge(let field, let length, let max): return "\(field) length \(length) exceeds the limit of \(max)"
        case .frameTooLarge(let length, let max): return "frame of \(length) bytes exceeds the limit of \(max) bytes"
        case .emptyFrame: return "empty frame (length prefix 0)"
        case .invalidNonce: return "hello nonce is not \(Hello.nonceByteCount) bytes"
        case .invalidUTF8: return "goodbye reason is not valid UTF-8"
        case .unknownProtocol(let id): return "replica message of protocol \(id), which this replica does not run"
        case .unexpectedMessage: return "a message of a kind not expected here"
        case .invalidValue(let field, let value): return "\(field) holds \(value), which no encoder writes"
        }
    }
}
