import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Prometheus
import NIOPosix
import ThemisCore
import ThemisCrypto
import ThemisTLS
import ThemisTransport
import ThemisWire

/// One replica process: listener, links to the other replicas, the protocol driver, the application executor.
///
/// Replica i connects to every replica with a smaller id (and reconnects when a link drops); replicas with
/// larger ids and clients connect to it. Every connection starts with the identity handshake.
public final class ReplicaServer: Sendable {
    public struct Options: Sendable {
        public var cluster: ClusterFile
        public var id: ReplicaID
        public var keys: PrivateKeys
        /// Length of one protocol tick.
        public var tickMilliseconds: Int64 = 10
        /// Address to listen on; defaults to the replica's host in the cluster file.
        public var bindHost: String?
        /// Event-loop threads for connections and the protocol driver (one of them). With several replicas
        /// sharing few cores, one thread avoids a cross-thread wake-up per message.
        public var eventLoopThreads = System.coreCount
        public var logger: Logger
        /// What the core gets from the process (the trusted subsystems of a hybrid protocol).
        public var environment = CoreEnvironment.none
        /// Checks the certificates of the cluster's trusted subsystems (hybrid protocols; nil otherwise).
        public var trustedVerifier: TrustedVerifier?
        /// Durable mode: the replica's data directory (write-ahead log and snapshots); nil: in memory only.
        public var dataDirectory: String?
        /// Durable mode: a snapshot that does not check out is discarded and the state fetched from the others
        /// (otherwise it is a start-up error).
        public var recoverFromPeers = false
        /// In-memory mode: the cluster's first start, known as such (`--first-start`): no recovery protocol.
        public var firstStart = false
        /// Where the replica counts (nil: a registry of its own); `/metrics` exports its registry.
        public var metrics: ReplicaMetrics?
        /// The operations endpoint (`/metrics`, `/status`, `/health`): its port (0: any free one; nil: none)
        /// and address (default: the replica's host in the cluster file).
        public var httpPort: Int?
        public var httpHost: String?
        /// TLS (required when the cluster file has `tls`): `TLSContexts.make` with this replica's identity.
        public var tls: TLSContexts?

        public init(cluster: ClusterFile, id: ReplicaID, keys: PrivateKeys, logger: Logger? = nil) {
            self.cluster = cluster
            self.id = id
            self.keys = keys
            self.logger = logger ?? Logger(label: "themis.replica.\(id.rawValue)")
        }
    }

    let options: Options
    let group: MultiThreadedEventLoopGroup
    let keyring: Keyring
    let driver: any ShellDriver
    let executor: ApplicationExecutor
    let serverChannel: any Channel
    let running: NIOLockedValueBox<Bool>
    let executorTask: Task<Void, Never>
    /// Fatal failures (the application refused a snapshot), reported once.
    let failures: AsyncStream<String>
    /// The operations endpoint's listener (`Options.httpPort`).
    let http: (any Channel)?
    /// The application's process (`--app-command`); nil when the application runs in this process.
    let applicationProcess: ApplicationProcess?
    /// What the replica counted so far.
    public let metrics: ReplicaMetrics

    /// Starts listening, connecting to peers and running the application.
    /// - Throws: `ConfigurationError` for keys that do not match the cluster file, or a bind error.
    public static func start(options: Options, application: some Application) async throws -> ReplicaServer {
        try await start(options: options, hosting: .inProcess(application))
    }

    /// Starts the replica with its application in its own process: `/bin/sh -c "exec COMMAND"`, spoken to
    /// over its stdin and stdout (docs/APPLICATION.md). If the application fails later (exits, breaks the
    /// protocol), `failure()` reports it and the replica executes nothing more.
    /// - Throws: as `start(options:application:)`, or `ApplicationProcessError.startup` if the application
    ///   does not start or does not answer `info` as it must.
    public static func start(options: Options, applicationCommand: String) async throws -> ReplicaServer {
        try await start(options: options, hosting: .process(.command(applicationCommand)))
    }

