import ArgumentParser
import FoundationEssentials
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisReplicaCommand
import ThemisCrypto
import ThemisReplica
import ThemisWire

#if canImport(Glibc)
import Glibc
#endif

/// `themis bench`: a closed-loop load generator. Each client keeps one request outstanding and sends
/// the next as soon as f+1 matching replies arrive; latencies go into an HdrHistogram.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Closed-loop benchmark: throughput, latency percentiles, replica peak memory and batch sizes.",
        discussion: """
            Either --local (starts 4 replica processes of this binary, running the benchmark application, \
            a fresh cluster per point, and stops them after) or --config FILE (an existing cluster whose \
            replicas run `themis replica --app bench`; client keys next to the file).
            Example: themis bench --local --clients 10,40 --request-size 100 --reply-size 10 --duration 20 --json
            """)

    @Option(help: "cluster.json of a running cluster (replicas started with --app bench).") var config: String?
    @Flag(help: "Start a local cluster (4 PBFT or 3 Hybster replicas) for each point and stop it afterwards.") var local = false
    @Option(help: "Closed-loop clients, or a comma-separated sweep such as 1,5,10,20,40.") var clients = "10"
    @Option(help: "Request (operation) size in bytes.") var requestSize = 100
    @Option(help: "Reply size in bytes (--local; a --config cluster's replicas set their own).") var replySize = 10
    @Option(help: "Measured seconds per point.") var duration = 10.0
    @Option(help: "Seconds of load before measuring starts.") var warmup = 2.0
    @Flag(help: "Send read operations as read-only requests (answered by every replica from its state, not ordered; a read that does not get n matching replies is ordered instead).") var readOnly = false
    @Option(name: .customLong("protocol"), help: "Protocol: pbft or hybster.") var protocolName = "pbft"
    @Option(help: "--local: Hybster's pillars (parallel ordering instances).") var pillars: UInt32 = 1
    @Option(help: "--local: Hybster's trusted subsystems in-process or in their own process.") var trustedCounter = "in-process"
    @Option(help: "Authentication for --local: hmac, ed25519, ecdsa or rsa.") var auth = "hmac"
    @Option(help: "--local: the replicas run their application in its own process, this command (`themis replica --app-command`), instead of the built-in benchmark application; it must answer the benchmark's operations, e.g. \"python3 examples/python/bench_app.py 10\" (10-byte replies).")
    var appCommand: String?
    @Flag(help: "--local: durable mode: every replica keeps a write-ahead log and snapshots in a data directory.") var durable = false
    @Flag(help: "--local: PBFT's tentative execution (keygen --tentative-execution): replies after the PREPARE round, clients accept 2f + 1 matching tentative replies.") var tentativeExecution = false
    @Flag(help: "--local: TLS on every link (keygen --tls): replicas with certificates, clients verify them.") var tls = false
    @Option(help: "Event-loop threads of the load generator.") var threads = 1
    @Option(help: "shared: the clients of each load thread share one connection per replica (a ClientSession); per-client: each client connects on its own.")
    var connections = Connections.shared
    @Option(help: "--local: event-loop threads per replica (4 replicas and the load generator share this machine's cores).")
    var replicaThreads = 1
    @Option(help: "--local: batches the primary keeps in flight (Limits.pipelineDepthMax).") var pipelineDepth = Limits().pipelineDepthMax
    @Option(help: "--local: requests per batch at most (Limits.batchRequestsMax).") var batchMax = Limits().batchRequestsMax
    @Option(help: "--local: checkpoint interval K in batches; the log window L is 2K (the log holds at most L batches).")
    var checkpointInterval = 32
    @Option(help: "--config: use the cluster file's clients from this index on (so two load generators never share a client id).")
    var firstClient = 0
    @Option(help: "Seconds to wait for every replica to answer and be linked to the others before measuring.") var readyTimeout = 20.0
    @Flag(help: "Print one JSON object per point on stdout.") var json = false
    @Option(help: "Append one CSV row per point to this file (header written if the file is new).") var csv: String?

    func validate() throws {
        guard local != (config != nil) else { throw ValidationError("give exactly one of --local and --config FILE") }
        guard ProtocolCatalog.all.contains(where: { $0.name == protocolName }) else {
            throw ValidationError("--protocol \(protocolName) is not available: this build implements "
                + ProtocolCatalog.all.map { $0.name }.joined(separator: ", "))
        }
        guard AuthenticationScheme(deployable: auth) != nil else { throw ValidationError("unknown --auth \(auth) (hmac, ed25519, ecdsa, rsa)") }
        _ = try sweep()
        guard requestSize >= 1, requestSize <= Limits().operationBytesMax else {
            throw ValidationError("--request-size must be 1...\(Limits().operationBytesMax)")
        }
        guard replySize >= 0, replySize <= Limits().resultBytesMax else {
            throw ValidationError("--reply-size must be 0...\(Limits().resultBytesMax)")
        }
        guard duration > 0, warmup >= 0 else { throw ValidationError("--duration must be > 0 and --warmup >= 0") }
        guard readyTimeout > 0, readyTimeout <= 86_400 else { throw ValidationError("--ready-timeout must be in (0, 86400] seconds") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1...64") }
        guard (1...64).contains(replicaThreads) else { throw ValidationError("--replica-threads must be 1...64") }
        guard (2...100_000).contains(checkpointInterval) else { throw ValidationError("--checkpoint-interval must be 2...100000") }
        guard (1...64).contains(pipelineDepth), (1...4096).contains(batchMax) else {
            throw ValidationError("--pipeline-depth must be 1...64 and --batch-max 1...4096")
        }
    }

    func sweep() throws -> [Int] {
        let counts = clients.split(separator: ",").map { Int(String($0.filter { !$0.isWhitespace })) }
        guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--clients must be positive counts such as 10 or 1,5,10,20,40 (got \(clients))")
        }
        return counts.compactMap { $0 }
    }

    func run() async throws {
        try await reportingErrors {
            let counts = try sweep()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
            var points: [BenchPoint] = []
            do {
                for count in counts {
                    let point: BenchPoint
                    if local {
                        point = try await runLocal(clients: count, group: group)
                    } else {
                        let path = config ?? ""
                        let cluster = try ClusterFile.load(path: path)
                        _ = try cluster.validated(source: path)
                        point = try await measure(cluster: cluster, directory: directory(of: path), clients: count, group: group)
                    }
                    points.append(point)
                    report(point)
                }
            } catch {
                try? await group.shutdownGracefully()
                throw error
            }
            try? await group.shutdownGracefully()
            if !json && points.count > 1 { printSummary(points) }
        }
    }

    private func runLocal(clients count: Int, group: MultiThreadedEventLoopGroup) async throws -> BenchPoint {
        let scheme = AuthenticationScheme(deployable: auth) ?? .hmac
        let directory = "/tmp/themis-bench-\(getpid())-\(count)"
        let plugin = try ProtocolCatalog.plugin(named: protocolName, source: directory + "/cluster.json")
        let replicaCount = plugin.faultModel == .hybrid ? 3 : 4
        let basePort = try await LocalCluster.freePorts(count: replicaCount)
        var limits = Limits()
        limits.pipelineDepthMax = pipelineDepth
        limits.batchRequestsMax = batchMax
        // The log (most of a replica's heap) holds at most L = 2K batches: with 40 clients sharing a session a
        // batch holds 40 requests, and K = 32 keeps peak RSS about 1 MiB below K = 128 at the same throughput.
        var settings = ProtocolSettings(checkpointInterval: UInt64(checkpointInterval), watermarkWindow: UInt64(2 * checkpointInterval))
        settings.pillars = pillars
        settings.tentativeExecution = tentativeExecution
        var cluster = try KeyGeneration.writeCluster(
            directory: directory, replicas: replicaCount, clients: count, hosts: ["127.0.0.1"], basePort: basePort, scheme: scheme,
            plugin: plugin, settings: settings, limits: limits, dataDirectory: durable ? LocalCluster.dataDirectoryTemplate : nil)
        if tls { cluster = try TLSCertificates.issue(directory: directory, cluster: cluster) }
        let replicas = try LocalCluster(directory: directory, count: replicaCount, app: "bench", extraArguments: ["--reply-size", "\(replySize)", "--threads", "\(replicaThreads)"]
                                           + (appCommand.map { ["--app-command", $0] } ?? [])
                                           + (plugin.faultModel == .hybrid ? ["--trusted-counter", trustedCounter] : []), durable: durable)
        let point: BenchPoint
        do {
            point = try await measure(cluster: cluster, directory: directory, clients: count, group: group)
        } catch {
            await replicas.stop()
            progress("replica logs kept in \(directory)")
            throw error
        }
        await replicas.stop()
        try? FileManager.default.removeItem(atPath: directory)
        return point
    }

    /// Runs one point: connect `count` clients, warm up, measure, read the replicas' counters.
    private func measure(cluster: ClusterFile, directory: String, clients count: Int,
                         group: MultiThreadedEventLoopGroup) async throws -> BenchPoint {
        guard firstClient >= 0, cluster.clients.count >= firstClient + count else {
            throw ValidationError("the cluster file lists \(cluster.clients.count) clients; --clients \(count) from --first-client \(firstClient) needs \(firstClient + count)")
        }
        // One session per load thread: its clients share one connection per replica.
        let sessions = connections == .shared ? try group.makeIterator().map { try ClientSession(cluster: cluster, eventLoop: $0) } : []
        var handles: [ThemisClient] = []
        for index in firstClient..<(firstClient + count) {
            let id = ClientID(cluster.clients[index].id)
            let keys = try loadKeys(of: .client(id), path: KeyGeneration.keyPath(directory: directory, principal: .client(id)))
            if sessions.isEmpty {
                handles.append(try ThemisClient(cluster: cluster, id: id, keys: keys, eventLoopGroup: group))
            } else {
                handles.append(try ThemisClient(id: id, keys: keys, session: sessions[index % sessions.count]))
            }
        }
        func closeAll() async {
            for handle in handles { await handle.close() }
            for session in sessions { await session.close() }
        }
        do {
            let point = try await measure(cluster: cluster, clients: handles)
            await closeAll()
            return point
        } catch {
            await closeAll()
            throw error
        }
    }

    private func measure(cluster: ClusterFile, clients handles: [ThemisClient]) async throws -> BenchPoint {
        let count = handles.count
        let replicas = cluster.configuration.replicas
        // A running cluster serves with up to f replicas down: measure it so, and say which.
        let (ready, down) = try await waitUntilReady(handles[0], replicas: replicas, seconds: readyTimeout,
                                                     tolerating: local ? 0 : cluster.configuration.faultsTolerated)
        let up = replicas.filter { !down.contains($0) }
        progress("\(count) clients: replicas ready after \(formatted(ready)) s"
            + (down.isEmpty ? "" : " (down: replica \(down.map { String($0.rawValue) }.joined(separator: ", ")); measuring with \(up.count) of \(replicas.count))")
            + "; warming up \(formatted(warmup, decimals: 1)) s")

        var operation = [UInt8](repeating: 0x77, count: requestSize)
        operation[0] = readOnly ? BenchmarkApplication.readMarker : 0x57
        let load = ClosedLoop(clients: handles, operation: operation, readOnly: readOnly)
        let start = monotonicNanoseconds()
        let measureFrom = start + UInt64(warmup * 1e9)
        let measureUntil = measureFrom + UInt64(duration * 1e9)
        load.start(measureFrom: measureFrom, measureUntil: measureUntil)

        try await sleep(until: measureFrom)
        let before = await counters(handles[0], replicas: up)
        while true {
            // Read the clock once: the window may end between a check and the subtraction (UInt64 would trap).
            let now = monotonicNanoseconds()
            guard now < measureUntil else { break }
            try await Task.sleep(for: .milliseconds(min(1000, max(1, Int((measureUntil - now) / 1_000_000)))))
            if isatty(STDERR_FILENO) == 1 {
                let elapsed = Double(monotonicNanoseconds() - measureFrom) / 1e9
                let done = load.completedInWindow
                writeToStandardError("\r  \(count) clients: \(formatted(min(elapsed, duration), decimals: 1)) s, "
                    + "\(Int(Double(done) / max(elapsed, 0.001))) ops/s, \(load.errors) errors   ")
            }
        }
        let outcome = await load.stop()
        if isatty(STDERR_FILENO) == 1 { writeToStandardError("\r\u{1B}[K") }
        let after = await counters(handles[0], replicas: up)
        let batches = up.compactMap { replica in after[replica].flatMap { a in before[replica].map { a.batchesExecuted &- $0.batchesExecuted } } }.max() ?? 0
        let requests = up.compactMap { replica in after[replica].flatMap { a in before[replica].map { a.requestsExecuted &- $0.requestsExecuted } } }.max() ?? 0
        return BenchPoint(
            label: "\(protocolName)-\(cluster.authentication.rawValue)" + (connections == .shared ? "" : "-\(connections.rawValue)")
                + (cluster.settings.pillars > 1 ? "-p\(cluster.settings.pillars)" : "") + (durable && local ? "-durable" : "") + (cluster.settings.tentativeExecution ? "-tentative" : "")
                + (cluster.faultModel == .hybrid && trustedCounter == "process" ? "-process" : ""),
            protocolName: cluster.protocolName,
            authentication: cluster.authentication.rawValue, connections: connections.rawValue,
            clients: count, requestSize: requestSize, replySize: replySize, readOnly: readOnly, seconds: duration,
            operations: outcome.histogram.totalCount, errors: outcome.errors, histogram: outcome.histogram,
            peakResidentBytes: up.compactMap { after[$0]?.peakResidentBytes },
            batchSizeMean: batches > 0 ? Double(requests) / Double(batches) : 0)
    }

    /// Every replica's status (counters, peak memory) after all batches handed to its application ran.
    /// (A replica that stops answering during the run is left out, not an error: up to f may fail.)
    private func counters(_ client: ThemisClient, replicas: [ReplicaID]) async -> [ReplicaID: StatusReport] {
        var reports: [ReplicaID: StatusReport] = [:]
        for replica in replicas {
            if let report = try? await client.status(of: replica, timeoutMilliseconds: 10_000) { reports[replica] = report }
        }
        // Informational only (the clients' own counts are the measurement): a status query that no replica
        // answers in time, as happened once in CI right after 400 per-client connections stopped, costs the
        // peak-RSS and batch-size columns, not the run.
        if reports.isEmpty {
            writeToStandardError("themis: no replica answered a status query; peak RSS and batch size not reported\n")
        }
        return reports
    }

    private func sleep(until deadline: UInt64) async throws {
        let now = monotonicNanoseconds()
        if deadline > now { try await Task.sleep(for: .nanoseconds(Int64(deadline - now))) }
    }

    private func report(_ point: BenchPoint) {
        if json {
            print(point.json)
        } else {
            print(point.text)
        }
        if let csv {
            do {
                try point.appendCSV(to: csv)
            } catch {
                printError("error: cannot write \(csv): \(error)")
            }
        }
    }

    private func printSummary(_ points: [BenchPoint]) {
        print("clients  ops/s    p50 ms  p90 ms  p99 ms  p99.9 ms  max ms  batch  peak RSS MiB (max of replicas)")
        for point in points {
            let columns = [
                pad("\(point.clients)", 7), pad("\(Int(point.opsPerSecond))", 8), pad(formatted(point.milliseconds(50)), 7),
                pad(formatted(point.milliseconds(90)), 7), pad(formatted(point.milliseconds(99)), 7),
                pad(formatted(point.milliseconds(99.9)), 9), pad(formatted(point.maxMilliseconds), 7),
                pad(formatted(point.batchSizeMean, decimals: 1), 6), formatted(Double(point.peakResidentBytes.max() ?? 0) / 1_048_576, decimals: 1),
            ]
            print(columns.joined(separator: " "))
        }
    }

    private func progress(_ message: String) {
        writeToStandardError(message + "\n")
    }
}

