// Proves the benchmark tool's contract (real processes, debug build, figures not judged): `themis bench
// --local` prints one JSON object per client count with throughput, latency percentiles, every replica's
// peak RSS and the mean batch size, appends CSV rows, and rejects bad flags with one line. Also proves
// what it relies on: calls started from a completion callback (`invokeOnLoop`) all complete.
import Foundation
import NIOCore
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore

extension IntegrationSuite {
@Suite("Benchmark tool")
struct BenchToolTests {
    @Test("themis bench --local prints one JSON point per client count and appends CSV rows")
    func benchPrintsPoints() throws {
        let csv = NSTemporaryDirectory() + "themis-bench-test-\(UUID().uuidString.prefix(8)).csv"
        defer { try? FileManager.default.removeItem(atPath: csv) }
        let (status, out, err) = try themis(["bench", "--local", "--clients", "1,3", "--duration", "1", "--warmup", "0.3",
                                             "--json", "--csv", csv])
        #expect(status == 0, "stderr: \(err)")
        let lines = out.split(separator: "\n")
        #expect(lines.count == 2, "stdout: \(out)")
        var clients: [Int] = []
        for line in lines {
            let point = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            clients.append(try #require(point["clients"] as? Int))
            #expect((point["connections"] as? String) == "shared")
            #expect((point["errors"] as? Int) == 0)
            #expect(((point["operations"] as? Int) ?? 0) > 0)
            #expect(((point["ops_per_s"] as? Double) ?? 0) > 0)
            let latency = try #require(point["latency_ms"] as? [String: Double])
            let p50 = try #require(latency["p50"]), p99 = try #require(latency["p99"]), max = try #require(latency["max"])
            #expect(p50 > 0 && p50 <= p99 && p99 <= max)
            let rss = try #require(point["replica_peak_rss_bytes"] as? [Int])
            #expect(rss.count == 4)
            #expect(rss.allSatisfy { $0 > 1_000_000 }, "peak RSS from each replica's /proc/self/status: \(rss)")
            #expect(((point["batch_size_mean"] as? Double) ?? 0) >= 1)
        }
        #expect(clients == [1, 3])
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 3)
        #expect(rows.first?.hasPrefix("label,protocol,auth,clients,") == true)
    }

    @Test("themis bench --config measures a running cluster (replicas with --app bench)")
    func benchAgainstRunningCluster() async throws {
        let processes = try ReplicaProcesses(clients: 3, auth: "hmac", application: ["bench", "--reply-size", "24"])
        defer { processes.stopAll() }
        let probe = try processes.client(2, group: NIOSingleThreaded.group)
        try await processes.waitUntilReady(probe)
        await probe.close()
        let config = processes.directory + "/cluster.json"
        let (status, out, err) = try themis(["bench", "--config", config, "--clients", "2", "--duration", "1", "--warmup", "0.3",
                                             "--reply-size", "24", "--json", "--connections", "per-client"])
        #expect(status == 0, "stderr: \(err)")
        let point = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect((point["clients"] as? Int) == 2)
        #expect((point["connections"] as? String) == "per-client")
        #expect((point["errors"] as? Int) == 0)
        #expect(((point["operations"] as? Int) ?? 0) > 0)
        #expect(((point["replica_peak_rss_bytes"] as? [Int]) ?? []).count == 4)
        // The cluster lists 3 clients: asking for more is a clear error, not a hang.
        let (tooMany, _, tooManyError) = try themis(["bench", "--config", config, "--clients", "4", "--duration", "1"])
        #expect(tooMany != 0)
        #expect(tooManyError.contains("3 clients"), "stderr: \(tooManyError)")
    }

