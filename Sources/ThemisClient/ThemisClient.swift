import NIOCore
import NIOPosix
import ThemisClientCore
import ThemisCore
import ThemisCrypto
import ThemisTransport
import ThemisWire

#if canImport(Glibc)
import Glibc
#endif

/// Errors a client call ends with.
public enum ThemisClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No f+1 matching replies arrived before the deadline.
    case deadlineExceeded(seconds: Double)
    /// The client was closed while the call was waiting.
    case closed
    /// The replica did not answer a status query in time.
    case statusTimeout(ReplicaID)
    /// The replica is not in the cluster configuration or not connected.
    case notConnected(ReplicaID)

    public var description: String {
        switch self {
        case .deadlineExceeded(let seconds): return "no f+1 matching replies within \(seconds) s"
        case .closed: return "the client was closed"
        case .statusTimeout(let replica): return "\(replica) did not answer the status query"
        case .notConnected(let replica): return "\(replica) is not connected"
        }
    }
}

/// A client of a Themis cluster: `try await client.invoke(operation)` returns the result once f+1
/// replicas sent matching replies. Calls on one client are ordered (one request outstanding at a time);
/// use several clients (ids) for concurrency, and let them share a `ClientSession` (one connection per
/// replica for all of them) when they live in one process.
public final class ThemisClient: Sendable {
    public struct Options: Sendable {
        /// How often the client's clock ticks (a client in a shared `ClientSession` ticks with the session).
        public var tickMilliseconds: Int64 = 10
        /// Time before a request is sent again to every replica (doubling each time).
        public var retransmitMilliseconds: Int64 = 500
        /// Time after which `invoke` throws `deadlineExceeded`.
        public var deadlineMilliseconds: Int64 = 10_000
        /// `invokeReadOnly`: a read not answered alike by every replica within `retransmitMilliseconds` is
        /// ordered; after one timed out, reads are ordered for this long (a replica that is down would
        /// otherwise cost every read the wait).
        public var readOnlyPauseMilliseconds: Int64 = 10_000
        public init() {}
    }

    let loop: any EventLoop
    let ownedGroup: MultiThreadedEventLoopGroup?
    let keyring: Keyring
    let cluster: ClusterFile
    let options: Options
    let session: ClientSession
    /// The session was made for this client alone: closing the client closes it.
    let ownsSession: Bool
    let state: NIOLoopBoundBox<ClientState>
    public let id: ClientID

    /// Creates a client with connections of its own and starts connecting to every replica (reconnecting
    /// as needed).
    /// - Parameter eventLoopGroup: the group to run on; if nil the client owns a one-thread group.
    /// - Throws: `ConfigurationError` if the keys do not match the cluster file.
    public convenience init(cluster: ClusterFile, id: ClientID, keys: PrivateKeys, options: Options = Options(),
                            eventLoopGroup: (any EventLoopGroup)? = nil) throws {
        let owned = eventLoopGroup == nil ? MultiThreadedEventLoopGroup(numberOfThreads: 1) : nil
        let loop = (eventLoopGroup ?? owned!).next()
        do {
            let session = try ClientSession(cluster: cluster, eventLoop: loop, tickMilliseconds: options.tickMilliseconds)
            try self.init(id: id, keys: keys, session: session, ownsSession: true, ownedGroup: owned, options: options)
        } catch {
            try? owned?.syncShutdownGracefully()
            throw error
        }
    }

    /// Creates a client that shares `session`'s connections with the session's other clients.
    /// - Throws: `ConfigurationError` if the keys do not match the cluster file.
    public convenience init(id: ClientID, keys: PrivateKeys, session: ClientSession, options: Options = Options()) throws {
        try self.init(id: id, keys: keys, session: session, ownsSession: false, ownedGroup: nil, options: options)
    }

