/// The contract every protocol implements: a value type that owns no threads, sockets, clocks or
/// randomness. The driver feeds it inputs and carries out the actions it appends, in order
/// (see `Action` for the ordering contract).
///
/// Driver procedure (one step):
/// 1. Verify the authenticators of incoming messages (in parallel, off the protocol thread).
/// 2. Feed each verified message with `receive`, each verified client request with `submit`, and
///    every `tick` of the clock with `tick`.
/// 3. After a group of inputs, call `flush` so the primary can close batches (adaptive batching).
/// 4. Carry out the appended actions in order: send, reply, execute on the application.
/// 5. When the application finishes a batch, report it with `executed`.
public protocol ReplicaCore: Sendable {
    /// The protocol's replica-to-replica messages.
    associatedtype Message: Sendable
    /// What the core reports for logs and metrics (`Action.observe`).
    associatedtype Event: ProtocolEvent
    /// Why the core refuses an input.
    associatedtype Rejection: ProtocolRejection
    /// What the core writes to its write-ahead log in durable mode (`Action.persist`); `Never` for a
    /// protocol without a durable mode.
    associatedtype Record: Sendable = Never

    /// This replica's id.
    var id: ReplicaID { get }
    var configuration: ClusterConfiguration { get }
    var settings: ProtocolSettings { get }
    var limits: Limits { get }
    /// The view this replica is in (for status reports).
    var view: View { get }
    /// The sequence number of the last stable checkpoint (for status reports).
    var stableCheckpoint: SequenceNumber { get }
    /// The last sequence number the core handed to the application (`execute`) or installed.
    var lastExecuted: SequenceNumber { get }

    /// A client request, received directly from the client.
    /// - Throws: a `Rejection` if the request is refused (stale, overload); nothing is appended then.
    mutating func submit(_ request: Verified<Request>, into actions: inout [Action<Message, Event, Record>]) throws(Rejection)

    /// A message from another replica.
    /// - Throws: a `Rejection` if the message is malformed or out of place; the core's state is unchanged.
    mutating func receive(_ message: Verified<Message>, into actions: inout [Action<Message, Event, Record>]) throws(Rejection)

    /// One tick of the clock. Time is counted in ticks.
    mutating func tick(into actions: inout [Action<Message, Event, Record>])

    /// End of a group of inputs: the primary closes batches while its pipeline has room.
    mutating func flush(into actions: inout [Action<Message, Event, Record>])

    /// The application finished the batch `sequence`; `results[i]` answers `batch.requests[i]`.
    /// - Parameter applicationSnapshot: the application's snapshot if the batch was a checkpoint (the core
    ///   keeps it to serve state transfers).
    mutating func executed(
        _ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?,
        into actions: inout [Action<Message, Event, Record>]
    )

    /// Rebuilds a freshly made core (durable mode, at start-up) from the records it persisted, oldest
    /// first. `snapshot(s)` is the saved state of checkpoint s, or nil if there is none (then the core
    /// fetches it by state transfer). The appended actions install that state, re-execute the committed
    /// batches after it and resend what the core had sent but may not have been received.
    mutating func restore(
        _ records: [Record], snapshot: (SequenceNumber) -> [UInt8]?, into actions: inout [Action<Message, Event, Record>]
    ) throws(RestoreError)

    /// In-memory mode, at start-up: the core starts with no memory of what it may have sent before (a first
    /// start looks the same as a restart). A protocol that needs it runs a recovery protocol (learn from a
    /// quorum how far it may have gone, and vote only beyond that); the default does nothing.
    mutating func beginRecovery()

    /// True while the core takes no part in agreement because it is recovering (see `beginRecovery`).
    var isRecovering: Bool { get }

    /// Whether the driver may answer read-only requests from the application's state now (see the default).
    var servesReadOnlyRequests: Bool { get }

    /// Whether the driver should hold read-only requests it may not answer yet and answer them once
    /// `servesReadOnlyRequests` (PBFT's tentative execution: until its tentative batches commit) rather than
    /// drop them (the client then orders them). The default: never.
    var defersReadOnlyRequests: Bool { get }
}

extension ReplicaCore {
    public mutating func beginRecovery() {}
    public var isRecovering: Bool { false }

    /// Whether the replica may answer read-only requests from its application's state: it is not recovering
    /// and it has handed the application everything up to its stable checkpoint. A replica that restarted
    /// empty may have answered a write before its crash; until its state is back at or beyond anything it
    /// could have executed then (the recovery target, below its stable checkpoint once recovery ends), a read
    /// it answered could miss that write. Its application may still lag the core (execution is queued), but
    /// a read is queued behind the batches handed over, so it sees at least this state.
    public var servesReadOnlyRequests: Bool { !isRecovering && lastExecuted >= stableCheckpoint }

    public var defersReadOnlyRequests: Bool { false }
}

extension ReplicaCore where Record == Never {
    public mutating func restore(
        _ records: [Record], snapshot: (SequenceNumber) -> [UInt8]?, into actions: inout [Action<Message, Event, Record>]
    ) throws(RestoreError) {
        throw .unsupported(protocolName: "\(Self.self)")
    }
}

/// A protocol's rejection of an input: an error with a cheap, stable label for counters and metrics.
public protocol ProtocolRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// The case name, without its details.
    var kind: String { get }
}

/// A protocol's observation. The driver logs it at the level it names and hands the few that the
/// framework's checker and counters need to them through `common`.
public protocol ProtocolEvent: Hashable, Sendable {
    /// How the shell logs it.
    var logLevel: EventLogLevel { get }
    /// One line for the log.
    var summary: String { get }
    /// The case name without its details: a stable label for counters and metrics.
    var kind: String { get }
    /// The protocol-neutral meaning of this event, if it has one.
    var common: CommonEvent? { get }
}

extension ProtocolEvent {
    /// By default the enum case's name (the text before its payload).
    public var kind: String {
        let text = "\(self)"
        return String(text.prefix { $0 != "(" })
    }
}

/// The level a driver logs an event at (the core itself never logs).
public enum EventLogLevel: Int, Sendable, Comparable {
    case trace, debug, info, notice, warning
    public static func < (lhs: EventLogLevel, rhs: EventLogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What every protocol reports in the same words: the simulator's checker compares checkpoints across
/// replicas, and counters count view changes and state transfers, whatever the protocol.
public enum CommonEvent: Hashable, Sendable {
    /// This replica's state after executing `SequenceNumber` has this digest (a checkpoint).
    case checkpointTaken(SequenceNumber, Digest)
    /// A checkpoint became stable (a quorum agrees on it).
    case checkpointStable(SequenceNumber, Digest)
    /// This replica entered `View` in normal operation, led by `primary`.
    case viewChanged(View, primary: ReplicaID)
    /// This replica installed the state of checkpoint `SequenceNumber` fetched from others.
    case stateTransferFinished(SequenceNumber)
    /// The tentative batch `SequenceNumber` (an `execute` marked tentative) committed: it stays executed.
    case tentativeCommitted(SequenceNumber)
    /// The tentative batch `SequenceNumber` will not commit here as executed: the core undoes it (it installs
    /// its stable checkpoint's state again and re-executes what committed).
    case tentativeUndone(SequenceNumber)
}
