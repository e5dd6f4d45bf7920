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
