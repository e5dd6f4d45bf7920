import ThemisCore

/// The client side of PBFT as a pure state machine: request timestamps, the reply quorum and
/// retransmission. One request is outstanding at a time (PBFT's clients are closed-loop).
///
/// Read-only requests (Castro and Liskov's optimisation, adapted): sent to every replica, each answers from
/// its state without ordering; the result is final once `readOnlyQuorumSize` (every replica) match. If the
/// replies differ (a concurrent write, a lagging or lying replica), or not all arrive within the
/// retransmission interval, the core gives up on it (`fallBack`) and the driver orders the operation
/// instead. After a timeout, reads go straight to ordering for `readOnlyPauseTicks` (a replica that is down
/// would otherwise cost every read a timeout).
///
/// Time is counted in ticks supplied by the driver; timestamps come from a wall clock the driver reads,
/// so that a new process reusing a client id still issues larger timestamps than any earlier process.
public struct ClientCore: Sendable {
    public enum Output: Hashable, Sendable {
        /// Send the (authenticated) request to these replicas.
        case send(Request, to: [ReplicaID])
        /// Send the read-only request (authenticated as one) to these replicas.
        case sendReadOnly(Request, to: [ReplicaID])
        /// The read-only request gave no result: order `operation` (a new request, `start`), finishing by
        /// `deadlineTick` (the read's own deadline).
        case fallBack(operation: [UInt8], deadlineTick: UInt64)
        /// f+1 replicas sent matching replies (2f+1 if some are tentative): the result is final.
        case completed(Timestamp, result: [UInt8])
        /// The deadline passed without f+1 matching replies.
        case deadlineExceeded(Timestamp)
    }

    public struct Options: Hashable, Sendable {
        /// Ticks before the request is sent again, to every replica.
        public var retransmitTicks: UInt64
        /// Ticks after which the request fails.
        public var deadlineTicks: UInt64

        /// Ticks during which reads are ordered after one timed out.
        public var readOnlyPauseTicks: UInt64

        public init(retransmitTicks: UInt64 = 50, deadlineTicks: UInt64 = 1000, readOnlyPauseTicks: UInt64 = 1000) {
            self.retransmitTicks = retransmitTicks
            self.deadlineTicks = deadlineTicks
            self.readOnlyPauseTicks = readOnlyPauseTicks
        }
    }

    struct Outstanding: Sendable {
        let request: Request
        let deadlineTick: UInt64
        var retransmitTick: UInt64
        var retransmitInterval: UInt64
        /// A read-only request (every replica must answer alike; no retransmission).
        var readOnly = false
        /// The first reply per replica for this timestamp (a committed reply replaces a tentative one).
        var replies: [ReplicaID: Reply] = [:]
    }

    public let id: ClientID
    public let configuration: ClusterConfiguration
    public let options: Options
    public private(set) var lastTimestamp = Timestamp.zero
    /// The highest view a quorum-confirmed reply named; the client sends new requests to its primary.
    public private(set) var view = View(0)
    public private(set) var now: UInt64 = 0
    /// Reads are ordered until this tick (one timed out).
    public private(set) var readOnlyPausedUntil: UInt64 = 0
    /// Reads completed without ordering, and reads handed back to be ordered (`fallBack`).
    public private(set) var readOnlyCompleted = 0
    public private(set) var readOnlyFallbacks = 0
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
    /// - Parameter deadlineTick: when it fails; by default `deadlineTicks` from now (a fallback keeps the
    ///   read's deadline).
    public mutating func start(_ request: Request, deadlineTick: UInt64? = nil) -> Output {
        precondition(outstanding == nil, "a request is already outstanding")
        precondition(request.client == id, "request of \(request.client) started by \(id)")
        outstanding = Outstanding(
            request: request, deadlineTick: deadlineTick ?? now + options.deadlineTicks,
            retransmitTick: now + options.retransmitTicks, retransmitInterval: options.retransmitTicks)
        return .send(request, to: [configuration.primary(of: view)])
    }

    /// Starts a read-only request (created with `nextTimestamp`, authenticated as a read-only request):
    /// sent to every replica, or straight back as `fallBack` while reads are paused.
    /// - Precondition: no request is outstanding.
    public mutating func startReadOnly(_ request: Request) -> Output {
        precondition(outstanding == nil, "a request is already outstanding")
        precondition(request.client == id, "request of \(request.client) started by \(id)")
        guard now >= readOnlyPausedUntil else {
            readOnlyFallbacks += 1
            return .fallBack(operation: request.operation, deadlineTick: now + options.deadlineTicks)
        }
        outstanding = Outstanding(
            request: request, deadlineTick: now + options.deadlineTicks,
            retransmitTick: now + options.retransmitTicks, retransmitInterval: options.retransmitTicks, readOnly: true)
        return .sendReadOnly(request, to: configuration.replicas)
    }