    private init(id: ClientID, keys: PrivateKeys, session: ClientSession, ownsSession: Bool,
                 ownedGroup: MultiThreadedEventLoopGroup?, options: Options) throws {
        self.id = id
        self.cluster = session.cluster
        self.options = options
        self.keyring = try Keyring(cluster: session.cluster, me: .client(id), keys: keys)
        self.session = session
        self.ownsSession = ownsSession
        self.ownedGroup = ownedGroup
        self.loop = session.loop
        let tick = session.tickMilliseconds
        let core = ClientCore(
            id: id, configuration: cluster.configuration,
            options: ClientCore.Options(
                retransmitTicks: UInt64(max(1, options.retransmitMilliseconds / tick)),
                deadlineTicks: UInt64(max(1, options.deadlineMilliseconds / tick)),
                readOnlyPauseTicks: UInt64(max(0, options.readOnlyPauseMilliseconds / tick))))
        state = NIOLoopBoundBox.makeBoxSendingValue(ClientState(core: core), eventLoop: loop)
        // On the loop, join now: a call made right after init must find the client attached.
        if loop.inEventLoop {
            session.join(self)
        } else {
            loop.execute { self.session.join(self) }
        }
    }

    /// Orders `operation` through the cluster and returns the application's result.
    /// - Throws: `ThemisClientError.deadlineExceeded` if no f+1 matching replies arrive in time.
    public func invoke(_ operation: [UInt8]) async throws -> [UInt8] {
        let promise = loop.makePromise(of: [UInt8].self)
        loop.execute { self.enqueue(operation, promise: promise) }
        return try await promise.futureResult.get()
    }

    /// `invoke` as a future on the client's event loop, for load generators that chain the next call in
    /// the completion callback without an async hop.
    public func invokeOnLoop(_ operation: [UInt8]) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        if loop.inEventLoop {
            enqueue(operation, promise: promise)
        } else {
            loop.execute { self.enqueue(operation, promise: promise) }
        }
        return promise.futureResult
    }

    /// Reads `operation` without ordering it (PBFT's read-only optimisation): every replica answers from its
    /// state, and the result counts only if all of them match; otherwise (a concurrent write, a replica down
    /// or lagging, an application that does not answer `operation` read-only) it is ordered like `invoke`.
    /// Linearizable like `invoke`. Under Hybster replicas do not answer reads yet: this orders them at once.
    /// - Throws: `ThemisClientError.deadlineExceeded` if no result arrives in time.
    public func invokeReadOnly(_ operation: [UInt8]) async throws -> [UInt8] {
        let promise = loop.makePromise(of: [UInt8].self)
        loop.execute { self.enqueue(operation, readOnly: true, promise: promise) }
        return try await promise.futureResult.get()
    }

    /// `invokeReadOnly` as a future on the client's event loop.
    public func invokeReadOnlyOnLoop(_ operation: [UInt8]) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        if loop.inEventLoop {
            enqueue(operation, readOnly: true, promise: promise)
        } else {
            loop.execute { self.enqueue(operation, readOnly: true, promise: promise) }
        }
        return promise.futureResult
    }

    /// Reads this client completed without ordering, and reads it ordered instead (`invokeReadOnly`).
    public func readOnlyStatistics() async -> (completed: Int, fellBack: Int) {
        let promise = loop.makePromise(of: [Int].self)
        loop.execute { promise.succeed([self.state.value.core.readOnlyCompleted, self.state.value.core.readOnlyFallbacks]) }
        let counts = (try? await promise.futureResult.get()) ?? [0, 0]
        return (counts[0], counts[1])
    }

    /// The event loop this client's connections and callbacks run on.
    public var eventLoop: any EventLoop { loop }

    /// Asks one replica directly (not ordered) for its view, last executed sequence number and state digest.
    public func status(of replica: ReplicaID, timeoutMilliseconds: Int64 = 5000) async throws -> StatusReport {
        let promise = loop.makePromise(of: StatusReport.self)
        loop.execute { self.session.queryStatus(replica, promise: promise, timeoutMilliseconds: timeoutMilliseconds) }
        return try await promise.futureResult.get()
    }

    /// Fails waiting calls with `.closed` and leaves the session; a client with connections of its own
    /// closes them.
    public func close() async {
        let done = loop.makePromise(of: Void.self)
        loop.execute {
            self.closeOnLoop()
            if self.ownsSession { self.session.shutDown() }
            done.succeed(())
        }
        try? await done.futureResult.get()
        try? await ownedGroup?.shutdownGracefully()
    }

    /// Fails waiting calls and leaves the session (a no-op for a client the session refused).
    func closeOnLoop() {
        state.value.closed = true
        state.value.failAll(ThemisClientError.closed)
        session.leave(self)
    }

    static func wallClockMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
    }
}
