import ThemisCore

/// The client side of PBFT as a pure state machine: request timestamps, the reply quorum and
/// retransmission. One request is outstanding at a time (PBFT's clients are closed-loop).
///
/// Time is counted in ticks supplied by the driver; timestamps come from a wall clock the driver reads,
/// so that a new process reusing a client id still issues larger timestamps than any earlier process.
public struct ClientCore: Sendable {
    public enum Output: Hashable, Sendable {
        /// Send the (authenticated) request to these replicas.
        case send(Request, to: [ReplicaID])
        /// f+1 replicas sent matching replies: the result is final.
        case completed(Timestamp, result: [UInt8])
        /// The deadline passed without f+1 matching replies.
        case deadlineExceeded(Timestamp)
    }

    public struct Options: Hashable, Sendable {
        /// Ticks before the request is sent again, to every replica.
        public var retransmitTicks: UInt64
        /// Ticks after which the request fails.
        public var deadlineTicks: UInt64

        public init(retransmitTicks: UInt64 = 50, deadlineTicks: UInt64 = 1000) {
            self.retransmitTicks = retransmitTicks
            self.deadlineTicks = deadlineTicks
        }
    }

    struct Outstanding: Sendable {
        let request: Request
        let deadlineTick: UInt64
        var retransmitTick: UInt64
        var retransmitInterval: UInt64
        /// The first reply per replica for this timestamp.
        var replies: [ReplicaID: Reply] = [:]
    }

    public let id: ClientID
    public let configuration: ClusterConfiguration
    public let options: Options
    public private(set) var lastTimestamp = Timestamp.zero
    /// The highest view a quorum-confirmed reply named; the client sends new requests to its primary.
    public private(set) var view = View(0)
    public private(set) var now: UInt64 = 0
    var outstanding: Outstanding?

    public init(id: ClientID, configuration: ClusterConfiguration, options: Options = Options()) {
        self.id = id
        self.configuration = configuration
        self.options = options
    }

    public var isBusy: Bool { outstanding != nil }

    /// The next timestamp: the wall clock in microseconds, or one more than the last if the clock is behind.
    public mutating func nextTimestamp(wallClockMicroseconds: UInt64) -> Timestamp {
        lastTimestamp = Timestamp(max(wallClockMicroseconds, lastTimestamp.rawValue + 1))
        return lastTimestamp
    }

    /// Starts a request (created with `nextTimestamp` and authenticated by the driver).
    /// - Precondition: no request is outstanding.
    public mutating func start(_ request: Request) -> Output {
        precondition(outstanding == nil, "a request is already outstanding")
        precondition(request.client == id, "request of \(request.client) started by \(id)")
        outstanding = Outstanding(
            request: request, deadlineTick: now + options.deadlineTicks,
            retransmitTick: now + options.retransmitTicks, retransmitInterval: options.retransmitTicks)
        return .send(request, to: [configuration.primary(of: view)])
    }

    /// Whether `reply` could still count for the outstanding request (same timestamp, a replica not heard
    /// from yet). The driver asks before verifying the authenticator: replies for a request already
    /// completed (the n - f - 1 late ones) and floods of stale replies cost no MAC verification.
    public func awaits(_ reply: Reply) -> Bool {
        guard let current = outstanding else { return false }
        return reply.client == id && reply.timestamp == current.request.timestamp && current.replies[reply.replica] == nil
    }

    /// A reply whose authenticator the driver verified. Returns `.completed` once f+1 replicas agree.
    public mutating func receive(_ reply: Reply) -> Output? {
        guard awaits(reply), configuration.contains(reply.replica), var current = outstanding else { return nil }
        outstanding = nil  // `current` is now the only copy: adding the reply does not copy the dictionary
        current.replies[reply.replica] = reply
        let matching = current.replies.values.filter { $0.result == reply.result }
        guard matching.count >= configuration.replyQuorumSize else {
            outstanding = current
            return nil
        }
        // Only a view that f+1 replicas vouch for (so one correct replica) moves the client: a faulty
        // replica claiming a huge view cannot steer requests to a primary of its choice.
        let views = matching.map(\.view).sorted(by: >)
        let confirmedView = views[configuration.replyQuorumSize - 1]
        if confirmedView > view { view = confirmedView }
        return .completed(reply.timestamp, result: reply.result)
    }

    /// One tick: retransmits to every replica (with backoff) and enforces the deadline.
    public mutating func tick() -> Output? {
        now += 1
        guard var current = outstanding else { return nil }
        if now >= current.deadlineTick {
            outstanding = nil
            return .deadlineExceeded(current.request.timestamp)
        }
        guard now >= current.retransmitTick else { return nil }
        current.retransmitInterval = min(current.retransmitInterval * 2, options.deadlineTicks)
        current.retransmitTick = now + current.retransmitInterval
        outstanding = current
        return .send(current.request, to: configuration.replicas)
    }

    /// The outstanding request, to send to a replica whose connection just came up.
    public var outstandingRequest: Request? { outstanding?.request }
}