/// The closed loop: every client sends its next request from the completion callback of the previous
/// one, on its event loop (no async hop per request).
final class ClosedLoop: Sendable {
    struct Outcome {
        var histogram: Histogram<UInt64>
        var errors: Int
    }

    private struct State {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var completedInWindow = 0
        var errors = 0
        var running = 0
        var stopping = false
        var stopped: CheckedContinuation<Void, Never>?
    }

    private let clients: [ThemisClient]
    private let operation: [UInt8]
    private let readOnly: Bool
    private let state = NIOLockedValueBox(State())

    init(clients: [ThemisClient], operation: [UInt8], readOnly: Bool = false) {
        self.clients = clients
        self.operation = operation
        self.readOnly = readOnly
    }

    var completedInWindow: Int { state.withLockedValue { $0.completedInWindow } }
    var errors: Int { state.withLockedValue { $0.errors } }

    /// Starts every client; latencies of requests that start at or after `measureFrom` and complete
    /// by `measureUntil` are recorded; each client stops at its first completion after `measureUntil`.
    func start(measureFrom: UInt64, measureUntil: UInt64) {
        state.withLockedValue { $0.running = clients.count }
        for client in clients {
            client.eventLoop.execute { self.next(client, measureFrom: measureFrom, measureUntil: measureUntil) }
        }
    }

