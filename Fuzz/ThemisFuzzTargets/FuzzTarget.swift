#if canImport(Glibc)
import Glibc
#endif

/// The fuzz targets. Each takes one input and returns, or throws `FuzzFailure` when a property it checks
/// does not hold (a trap stops the process, as it would the replica).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The frame splitter followed by the message decoder on every frame (a byte stream from a peer).
    case frame
    /// One frame payload through `WireCodec.decode`: canonical re-encoding, authenticated bytes, size bounds.
    case message
    /// A stranger's bytes on a replica's port before the handshake (frame decoder + handshake handler).
    case handshake
    /// A client that completed the handshake, then sends the input as its byte stream.
    case session
    /// A backup's PBFT core fed a sequence of authenticated messages, requests and ticks.
    case core

    /// The target THEMIS_FUZZ_TARGET names, read once.
    public static let selected: FuzzTarget? = getenv("THEMIS_FUZZ_TARGET").flatMap { FuzzTarget(rawValue: String(cString: $0)) }

    public func run(_ input: [UInt8]) throws(FuzzFailure) {
        switch self {
        case .frame: try FrameFuzz.run(input)
        case .message: try MessageFuzz.run(input)
        case .handshake: try HandshakeFuzz.run(input, session: false)
        case .session: try HandshakeFuzz.run(input, session: true)
        case .core: try CoreFuzz.run(input)
        }
    }
}

/// A property a target checks did not hold.
public struct FuzzFailure: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