    @Test("themis status shows every replica; with one killed it says so, and bench --config measures the others and names it")
    func statusAndBenchWithAReplicaDown() async throws {
        let processes = try ReplicaProcesses(clients: 3, auth: "hmac", application: ["bench"])
        defer { processes.stopAll() }
        let probe = try processes.client(2, group: NIOSingleThreaded.group)
        try await processes.waitUntilReady(probe)
        await probe.close()
        let config = processes.directory + "/cluster.json"
        let (allUp, table, allUpError) = try themis(["status", "--config", config])
        #expect(allUp == 0, "stderr: \(allUpError)")
        #expect(table.contains("pbft cluster of 4 (f = 1): 4 up, 0 unreachable"), "\(table)")
        #expect(table.split(separator: "\n").filter { $0.contains(" up ") && $0.contains("3/3") }.count == 4, "\(table)")
        processes.kill(3)
        let (oneDown, downTable, oneDownError) = try themis(["status", "--config", config, "--timeout", "500"])
        #expect(oneDown == 0, "stderr: \(oneDownError)")
        #expect(downTable.contains("3 up, 1 unreachable"), "\(downTable)")
        #expect(downTable.split(separator: "\n").contains { $0.hasPrefix("3 ") && $0.contains("unreachable") }, "\(downTable)")
        let (json, jsonOut, _) = try themis(["status", "--config", config, "--timeout", "500", "--json"])
        #expect(json == 0 && jsonOut.split(separator: "\n").count == 4 && jsonOut.contains("{\"replica\":3,\"up\":false}"), "\(jsonOut)")
        let (status, out, err) = try themis(["bench", "--config", config, "--clients", "2", "--duration", "1", "--warmup", "0.3", "--json"])
        #expect(status == 0, "stderr: \(err)")
        #expect(err.contains("down: replica 3; measuring with 3 of 4"), "stderr: \(err)")
        let point = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        #expect((point["errors"] as? Int) == 0 && ((point["operations"] as? Int) ?? 0) > 0)
        #expect(((point["replica_peak_rss_bytes"] as? [Int]) ?? []).count == 3)
        // Two down is more than f: status says the cluster cannot order, with a non-zero exit status.
        processes.kill(2)
        let (twoDown, _, twoDownError) = try themis(["status", "--config", config, "--timeout", "500"])
        #expect(twoDown != 0 && twoDownError.contains("fewer than a quorum"), "stderr: \(twoDownError)")
    }

    @Test("Bad bench flags give an error naming the problem and a non-zero exit status")
    func badFlags() throws {
        for arguments in [["--local", "--clients", "0"], ["--local", "--protocol", "raft"], ["--clients", "2"],
                          ["--local", "--auth", "rot13"], ["--local", "--connections", "one"], ["--local", "--ready-timeout", "0"]] {
            let (status, _, err) = try themis(["bench"] + arguments)
            #expect(status != 0, "\(arguments)")
            #expect(err.contains(arguments[arguments.count - 2]) || err.contains("--local"), "\(arguments): \(err)")
        }
        let (_, _, protocolError) = try themis(["bench", "--local", "--protocol", "raft"])
        #expect(protocolError.contains("pbft") && protocolError.contains("hybster"), "\(protocolError)")
    }

    @Test("Calls started from the completion callback of the previous one all complete")
    func chainedCallsComplete() async throws {
        let processes = try ReplicaProcesses(auth: "hmac")
        defer { processes.stopAll() }
        let group = NIOSingleThreaded.group
        let client = try processes.client(2, group: group)
        try await processes.waitUntilReady(client)
        let done = client.eventLoop.makePromise(of: Int.self)
        @Sendable func chain(_ step: Int) {
            guard step < 30 else { return done.succeed(step) }
            let operation = KeyValueOperation.put(key: "chain", value: [UInt8(step)]).encoded()
            client.invokeOnLoop(operation).whenComplete { result in
                switch result {
                case .success: chain(step + 1)
                case .failure(let error): done.fail(error)
                }
            }
        }
        client.eventLoop.execute { chain(0) }
        #expect(try await done.futureResult.get() == 30)
        let last = try KeyValueResult(decoding: try await client.invoke(KeyValueOperation.get(key: "chain").encoded()))
        #expect(last == .value([29]))
        await client.close()
    }
}
}
