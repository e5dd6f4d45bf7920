/// Distinct identifier types, so that a client id can never be passed where a replica id is meant.

/// The index of a replica in the cluster configuration, `0..<n`.
public struct ReplicaID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (lhs: ReplicaID, rhs: ReplicaID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "replica \(rawValue)" }
}

/// A client's identity; each client proves it with its own key.
public struct ClientID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public static func < (lhs: ClientID, rhs: ClientID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "client \(rawValue)" }
}

/// A view number. The primary of view `v` is replica `v mod n`.
public struct View: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (lhs: View, rhs: View) -> Bool { lhs.rawValue < rhs.rawValue }
    public var next: View { View(rawValue + 1) }
    public var description: String { "view \(rawValue)" }
}

/// The position of a batch in the total order agreed by the replicas.
public struct SequenceNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { lhs.rawValue < rhs.rawValue }
    public static let zero = SequenceNumber(0)
    public var next: SequenceNumber { SequenceNumber(rawValue + 1) }
    public static func + (lhs: SequenceNumber, rhs: UInt64) -> SequenceNumber { SequenceNumber(lhs.rawValue + rhs) }
    public var description: String { "seq \(rawValue)" }
}

/// A client's request timestamp. Timestamps of one client only grow; a replica executes a request
/// only if its timestamp is larger than the last one it executed for that client (exactly-once).
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.rawValue < rhs.rawValue }
    public static let zero = Timestamp(0)
    public var description: String { "t\(rawValue)" }
}

/// Anyone who can authenticate a message: a replica or a client.
public enum Principal: Hashable, Sendable, CustomStringConvertible {
    case replica(ReplicaID)
    case client(ClientID)

    public var description: String {
        switch self {
        case .replica(let id): return id.description
        case .client(let id): return id.description
        }
    }
}

/// The protocol a replica message belongs to: the wire carries replica messages as (protocol id, payload),
/// so the frame layer, the handshake and the client path stay the same when a protocol is added. Each
/// protocol plug-in owns one id; an id, once given, is never reused for another protocol.
public struct ProtocolID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(_ rawValue: UInt8) { self.rawValue = rawValue }
    public var description: String { "protocol \(rawValue)" }
}
