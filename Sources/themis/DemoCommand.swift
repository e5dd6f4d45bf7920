import ArgumentParser
import FoundationEssentials
import NIOCore
import NIOConcurrencyHelpers
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

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a local cluster (4 PBFT replicas, or 3 Hybster replicas), run a key-value workload, kill the primary midway (--durable: every replica, restarted from its data directory), check consistency.")

    @Option(name: .customLong("protocol"), help: "Protocol (from the catalog: pbft, or hybster with 3 replicas).") var protocolName = "pbft"
    @Option(help: "Concurrent clients.") var clients = 8
    @Option(help: "Total key-value operations.") var operations = 4000
    @Option(help: "Authentication: hmac, ed25519, ecdsa or rsa.") var auth = "ed25519"
    @Flag(help: "Keep the cluster directory (keys, logs) after the demo.") var keep = false
    @Flag(help: "Do not kill the primary midway.") var noKill = false
    @Flag(help: "Durable mode: every replica keeps a data directory; midway ALL replicas are killed (kill -9) and restarted from their data directories.") var durable = false
    @Flag(help: "TLS on every link (as keygen --tls): the replicas present certificates of a cluster authority, the clients verify them.") var tls = false
    @Option(help: "Comma-separated replica ids left down from the start (at most f): the cluster serves without them (no crash is injected then).") var down: String?

    func run() async throws {
        try await reportingErrors {
            guard let scheme = AuthenticationScheme(deployable: auth) else { throw ValidationError("unknown --auth \(auth)") }
            let directory = "/tmp/themis-demo-\(getpid())"
            let plugin = try ProtocolCatalog.plugin(named: protocolName, source: "--protocol")
            let count = plugin.faultModel == .hybrid ? 3 : 4
            let basePort = try await LocalCluster.freePorts(count: count)
            guard !durable || plugin.supportsDurability else { throw ValidationError("--durable: \(plugin.name) has no durable mode yet") }
            var cluster = try KeyGeneration.writeCluster(
                directory: directory, replicas: count, clients: clients, hosts: ["127.0.0.1"], basePort: basePort,
                scheme: scheme, plugin: plugin, settings: ProtocolSettings(checkpointInterval: 100, watermarkWindow: 200),
                dataDirectory: durable ? LocalCluster.dataDirectoryTemplate : nil)
            if tls { cluster = try TLSCertificates.issue(directory: directory, cluster: cluster) }
            print("Themis demo: \(count) replicas (f = 1, \(cluster.protocolName), \(scheme.rawValue)\(tls ? ", TLS" : "")) on 127.0.0.1:\(basePort)-\(basePort + count - 1), "
                + "\(clients) clients, \(operations) key-value operations")
            print("cluster directory: \(directory)")
            let leftDown = try parseDown(cluster.configuration)
            let started = (0..<count).filter { !leftDown.contains(ReplicaID(UInt32($0))) }
            let replicas = NIOLockedValueBox(try LocalCluster(directory: directory, count: count, app: "kv", durable: durable,
                                                              only: started, firstStart: true))
            let verdict: Bool
            do {
                verdict = try await runDemo(cluster: cluster, directory: directory, replicas: replicas)
            } catch {
                await replicas.withLockedValue { $0 }.stop()
                throw error
            }
            await replicas.withLockedValue { $0 }.stop()
            print("replicas stopped")
            if !keep && verdict { try? FileManager.default.removeItem(atPath: directory) }
            if !verdict { throw ExitCode.failure }
        }
    }

    private func runDemo(cluster: ClusterFile, directory: String, replicas: NIOLockedValueBox<LocalCluster>) async throws -> Bool {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var handles: [ThemisClient] = []
        for index in 0..<clients {
            let principal = Principal.client(ClientID(UInt32(index)))
            let keys = try loadKeys(of: principal, path: KeyGeneration.keyPath(directory: directory, principal: principal))
            var options = ThemisClient.Options()
            // A power cut (--durable): every replica restarts, restores and changes view (its restored primary
            // proposes nothing more in its view), which takes seconds in a debug build; the clients wait.
            if durable { options.deadlineMilliseconds = 60_000 }
            handles.append(try ThemisClient(cluster: cluster, id: ClientID(UInt32(index)), keys: keys, options: options, eventLoopGroup: group))
        }
        let leftDown = try parseDown(cluster.configuration)
        // Up to f replicas may be down (left down on purpose, or failing to start): the demo runs without them.
        let ready = try await waitUntilReady(handles[0], replicas: cluster.configuration.replicas,
                                             tolerating: cluster.configuration.faultsTolerated, grace: leftDown.isEmpty ? 10 : 2)
        if ready.down.isEmpty {
            print("all replicas up after \(formatted(ready.seconds)) s")
        } else {
            print("replicas up after \(formatted(ready.seconds)) s; down: replica \(ready.down.map { String($0.rawValue) }.joined(separator: ", "))"
                + (Set(ready.down) == Set(leftDown) ? " (left down with --down)" : " (see its log)")
                + "; no crash injected: one more failure would exceed f")
        }
        let workload = DemoWorkload(clients: handles, operations: operations)
        let count = cluster.replicas.count
        let durable = durable
        let crash = noKill || !ready.down.isEmpty ? nil : DemoWorkload.Crash(atOperation: operations / 2) { @Sendable in
            if durable {
                // A power cut: every replica dies at once and comes back from its data directory.
                await replicas.withLockedValue { $0 }.killAll()
                do {
                    let restarted = try LocalCluster(directory: directory, count: count, app: "kv", durable: true)
                    replicas.withLockedValue { $0 = restarted }
                } catch {
                    print("could not restart the replicas: \(error)")
                }
            } else {
                // The primary of view 0 is replica 0.
                replicas.withLockedValue { $0 }.kill(ReplicaID(0))
            }
        }
        let outcome = try await workload.run(crash: crash)
        var survivors = cluster.configuration.replicas.filter { !ready.down.contains($0) }
        if outcome.killedAt != nil, durable {
            print("power cut: every replica was killed (kill -9) after \(outcome.operationsBeforeKill) operations and restarted from its data directory")
            if let resumed = outcome.resumedAfterKill {
                print("progress resumed \(formatted(Double(resumed) / 1e9)) s after the kill (first operation started after the kill that completed)")
            }
        } else if outcome.killedAt != nil {
            survivors.removeAll { $0 == ReplicaID(0) }
            let report = try await handles[0].status(of: survivors[0])
            let primary = cluster.configuration.primary(of: report.view)
            print("view change: primary replica 0 was killed (kill -9) after \(outcome.operationsBeforeKill) operations; "
                + "the cluster moved to view \(report.view.rawValue) with primary replica \(primary.rawValue)")
            if let resumed = outcome.resumedAfterKill {
                print("progress resumed \(formatted(Double(resumed) / 1e9)) s after the kill (first operation started after the kill that completed)")
            }
        }
        let readBack = try await workload.readBack(outcome.models)
        let consistent = try await compareReplicas(handles[0], replicas: survivors)
        let latency = LatencySummary(nanoseconds: outcome.latencies)
        print("throughput: \(Int(Double(outcome.latencies.count) / outcome.seconds)) ops/s "
            + "(\(outcome.latencies.count) ops in \(formatted(outcome.seconds)) s)")
        print("latency ms: p50 \(formatted(latency.p50))  p90 \(formatted(latency.p90))  p99 \(formatted(latency.p99))  max \(formatted(latency.max))")
        let wrong = outcome.wrongResults + readBack
        let verdict = wrong == 0 && consistent
        print(verdict
            ? "verdict: CONSISTENT (every read matched the model, all replicas' state digests are equal)"
            : "verdict: INCONSISTENT (\(wrong) wrong results, replica digests equal: \(consistent))")
        for handle in handles { await handle.close() }
        try? await group.shutdownGracefully()
        return verdict
    }

    /// `--down`: distinct replica ids of the cluster, at most f.
    func parseDown(_ configuration: ClusterConfiguration) throws -> [ReplicaID] {
        guard let down else { return [] }
        var ids: [ReplicaID] = []
        for word in down.split(separator: ",") {
            guard let value = UInt32(word), configuration.contains(ReplicaID(value)), !ids.contains(ReplicaID(value)) else {
                throw ValidationError("--down: \"\(word)\" is not a distinct replica id below \(configuration.replicaCount)")
            }
            ids.append(ReplicaID(value))
        }
        guard ids.count <= configuration.faultsTolerated else {
            throw ValidationError("--down: \(ids.count) replicas down is more than f = \(configuration.faultsTolerated): the cluster could not order requests")
        }
        return ids
    }

    /// Waits until every replica executed the same sequence number, then compares their state digests.
    private func compareReplicas(_ client: ThemisClient, replicas: [ReplicaID]) async throws -> Bool {
        var reports: [StatusReport] = []
        for _ in 0..<50 {
            reports = []
            for replica in replicas {
                reports.append(try await client.status(of: replica))
            }
            if Set(reports.map(\.lastExecuted)).count == 1 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for report in reports {
            print("  replica \(report.replica.rawValue): view \(report.view.rawValue), executed seq \(report.lastExecuted.rawValue), "
                + "stable checkpoint \(report.lastStableCheckpoint.rawValue), state digest \(report.applicationDigest)")
        }
        return Set(reports.map(\.lastExecuted)).count == 1 && Set(reports.map(\.applicationDigest)).count == 1
    }
}