    /// Starts the replica with an application that already runs and listens on the Unix socket `path`
    /// (docs/APPLICATION.md; the same protocol as over a child's pipes). The replica does not stop it.
    public static func start(options: Options, applicationSocket path: String) async throws -> ReplicaServer {
        try await start(options: options, hosting: .process(.socket(path)))
    }

    /// Where the application runs.
    enum Hosting {
        case inProcess(any Application)
        case process(ApplicationProcess.Endpoint)
    }

    private static func start(options: Options, hosting: Hosting) async throws -> ReplicaServer {
        let cluster = options.cluster
        guard let endpoint = cluster.replicas.first(where: { $0.id == options.id.rawValue }) else {
            throw ConfigurationError.unknownPrincipal(.replica(options.id), file: "cluster.json")
        }
        let keyring = try Keyring(cluster: cluster, me: .replica(options.id), keys: options.keys, trusted: options.trustedVerifier)
        // Every check that can fail comes before the threads exist (a refused file leaks nothing).
        let plugin = try ProtocolCatalog.plugin(named: cluster.protocolName, source: "cluster.json")
        _ = try cluster.validated(source: "cluster.json").checked(for: plugin)
        let tls = options.tls
        if cluster.tls != nil, tls?.server == nil {
            throw TLSSetupError("cluster.json asks for TLS: replica \(options.id.rawValue) needs its certificate and key (replica-\(options.id.rawValue).tls.pem, written by themis keygen --tls)")
        }
        if cluster.tls == nil, tls != nil {
            throw TLSSetupError("TLS contexts were given but cluster.json has no tls: every member of a cluster must agree")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.eventLoopThreads))
        // An application that never suspends runs on the protocol loop (no thread hop per batch).
        let synchronous: (any SynchronousApplication)? = if case .inProcess(let application) = hosting {
            application as? any SynchronousApplication
        } else {
            nil
        }
        let executor = ApplicationExecutor(inline: synchronous != nil)
        let (failures, failureContinuation) = AsyncStream.makeStream(of: String.self)
        let metrics = options.metrics ?? ReplicaMetrics(registry: options.httpPort == nil ? nil : PrometheusCollectorRegistry())
        let openConnections = NIOLockedValueBox(0)
        let connectionsMax = cluster.limits.connectionsMax
        let driver: any ShellDriver
        var applicationProcess: ApplicationProcess?
        do {
            if case .process(let endpoint) = hosting {
                applicationProcess = try await ApplicationProcess.start(endpoint, limits: cluster.limits, group: group, logger: options.logger)
            }
            driver = try makeDriver(plugin, options: options, keyring: keyring, loop: group.next(), executor: executor, metrics: metrics) {
                failureContinuation.yield($0)
                failureContinuation.finish()
            }
            if let path = options.dataDirectory {
                let identity = "replica \(options.id.rawValue) of a \(cluster.protocolName) cluster of \(cluster.replicas.count)"
                let summary = try await driver.openDataDirectory(path, identity: identity, recoverFromPeers: options.recoverFromPeers).get()
                options.logger.notice("durable mode", metadata: [
                    "dataDir": "\(path)", "records": "\(summary.records)", "snapshots": "\(summary.snapshots.map(String.init).joined(separator: ","))",
                ])
                if let torn = summary.tornTail { options.logger.warning("a record torn by a crash was cut off", metadata: ["where": "\(torn)"]) }
                if let discarded = summary.discardedSnapshot {
                    options.logger.warning("snapshot discarded; fetching the state from the others", metadata: ["problem": "\(discarded)"])
                }
            }
        } catch {
            executor.finish()
            await applicationProcess?.stop()
            try? await group.shutdownGracefully()
            throw error
        }
        let onExecuted: @Sendable (SequenceNumber, [[UInt8]], [UInt8]?) -> Void = { sequence, results, snapshot in
            driver.executed(sequence, results: results, applicationSnapshot: snapshot)
        }
        let onFailure: @Sendable (String) -> Void = { message in
            options.logger.critical("\(message)")
            failureContinuation.yield(message)
            failureContinuation.finish()
        }
        let executorTask: Task<Void, Never>
        switch hosting {
        case .inProcess(let application):
            if let synchronous {
                executor.runInline(synchronous, onExecuted: onExecuted, onFailure: onFailure)
                executorTask = Task {}
            } else {
                executorTask = Task { await executor.run(application, onExecuted: onExecuted, onFailure: onFailure) }
            }
        case .process:
            guard let process = applicationProcess else { preconditionFailure("the application process starts above") }
            executorTask = Task { await executor.run(process: process, onExecuted: onExecuted, onFailure: onFailure) }
        }
        let server: any Channel
        var http: (any Channel)?
        do {
            server = try await ServerBootstrap(group: group)
                // Hundreds of clients may connect at once when a load starts (400 per-client clients
                // open 400 connections to each replica); a queue of 256 lets the kernel drop SYNs that
                // then wait for a retransmit. The kernel clamps this to net.core.somaxconn. (It did not
                // remove the 1-26 s start-up spread of 400 debug clients measured by hand: open.)
                .serverChannelOption(.backlog, value: 4096)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    // At most connectionsMax at once: a stranger cannot exhaust memory or descriptors.
                    let admitted = openConnections.withLockedValue { open in
                        guard open < connectionsMax else { return false }
                        open += 1
                        return true
                    }
                    guard admitted else {
                        metrics.connectionsRefused.add()
                        return channel.close()
                    }
                    metrics.connectionsAccepted.add()
                    metrics.connectionsOpen?.increment()
                    channel.closeFuture.whenComplete { _ in
                        openConnections.withLockedValue { $0 -= 1 }
                        metrics.connectionsOpen?.decrement()
                    }
                    return channel.eventLoop.makeCompletedFuture {
                        try tls?.addServerHandler(to: channel.pipeline.syncOperations)
                        try driver.configure(channel, keyring: keyring, cluster: cluster) { peer in
                            switch peer {
                            case .replica(let other): return cluster.configuration.contains(other) && other > options.id
                            case .client(let client): return cluster.clients.contains { $0.id == client.rawValue }
                            }
                        }
                    }
                }
                .bind(host: options.bindHost ?? endpoint.host, port: endpoint.port)
                .get()
            if let httpPort = options.httpPort {
                do {
                    http = try await HTTPEndpoint.start(host: options.httpHost ?? endpoint.host, port: httpPort, group: group,
                                                        router: operationsRouter(options: options, driver: driver, metrics: metrics))
                } catch {
                    try? await server.close()
                    throw error
                }
            }
        } catch {
            executor.finish()
            await executorTask.value
            await applicationProcess?.stop()
            await driver.closeDataDirectory()
            try? await group.shutdownGracefully()
            throw error
        }
        let replica = ReplicaServer(options: options, group: group, keyring: keyring, driver: driver, executor: executor,
                                    serverChannel: server, executorTask: executorTask, failures: failures, metrics: metrics,
                                    applicationProcess: applicationProcess, http: http)
        replica.startTicking()
        for other in cluster.configuration.replicas where other < options.id {
            replica.connect(to: other, delayMilliseconds: 0)
        }
        options.logger.info("replica listening", metadata: ["id": "\(options.id.rawValue)", "port": "\(endpoint.port)"])
        return replica
    }

    /// The shell's driver for `plugin`, with a fresh core (the caller checked the cluster against the plug-in's rules).
    private static func makeDriver<Plugin: ProtocolPlugin>(
        _ plugin: Plugin.Type, options: Options, keyring: Keyring, loop: any EventLoop, executor: ApplicationExecutor,
        metrics: ReplicaMetrics, onFailure: @escaping @Sendable (String) -> Void
    ) throws(TrustedCounterError) -> any ShellDriver {
        let cluster = options.cluster
        var environment = options.environment
        if environment.incarnation == 0 { environment.incarnation = UInt64.random(in: 1...UInt64.max) }
        var core = try Plugin.makeCore(id: options.id, configuration: cluster.configuration, settings: cluster.settings,
                                       limits: cluster.limits, environment: environment)
        // In-memory mode: this start may be a restart that forgot what it sent (durable mode decides in `restore`).
        if options.dataDirectory == nil, !options.firstStart { core.beginRecovery() }
        return ProtocolDriver<Plugin>(core: core, loop: loop, keyring: keyring, executor: executor, logger: options.logger, metrics: metrics,
                                      onFailure: onFailure)
    }

    private init(options: Options, group: MultiThreadedEventLoopGroup, keyring: Keyring, driver: any ShellDriver,
                 executor: ApplicationExecutor, serverChannel: any Channel, executorTask: Task<Void, Never>,
                 failures: AsyncStream<String>, metrics: ReplicaMetrics, applicationProcess: ApplicationProcess?, http: (any Channel)?) {
        self.http = http
        self.failures = failures
        self.applicationProcess = applicationProcess
        self.options = options
        self.group = group
        self.keyring = keyring
        self.driver = driver
        self.executor = executor
        self.serverChannel = serverChannel
        self.executorTask = executorTask
        self.metrics = metrics
        self.running = NIOLockedValueBox(true)
    }

    /// The port the listener is bound to.
    public var port: Int { serverChannel.localAddress?.port ?? 0 }

    /// The port of the operations endpoint, if it runs.
    public var httpPort: Int? { http?.localAddress?.port }

    private func startTicking() {
        let driver = self.driver
        let milliseconds = options.tickMilliseconds
        driver.loop.scheduleRepeatedTask(initialDelay: .milliseconds(milliseconds), delay: .milliseconds(milliseconds)) { task in
            guard self.running.withLockedValue({ $0 }) else { return task.cancel() }
            driver.tick()
        }
    }

    /// Connects to a replica with a smaller id, and again whenever the link drops.
    private func connect(to replica: ReplicaID, delayMilliseconds: Int64) {
        guard running.withLockedValue({ $0 }),
            let endpoint = options.cluster.replicas.first(where: { $0.id == replica.rawValue })
        else { return }
        let loop = group.next()
        loop.scheduleTask(in: .milliseconds(delayMilliseconds)) {
            guard self.running.withLockedValue({ $0 }) else { return }
            let keyring = self.keyring
            let cluster = self.options.cluster
            let driver = self.driver
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try self.options.tls?.addClientHandler(to: channel.pipeline.syncOperations, host: endpoint.host)
                        try driver.configure(channel, keyring: keyring, cluster: cluster) { $0 == .replica(replica) }
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
                .whenComplete { result in
                    switch result {
                    case .success(let channel):
                        channel.closeFuture.whenComplete { _ in self.connect(to: replica, delayMilliseconds: 200) }
                    case .failure:
                        self.connect(to: replica, delayMilliseconds: 200)
                    }
                }
        }
    }

    /// Stops accepting, closes every link and stops the application executor.
    public func shutdown() async {
        running.withLockedValue { $0 = false }
        try? await serverChannel.close()
        try? await http?.close()
        try? await driver.closeAllLinks().get()
        executor.finish()
        if let process = applicationProcess {
            // The executor waits for the batches in flight; an application that does not answer within 3 s is
            // stopped (its pipes closed, then killed) so that a stop never hangs on it.
            let deadline = Task {
                try await Task.sleep(for: .seconds(3))
                await process.stop()
            }
            await executorTask.value
            deadline.cancel()
            await process.stop()
        } else {
            await executorTask.value
        }
        await driver.closeDataDirectory()
        // Let close callbacks that hop between loops run before the loops stop.
        try? await Task.sleep(for: .milliseconds(50))
        try? await group.shutdownGracefully()
    }

    /// Waits until the replica fails for good (the application refused a snapshot; it no longer executes)
    /// and returns why; nil if the wait is cancelled first. The caller SHOULD then `shutdown()` and exit
    /// with an error.
    public func failure() async -> String? {
        for await message in failures { return message }
        return nil
    }

    /// Waits until the listener closes.
    public func waitUntilClosed() async {
        try? await serverChannel.closeFuture.get()
    }
}