    private func next(_ client: ThemisClient, measureFrom: UInt64, measureUntil: UInt64) {
        let began = monotonicNanoseconds()
        (readOnly ? client.invokeReadOnlyOnLoop(operation) : client.invokeOnLoop(operation)).whenComplete { result in
            let ended = monotonicNanoseconds()
            let finished = self.state.withLockedValue { state -> Bool in
                switch result {
                case .success:
                    if began >= measureFrom && ended <= measureUntil {
                        _ = state.histogram.record(ended - began)
                        state.completedInWindow += 1
                    }
                case .failure:
                    if ended <= measureUntil { state.errors += 1 }
                }
                guard ended > measureUntil || state.stopping else { return false }
                state.running -= 1
                if state.running == 0, let stopped = state.stopped {
                    state.stopped = nil
                    stopped.resume()
                }
                return true
            }
            if !finished { self.next(client, measureFrom: measureFrom, measureUntil: measureUntil) }
        }
    }

    /// Waits until every client completed its last request.
    func stop() async -> Outcome {
        await withCheckedContinuation { continuation in
            state.withLockedValue { state in
                state.stopping = true
                if state.running == 0 {
                    continuation.resume()
                } else {
                    state.stopped = continuation
                }
            }
        }
        return state.withLockedValue { Outcome(histogram: $0.histogram, errors: $0.errors) }
    }
}

