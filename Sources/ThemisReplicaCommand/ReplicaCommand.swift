import Logging
import Metrics
import Prometheus
import ThemisApps
import ThemisCore
import ThemisCrypto
import ThemisReplica
import ThemisTLS

/// `themis replica` and `themis-replica`: runs one replica until SIGTERM or SIGINT.
public struct ReplicaCommand: Sendable {
    public static let abstract = "Run one replica until SIGTERM or SIGINT."

    public static let options: [CommandLineOption] = [
        CommandLineOption("config", help: "Path of cluster.json."),
        CommandLineOption("id", help: "This replica's id."),
        CommandLineOption("key", help: "Private key file (default: replica-<id>.key next to cluster.json)."),
        CommandLineOption("app", help: "Application: kv, bench or ledger. (default: kv)"),
        CommandLineOption("reply-size", help: "Reply size in bytes for --app bench. (default: 10)"),
        CommandLineOption("app-command", help: "Run the application in its own process: this shell command (run as `/bin/sh -c \"exec COMMAND\"`), spoken to over its stdin and stdout (docs/APPLICATION.md), e.g. \"python3 examples/python/kv_app.py\". Replaces --app."),
        CommandLineOption("app-socket", help: "Drive an application that already runs and listens on this Unix socket (the protocol of --app-command; docs/APPLICATION.md), e.g. one started with `python3 examples/python/kv_app.py --socket PATH`. Replaces --app."),
        CommandLineOption("log-level", help: "Log level: trace, debug, info, notice, warning, error. (default: info)"),
        CommandLineOption("http-port", help: "Serve /metrics (Prometheus), /status (JSON) and /health over HTTP on this port (0: any free port, logged)."),
        CommandLineOption("http-host", help: "The address of the HTTP endpoint (default: this replica's host in cluster.json)."),
        CommandLineOption("threads", help: "Event-loop threads (default: one per core)."),
        CommandLineOption("trusted-key", help: "Hybster: the trusted subsystems' key file (default: trusted-subsystem.key next to cluster.json)."),
        CommandLineOption("trusted-counter", help: "Hybster: in-process (the default) or process (a `trusted-counter` child process holds the counters, over a Unix socket)."),
        CommandLineOption("data-dir", help: "Durable mode (pbft and hybster): the directory of this replica's write-ahead log and checkpoint snapshots (created if missing). Default: this replica's dataDir in cluster.json (relative to its directory); without either, the replica lives in memory only."),
        CommandLineOption.flag("recover-from-peers", help: "Durable mode: if the snapshot in --data-dir does not check out, discard it and fetch the state from the other replicas (otherwise that is a start-up error)."),
        CommandLineOption.flag("first-start", help: "In-memory mode: this is the cluster's first start (nothing was ever sent), so skip the recovery protocol. Never on a restart: a replica restarted with it may contradict its earlier votes."),
        CommandLineOption("tls-identity", help: "TLS (when cluster.json has tls): this replica's certificate and private key, PEM (default: replica-<id>.tls.pem next to cluster.json, written by keygen --tls)."),
        CommandLineOption("counter-file", help: "Hybster: where the trusted subsystem keeps its counters (default: replica-<id>.counters next to cluster.json; one file per pillar, <path>.<pillar>)."),
    ]

    /// The help text; `command` is how it was invoked (`themis replica`, `themis-replica`).
    public static func help(command: String) -> String {
        commandHelp(usage: "\(command) --config <config> --id <id> [<options>]", abstract: abstract, options: options)
    }

    var config: String
    var id: UInt32
    var key: String?
    var app = "kv"
    var replySize = 10
    var appCommand: String?
    var appSocket: String?
    var logLevel = "info"
    var httpPort: Int?
    var httpHost: String?
    var threads: Int?
    var trustedKey: String?
    var trustedCounter = "in-process"
    var dataDir: String?
    var recoverFromPeers = false
    var firstStart = false
    var tlsIdentity: String?
    var counterFile: String?

