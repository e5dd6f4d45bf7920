import NIOConcurrencyHelpers
import ThemisCore

/// Counters of what a replica saw, readable from any thread (for the status endpoint and logs).
public struct ReplicaCounters: Sendable, Hashable {
    public var messagesReceived = 0
    public var requestsReceived = 0
    /// Messages whose authenticator (or an embedded request's) did not verify.
    public var authenticationFailures = 0
    /// Messages naming a sender other than the authenticated peer of the link.
    public var forgedSenders = 0
    /// PRE-PREPAREs that verified except for a client request in the batch (prepared only once vouched for).
    public var unverifiedBatches = 0
    /// Connections closed for a protocol violation (malformed frame, failed handshake, ...).
    public var connectionsRejected = 0
    /// Inputs the protocol core rejected, by kind.
    public var rejections: [String: Int] = [:]
    /// Outgoing frames dropped because the peer does not read (its connection stayed unwritable past the
    /// write-buffer high watermark); the peer gets them again by retransmission.
    public var framesDroppedUnwritable = 0
    /// Connections refused because `Limits.connectionsMax` were open.
    public var connectionsRefused = 0
    /// Status queries dropped because `statusQueriesPendingMax` were waiting.
    public var statusQueriesDropped = 0
    /// Times a connection stopped reading because the protocol loop was behind (read backpressure).
    public var readPauses = 0
    /// Read-only requests received (verified or not), answered by the application, and dropped because
    /// `readOnlyInFlightMax` waited for it.
    public var readOnlyReceived = 0
    public var readOnlyAnswered = 0
    public var readOnlyDropped = 0
    public var batchesExecuted = 0
    public var requestsExecuted = 0
}