/// How the load generator's clients reach the replicas.
enum Connections: String, CaseIterable, ExpressibleByArgument {
    /// The clients of each load thread share one `ClientSession`.
    case shared
    /// Every client has connections of its own.
    case perClient = "per-client"
}

/// One measured point of a benchmark run.
struct BenchPoint {
    let label: String
    let protocolName: String
    let authentication: String
    let connections: String
    let clients: Int
    let requestSize: Int
    let replySize: Int
    let readOnly: Bool
    let seconds: Double
    let operations: UInt64
    let errors: Int
    let histogram: Histogram<UInt64>
    /// Per replica, in id order (0 where the replica did not report it).
    let peakResidentBytes: [UInt64]
    let batchSizeMean: Double

    var opsPerSecond: Double { Double(operations) / seconds }
    func milliseconds(_ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1e6 }
    var maxMilliseconds: Double { Double(histogram.max) / 1e6 }

    var text: String {
        "\(label) clients \(clients): \(Int(opsPerSecond)) ops/s; latency ms p50 \(formatted(milliseconds(50))) "
            + "p90 \(formatted(milliseconds(90))) p99 \(formatted(milliseconds(99))) p99.9 \(formatted(milliseconds(99.9))) "
            + "max \(formatted(maxMilliseconds)); batch size mean \(formatted(batchSizeMean, decimals: 1)); "
            + "replica peak RSS MiB \(peakResidentBytes.map { formatted(Double($0) / 1_048_576, decimals: 1) }.joined(separator: " ")); "
            + "\(errors) errors"
    }