    /// Parses the arguments after the command's name.
    public init(arguments: [String]) throws(CommandLineError) {
        let parsed = try ParsedOptions(arguments, options: Self.options)
        config = try parsed.required("config")
        guard let id = try parsed.integer("id", as: UInt32.self) else { throw .missingOption(option: "id") }
        self.id = id
        key = parsed.string("key")
        app = parsed.string("app") ?? app
        replySize = try parsed.integer("reply-size") ?? replySize
        appCommand = parsed.string("app-command")
        appSocket = parsed.string("app-socket")
        logLevel = parsed.string("log-level") ?? logLevel
        httpPort = try parsed.integer("http-port")
        httpHost = parsed.string("http-host")
        threads = try parsed.integer("threads")
        trustedKey = parsed.string("trusted-key")
        trustedCounter = parsed.string("trusted-counter") ?? trustedCounter
        dataDir = parsed.string("data-dir")
        recoverFromPeers = parsed.flag("recover-from-peers")
        firstStart = parsed.flag("first-start")
        tlsIdentity = parsed.string("tls-identity")
        counterFile = parsed.string("counter-file")
    }

    /// Runs the replica until SIGTERM or SIGINT (or a failure, thrown).
    public func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw CommandError("unknown --log-level \(logLevel)") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let (cluster, keys) = try loadClusterAndKeys(config: config, key: key, principal: .replica(ReplicaID(id)))
        var options = ReplicaServer.Options(cluster: cluster, id: ReplicaID(id), keys: keys)
        if cluster.tls != nil {
            let path = tlsIdentity ?? ClusterFile.tlsIdentityPath(directory: directory(of: config), replica: ReplicaID(id))
            options.tls = try TLSContexts.make(cluster: cluster, identityPEM: try ClusterFile.readBytes(path: path), identitySource: path)
        } else if tlsIdentity != nil {
            throw CommandError("--tls-identity is given but \(config) has no tls (keygen --tls writes one that has)")
        }
        if cluster.faultModel == .hybrid {
            let directory = directory(of: config)
            let key = try TrustedSubsystemKeyFile.load(path: trustedKey ?? "\(directory)/trusted-subsystem.key")
            let base = counterFile ?? "\(directory)/replica-\(id).counters"
            let replica = ReplicaID(id)
            // Verification stays in this process (through the subsystem it would cost a round trip per message).
            options.trustedVerifier = TrustedVerifier(key: key)
            switch trustedCounter {
            case "in-process":
                options.environment = CoreEnvironment { pillar throws(TrustedCounterError) in
                    try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: replica, pillar: pillar), key: key,
                                               store: try FileCounterStore(path: "\(base).\(pillar)"))
                }
            case "process":
                // The counter process keeps its counters across the replica's restarts; durable mode resumes the
                // counters at the replica's log (`TrustedCounter.resume`), which that process does not offer.
                guard dataDirectory(cluster: cluster) == nil else {
                    throw CommandError("--trusted-counter process is for in-memory mode; a durable replica (data directory \(dataDirectory(cluster: cluster) ?? "")) keeps its counters in-process, resumed from its write-ahead log")
                }
                let socket = "\(base).socket"
                try spawnTrustedCounter(["trusted-counter", "--socket", socket, "--trusted-key", trustedKey ?? "\(directory)/trusted-subsystem.key",
                                         "--counter-file", base, "--replica", "\(id)", "--pillars", "\(cluster.settings.pillars)"])
                let connection = try TrustedCounterConnection(path: socket)
                options.environment = CoreEnvironment { pillar throws(TrustedCounterError) in
                    try ProcessTrustedCounter(id: TrustedSubsystemID(replica: replica, pillar: pillar), connection: connection)
                }
            default:
                throw CommandError("--trusted-counter must be in-process or process (got \(trustedCounter))")
            }
        }
        let dataDir = dataDirectory(cluster: cluster)
        options.dataDirectory = dataDir
        guard dataDir != nil || !recoverFromPeers else { throw CommandError("--recover-from-peers needs --data-dir (or a dataDir in \(config))") }
        options.recoverFromPeers = recoverFromPeers
        guard dataDir == nil || !firstStart else {
            throw CommandError("--first-start is for in-memory mode (this replica is durable, with data directory \(dataDir ?? ""): an empty directory is the first start)")
        }
        options.firstStart = firstStart
        if let httpPort {
            guard (0...65_535).contains(httpPort) else { throw CommandError("--http-port must be 0...65535") }
            options.httpPort = httpPort
            options.httpHost = httpHost
            // Metrics recorded through swift-metrics (by the application or libraries) appear on /metrics too.
            let registry = PrometheusCollectorRegistry()
            let metrics = ReplicaMetrics(registry: registry)
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            options.metrics = metrics
        }
        if let threads {
            guard (1...256).contains(threads) else { throw CommandError("--threads must be 1...256") }
            options.eventLoopThreads = threads
        }
        let server: ReplicaServer
        guard appCommand == nil || appSocket == nil else { throw CommandError("give --app-command or --app-socket, not both") }
        if let appCommand {
            guard !appCommand.allSatisfy(\.isWhitespace) else { throw CommandError("--app-command is empty") }
            server = try await ReplicaServer.start(options: options, applicationCommand: appCommand)
        } else if let appSocket {
            server = try await ReplicaServer.start(options: options, applicationSocket: appSocket)
        } else {
        switch app {
        case "kv": server = try await ReplicaServer.start(options: options, application: KeyValueStore())
        case "bench": server = try await ReplicaServer.start(options: options, application: BenchmarkApplication(replyBytes: replySize))
        case "ledger": server = try await ReplicaServer.start(options: options, application: Ledger())
        default: throw CommandError("--app must be kv, bench or ledger (got \(app))")
        }
        }
        if let port = server.httpPort {
            options.logger.notice("operations endpoint", metadata: ["url": "http://\(options.httpHost ?? cluster.replicas.first { $0.id == id }?.host ?? "127.0.0.1"):\(port)/metrics"])
        }
        // Stop on SIGTERM / SIGINT, or with an error when the replica fails for good.
        let failure = await withTaskGroup(of: String?.self) { group in
            group.addTask { await waitForTerminationSignal(); return nil }
            group.addTask { await server.failure() }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        options.logger.info("stopping")
        await server.shutdown()
        if let failure { throw ReplicaFailure(description: "replica \(id) stopped: \(failure)") }
    }
}