/// The routes of the operations endpoint.
private func operationsRouter(options: ReplicaServer.Options, driver: any ShellDriver, metrics: ReplicaMetrics) -> HTTPEndpoint.Router {
    let started = ContinuousClock.now
    let configuration = options.cluster.configuration
    let protocolName = options.cluster.protocolName
    return { method, path in
        let loop = driver.loop
        guard method == .GET else {
            return loop.makeSucceededFuture(.init(status: .methodNotAllowed, contentType: "text/plain", body: Array("GET only\n".utf8)))
        }
        switch path {
        case "/metrics":
            return loop.makeSucceededFuture(.init(status: .ok, contentType: "text/plain; version=0.0.4", body: metrics.exposition()))
        case "/status":
            return driver.liveStatus().map { live in
                let uptime = ContinuousClock.now - started
                let report = StatusDocument(
                    id: live.id, protocol: protocolName, replicas: configuration.replicaCount, faultsTolerated: configuration.faultsTolerated,
                    view: live.view, primary: live.primary, lastExecuted: live.lastExecuted, stableCheckpoint: live.stableCheckpoint,
                    recovering: live.recovering, stateTransfers: metrics.stateTransfers.value, viewChanges: metrics.viewChanges.value,
                    replicasLinked: live.replicasLinked, clientsConnected: live.clientsConnected,
                    batchesExecuted: metrics.batchesExecuted.value, requestsExecuted: metrics.requestsExecuted.value,
                    queues: .init(inputs: live.inputsQueued, inputBytes: live.inputBytesQueued, readOnly: live.readOnlyWaiting,
                                  statusQueries: live.statusQueriesWaiting),
                    uptimeMilliseconds: uptime.components.seconds * 1_000 + uptime.components.attoseconds / 1_000_000_000_000_000,
                    peakResidentBytes: ProcessMemory.peakResidentBytes() ?? 0)
                let body = ((try? JSON.canonical(report)) ?? Array("{}".utf8)) + [UInt8(ascii: "\n")]
                return .init(status: .ok, contentType: "application/json", body: body)
            }
        case "/health":
            return driver.liveStatus().map { live in
                let needed = configuration.replicaCount - configuration.faultsTolerated - 1
                let problem: String? =
                    live.recovering ? "recovering (no votes until a quorum-estimated checkpoint is stable)"
                    : live.replicasLinked.count < needed ? "linked to \(live.replicasLinked.count) replicas, needs \(needed)" : nil
                if let problem { return .init(status: .serviceUnavailable, contentType: "text/plain", body: Array("unhealthy: \(problem)\n".utf8)) }
                return .init(status: .ok, contentType: "text/plain", body: Array("ok\n".utf8))
            }
        default:
            return loop.makeSucceededFuture(.init(status: .notFound, contentType: "text/plain", body: Array("/metrics, /status or /health\n".utf8)))
        }
    }
}

/// The body of `GET /status` (compact JSON, keys sorted, written by `JSON.canonical`).
struct StatusDocument: Encodable {
    struct Queues: Encodable {
        var inputs: Int
        var inputBytes: Int
        var readOnly: Int
        var statusQueries: Int
    }

    var id: UInt32
    var `protocol`: String
    var replicas: Int
    var faultsTolerated: Int
    var view: UInt64
    var primary: UInt32
    var lastExecuted: UInt64
    var stableCheckpoint: UInt64
    var recovering: Bool
    var stateTransfers: Int
    var viewChanges: Int
    var replicasLinked: [UInt32]
    var clientsConnected: Int
    var batchesExecuted: Int
    var requestsExecuted: Int
    var queues: Queues
    var uptimeMilliseconds: Int64
    var peakResidentBytes: UInt64
}