    var json: String {
        "{\"label\":\"\(label)\",\"protocol\":\"\(protocolName)\",\"auth\":\"\(authentication)\",\"connections\":\"\(connections)\","
            + "\"clients\":\(clients),"
            + "\"request_size\":\(requestSize),\"reply_size\":\(replySize),\"read_only\":\(readOnly),"
            + "\"duration_s\":\(seconds),\"operations\":\(operations),\"errors\":\(errors),"
            + "\"ops_per_s\":\(formatted(opsPerSecond, decimals: 1)),"
            + "\"latency_ms\":{\"p50\":\(formatted(milliseconds(50), decimals: 3)),\"p90\":\(formatted(milliseconds(90), decimals: 3)),"
            + "\"p99\":\(formatted(milliseconds(99), decimals: 3)),\"p999\":\(formatted(milliseconds(99.9), decimals: 3)),"
            + "\"max\":\(formatted(maxMilliseconds, decimals: 3))},"
            + "\"replica_peak_rss_bytes\":[\(peakResidentBytes.map(String.init).joined(separator: ","))],"
            + "\"replica_peak_rss_bytes_max\":\(peakResidentBytes.max() ?? 0),"
            + "\"batch_size_mean\":\(formatted(batchSizeMean, decimals: 2))}"
    }

