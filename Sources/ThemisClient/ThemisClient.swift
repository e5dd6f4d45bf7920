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
/// use several clients (ids) for concurrency.
public final class ThemisClient: Sendable {
    public struct Options: Sendable {
        /// How often the client's clock ticks.
        public var tickMilliseconds: Int64 = 10
        /// Time before a request is sent again to every replica (doubling each time).
        public var retransmitMilliseconds: Int64 = 500
        /// Time after which `invoke` throws `deadlineExceeded`.
        public var deadlineMilliseconds: Int64 = 10_000
        public init() {}
    }

    let loop: any EventLoop
    let ownedGroup: MultiThreadedEventLoopGroup?
    let keyring: Keyring
    let cluster: ClusterFile
    let options: Options
    let state: NIOLoopBoundBox<ClientState>
    public let id: ClientID

    /// Creates a client and starts connecting to every replica (reconnecting as needed).
    /// - Parameter eventLoopGroup: the group to run on; if nil the client owns a one-thread group.
    /// - Throws: `ConfigurationError` if the keys do not match the cluster file.
    public init(cluster: ClusterFile, id: ClientID, keys: PrivateKeys, options: Options = Options(),
                eventLoopGroup: (any EventLoopGroup)? = nil) throws {
        self.id = id
        self.cluster = cluster
        self.options = options
        self.keyring = try Keyring(cluster: cluster, me: .client(id), keys: keys)
        let group: any EventLoopGroup
        if let eventLoopGroup {
            group = eventLoopGroup
            ownedGroup = nil
        } else {
            let owned = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            group = owned
            ownedGroup = owned
        }
        loop = group.next()
        let core = ClientCore(
            id: id, configuration: cluster.configuration,
            options: ClientCore.Options(
                retransmitTicks: UInt64(max(1, options.retransmitMilliseconds / options.tickMilliseconds)),
                deadlineTicks: UInt64(max(1, options.deadlineMilliseconds / options.tickMilliseconds))))
        state = NIOLoopBoundBox.makeBoxSendingValue(ClientState(core: core), eventLoop: loop)
        loop.execute { self.startOnLoop() }
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

    /// The event loop this client's connections and callbacks run on.
    public var eventLoop: any EventLoop { loop }

    /// Asks one replica directly (not ordered) for its view, last executed sequence number and state digest.
    public func status(of replica: ReplicaID, timeoutMilliseconds: Int64 = 5000) async throws -> StatusReport {
        let promise = loop.makePromise(of: StatusReport.self)
        loop.execute { self.queryStatus(replica, promise: promise, timeoutMilliseconds: timeoutMilliseconds) }
        return try await promise.futureResult.get()
    }

    /// Closes every connection and fails waiting calls with `.closed`.
    public func close() async {
        let done = loop.makePromise(of: Void.self)
        loop.execute {
            self.state.value.closed = true
            self.state.value.ticker?.cancel()
            for (_, channel) in self.state.value.channels { channel.close(promise: nil) }
            self.state.value.failAll(ThemisClientError.closed)
            done.succeed(())
        }
        try? await done.futureResult.get()
        try? await ownedGroup?.shutdownGracefully()
    }

    static func wallClockMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec / 1000)
    }
}