    /// True if the outstanding request is a read-only one.
    public var outstandingIsReadOnly: Bool { outstanding?.readOnly ?? false }

    /// Whether `reply` could still count for the outstanding request (same timestamp, a replica not heard
    /// from yet). The driver asks before verifying the authenticator: replies for a request already
    /// completed (the n - f - 1 late ones) and floods of stale replies cost no MAC verification.
    /// A committed reply also replaces a replica's tentative one (a retransmission answered from its cache).
    public func awaits(_ reply: Reply) -> Bool {
        guard let current = outstanding, reply.client == id, reply.timestamp == current.request.timestamp else { return false }
        guard let earlier = current.replies[reply.replica] else { return true }
        return earlier.tentative && !reply.tentative
    }

    /// A reply whose authenticator the driver verified. Returns `.completed` once f+1 replicas agree, or a
    /// quorum (2f+1) if some of the matching replies are tentative (PBFT's tentative execution: 2f+1 replicas
    /// that prepared the batch in one view include f+1 correct ones, so it commits at that sequence number in
    /// every later view, with the same result; see `isFinal`). A read-only result needs every replica.
    public mutating func receive(_ reply: Reply) -> Output? {
        guard awaits(reply), configuration.contains(reply.replica), var current = outstanding else { return nil }
        outstanding = nil  // `current` is now the only copy: adding the reply does not copy the dictionary
        current.replies[reply.replica] = reply
        let quorum = current.readOnly ? configuration.readOnlyQuorumSize : configuration.replyQuorumSize
        let matching = current.replies.values.filter { $0.result == reply.result }
        guard current.readOnly ? matching.count >= quorum : Self.isFinal(matching, configuration: configuration) else {
            if current.readOnly {
                // Can any result still gather the quorum from the replicas not heard yet?
                var counts: [[UInt8]: Int] = [:]
                for other in current.replies.values { counts[other.result, default: 0] += 1 }
                let unheard = configuration.replicaCount - current.replies.count
                if (counts.values.max() ?? 0) + unheard < quorum {
                    readOnlyFallbacks += 1
                    return .fallBack(operation: current.request.operation, deadlineTick: current.deadlineTick)
                }
            }
            outstanding = current
            return nil
        }
        // Only a view that f+1 replicas vouch for (so one correct replica) moves the client: a faulty
        // replica claiming a huge view cannot steer requests to a primary of its choice.
        let views = matching.map(\.view).sorted(by: >)
        let confirmedView = views[configuration.replyQuorumSize - 1]
        if confirmedView > view { view = confirmedView }
        if current.readOnly { readOnlyCompleted += 1 }
        return .completed(reply.timestamp, result: reply.result)
    }

    /// Whether these matching replies make a result final: f+1 committed ones, or a quorum (2f+1) of committed
    /// ones and tentative ones of one view. The view matters for tentative replies: the argument that their batch
    /// commits needs f+1 correct replicas that prepared it in the same view. A committed reply from a correct
    /// replica already means the batch committed; from a faulty one it stands for nothing, and the f+1 correct
    /// replicas are then among the tentative ones of that view.
    static func isFinal(_ matching: [Reply], configuration: ClusterConfiguration) -> Bool {
        var committed = 0
        var tentativeViews: [View] = []
        for reply in matching {
            if reply.tentative { tentativeViews.append(reply.view) } else { committed += 1 }
        }
        if committed >= configuration.replyQuorumSize { return true }
        guard !tentativeViews.isEmpty else { return false }
        let sameView = tentativeViews.map { view in tentativeViews.count { $0 == view } }.max() ?? 0
        return committed + sameView >= max(configuration.replyQuorumSize, configuration.quorumSize)
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
        if current.readOnly {
            // Not every replica answered in time: order it, and order the next reads for a while too.
            outstanding = nil
            readOnlyPausedUntil = now + options.readOnlyPauseTicks
            readOnlyFallbacks += 1
            return .fallBack(operation: current.request.operation, deadlineTick: current.deadlineTick)
        }
        current.retransmitInterval = min(current.retransmitInterval * 2, options.deadlineTicks)
        current.retransmitTick = now + current.retransmitInterval
        outstanding = current
        return .send(current.request, to: configuration.replicas)
    }

    /// The outstanding request, to send to a replica whose connection just came up.
    public var outstandingRequest: Request? { outstanding?.request }
}