    static let csvHeader = "label,protocol,auth,clients,request_size,reply_size,read_only,duration_s,operations,errors,ops_per_s,"
        + "p50_ms,p90_ms,p99_ms,p999_ms,max_ms,peak_rss_bytes_max,batch_size_mean"

    var csvRow: String {
        [label, protocolName, authentication, "\(clients)", "\(requestSize)", "\(replySize)", "\(readOnly)", "\(seconds)",
         "\(operations)", "\(errors)", formatted(opsPerSecond, decimals: 1), formatted(milliseconds(50), decimals: 3),
         formatted(milliseconds(90), decimals: 3), formatted(milliseconds(99), decimals: 3),
         formatted(milliseconds(99.9), decimals: 3), formatted(maxMilliseconds, decimals: 3),
         "\(peakResidentBytes.max() ?? 0)", formatted(batchSizeMean, decimals: 2)].joined(separator: ",")
    }

    func appendCSV(to path: String) throws {
        let exists = FileManager.default.fileExists(atPath: path)
        let line = (exists ? "" : Self.csvHeader + "\n") + csvRow + "\n"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard descriptor >= 0 else { throw DemoError("cannot open \(path) for appending") }
        defer { close(descriptor) }
        let bytes = Array(line.utf8)
        guard write(descriptor, bytes, bytes.count) == bytes.count else { throw DemoError("short write to \(path)") }
    }
}

func writeToStandardError(_ text: String) {
    var standardError = StandardError()
    standardError.write(text)
}
