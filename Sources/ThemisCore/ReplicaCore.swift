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
    associatedtype Message: Sendable

    /// This replica's id.
    var id: ReplicaID { get }

    /// A client request, received directly from the client.
    /// - Throws: a `Rejection` if the request is refused (stale, overload); nothing is appended then.
    mutating func submit(_ request: Verified<Request>, into actions: inout [Action<Message>]) throws(Rejection)

    /// A message from another replica.
    /// - Throws: a `Rejection` if the message is malformed or out of place; the core's state is unchanged.
    mutating func receive(_ message: Verified<Message>, into actions: inout [Action<Message>]) throws(Rejection)

    /// One tick of the clock. Time is counted in ticks.
    mutating func tick(into actions: inout [Action<Message>])

    /// End of a group of inputs: the primary closes batches while its pipeline has room.
    mutating func flush(into actions: inout [Action<Message>])

    /// The application finished the batch `sequence`; `results[i]` answers `batch.requests[i]`.
    /// - Parameter applicationSnapshot: the application's snapshot if the batch was a checkpoint (the core
    ///   keeps it to serve state transfers).
    mutating func executed(
        _ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?,
        into actions: inout [Action<Message>]
    )
}
