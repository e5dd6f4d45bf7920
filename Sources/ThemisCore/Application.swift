/// A deterministic state machine replicated by Themis.
///
/// The framework keeps the client table and the reply cache; the application only executes operations.
/// Every replica MUST produce the same result and the same state from the same sequence of operations:
/// no clocks, no randomness, no iteration over unordered collections that leaks into results or snapshots.
public protocol Application: Sendable {
    /// Applies one operation and returns its result.
    mutating func execute(_ operation: [UInt8], from client: ClientID) async -> [UInt8]

    /// Answers `operation` on the current state without changing it, for a read-only request (not ordered:
    /// each replica answers on its own state, and the client accepts the result only if every replica's
    /// matches). Returns nil if `operation` is not one the application can answer read-only (a write sent as
    /// a read): the replica does not answer and the client falls back to an ordered request.
    /// The default answers nothing (every read-only request falls back to ordering).
    /// MUST be deterministic and MUST NOT change the state (its result may depend only on the state).
    func executeReadOnly(_ operation: [UInt8], from client: ClientID) async -> [UInt8]?

    /// A canonical serialization of the whole state (equal states MUST give equal bytes).
    func snapshot() async -> [UInt8]

    /// Replaces the state with a snapshot.
    /// - Throws: if the bytes are not a valid snapshot of this application.
    mutating func restore(from snapshot: [UInt8]) async throws
}

extension Application {
    public func executeReadOnly(_ operation: [UInt8], from client: ClientID) async -> [UInt8]? { nil }
}

/// An application whose every call returns without suspending and quickly (microseconds per operation, a
/// snapshot small enough to take between two protocol steps). A replica in the same process runs it on its
/// protocol loop, inside the step that orders a batch, instead of in a task of its own: each batch then
/// saves two thread wake-ups (to the task and back; such a hop to the storage thread and back measured about
/// 40 us each at the median under load, README "When fsync happens"): README "One client: five hops". An application that blocks, does I/O, or keeps a large state whose snapshot takes milliseconds
/// should stay a plain `Application`: while it runs, the replica orders nothing.
///
/// The rules of `Application` hold: the synchronous calls MUST be deterministic, and the async requirements
/// (given here) do exactly what the synchronous ones do.
public protocol SynchronousApplication: Application {
    /// `execute` without suspension.
    mutating func executeSynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8]
    /// `executeReadOnly` without suspension.
    func executeReadOnlySynchronously(_ operation: [UInt8], from client: ClientID) -> [UInt8]?
    /// `snapshot` without suspension.
    func snapshotSynchronously() -> [UInt8]
    /// `restore` without suspension.
    mutating func restoreSynchronously(from snapshot: [UInt8]) throws
}

extension SynchronousApplication {
    public mutating func execute(_ operation: [UInt8], from client: ClientID) async -> [UInt8] {
        executeSynchronously(operation, from: client)
    }

    public func executeReadOnly(_ operation: [UInt8], from client: ClientID) async -> [UInt8]? {
        executeReadOnlySynchronously(operation, from: client)
    }

    public func snapshot() async -> [UInt8] {
        snapshotSynchronously()
    }

    public mutating func restore(from snapshot: [UInt8]) async throws {
        try restoreSynchronously(from: snapshot)
    }
}