extension ReplicaCommand {
    /// `--data-dir`, else this replica's `dataDir` in the cluster file (relative to the file's directory).
    func dataDirectory(cluster: ClusterFile) -> String? {
        if let dataDir { return dataDir }
        guard let path = cluster.replicas.first(where: { $0.id == id })?.dataDir else { return nil }
        return path.utf8.first == UInt8(ascii: "/") ? path : "\(directory(of: config))/\(path)"
    }
}

/// Loads and validates `cluster.json` and the private keys of `principal` (from `key`, or the key file
/// `keygen` put next to the cluster file), checking that the key file belongs to `principal`.
public func loadClusterAndKeys(config: String, key: String?, principal: Principal) throws -> (ClusterFile, PrivateKeys) {
    let cluster = try ClusterFile.load(path: config)
    // The framework's rules, then the protocol's (its messages fit the frame), naming this file in any error.
    _ = try cluster.validated(source: config).checked(for: try ProtocolCatalog.plugin(named: cluster.protocolName, source: config))
    return (cluster, try loadKeys(of: principal, path: key ?? KeyGeneration.keyPath(directory: directory(of: config), principal: principal)))
}

/// The private keys in `path`, checked to belong to `principal`.
public func loadKeys(of principal: Principal, path: String) throws -> PrivateKeys {
    let (owner, keys) = try ClusterFile.loadKeys(path: path)
    guard owner == principal else { throw CommandError("\(path) holds the keys of \(owner), not \(principal)") }
    return keys
}

/// A replica that stopped because it could not go on safely (printed as one line, exit status 1).
struct ReplicaFailure: Error, CustomStringConvertible {
    let description: String
}
