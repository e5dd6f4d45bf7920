// Proves that a view change after heavy load fits in frames (real processes, debug build): with keygen's
// default K = 1000 and L = 2000, `themis bench` drives 40 clients' 4 KiB requests for a few seconds, so
// that many megabytes of batches are prepared above the stable checkpoint; kill -9 the primary and the
// other three replicas change view and serve (no replica logs "frame of N bytes exceeds the limit"), and
// the killed replica, restarted empty, catches up with them. Prints the outage and the catch-up time.
import Foundation
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisCrypto
import ThemisWire

extension IntegrationSuite {
@Suite("View change after a large prepared log")
struct LargeViewChangeTests {
    static let replicaCount = 4
    /// The bench's clients take the cluster's first ids (0..<40); the test's own client is id 40.
    static let benchClients = 40
    static let requestSize = 4096
    /// What the fix must carry: well beyond one frame (4 MiB) of batches prepared above the stable checkpoint.
    static let preparedBytesWanted = 8.0 * 1024 * 1024
    /// A write of the bench application (any bytes; the first one must not be its read marker).
    static let operation: [UInt8] = {
        var bytes = [UInt8](repeating: 0x77, count: requestSize)
        bytes[0] = 0x57
        precondition(bytes[0] != BenchmarkApplication.readMarker)
        return bytes
    }()

    @Test("kill -9 the primary after 40 clients x 4 KiB of load with K = 1000, L = 2000: a new view serves and the restarted replica catches up")
    func viewChangeAfterLargeLoad() async throws {
        // ReplicaProcesses always passes --checkpoint-interval: pass keygen's default K; keygen sets L = 2K.
        let processes = try ReplicaProcesses(replicas: Self.replicaCount, clients: Self.benchClients + 4, checkpointInterval: 1000,
                                             auth: "hmac", application: ["bench"])
        defer { processes.stopAll() }
        try #require(processes.cluster.settings.checkpointInterval == 1000)
        try #require(processes.cluster.settings.watermarkWindow == 2000)
        let client = try processes.client(Self.benchClients, group: NIOSingleThreaded.group, deadlineMilliseconds: 60_000)
        do {
            try await run(processes, client)
        } catch {
            await client.close()
            throw TestFailure(description: "\(error)\n\(logTails(processes))")
        }
        await client.close()
    }

    private func run(_ processes: ReplicaProcesses, _ client: ThemisClient) async throws {
        try await processes.waitUntilReady(client)
        let everyone = Array(0..<Self.replicaCount)

        // 1. Load: until (an estimate of) the batches prepared above the stable checkpoint is well over a frame.
        let config = processes.directory + "/cluster.json"
        var reports: [Int: StatusReport] = [:]
        for attempt in 0..<3 {
            let (status, out, err) = try themis([
                "bench", "--config", config, "--clients", "\(Self.benchClients)", "--request-size", "\(Self.requestSize)",
                "--duration", attempt == 0 ? "3" : "2", "--warmup", "0.5", "--json",
            ])
            guard status == 0 else { throw TestFailure(description: "themis bench exited with \(status): \(err)") }
            let point = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "stdout: \(out)")
            let operations = (point["operations"] as? Int) ?? 0
            try #require(operations > 0, "bench completed no operation: \(out)")
            reports = await statuses(client, of: everyone)
            let mostExecuted = reports.values.max(by: { $0.lastExecuted < $1.lastExecuted })
            let ahead = try #require(mostExecuted, "no replica answered a status query")
            let executed = ahead.lastExecuted.rawValue, stable = ahead.lastStableCheckpoint.rawValue
            let perBatch = Double(ahead.requestsExecuted) / Double(max(1, ahead.batchesExecuted))
            let prepared = Double(executed > stable ? executed - stable : 0) * perBatch * Double(Self.requestSize)
            let rate = point["ops_per_s"].map { "\($0)" } ?? "?"
            let errors = point["errors"].map { "\($0)" } ?? "?"
            let perBatchText = String(format: "%.1f", perBatch)
            let preparedText = String(format: "%.1f", prepared / 1_048_576)
            print("large view change: bench \(operations) ops (\(rate) ops/s, \(errors) errors); \(executed) batches executed, "
                + "\(perBatchText) requests each, stable checkpoint \(stable): about \(preparedText) MiB of batches above it")
            if prepared >= Self.preparedBytesWanted { break }
            if attempt == 2 {
                print("large view change: WARNING: under \(Int(Self.preparedBytesWanted) / 1_048_576) MiB above the stable checkpoint; "
                    + "the VIEW-CHANGE may fit in a frame even without the fix")
            }
        }

        // 2. kill -9 the primary of the current view.
        let oldView = try #require(reports.values.map(\.view).max())
        let primary = Int(processes.cluster.configuration.primary(of: oldView).rawValue)
        let survivors = everyone.filter { $0 != primary }
        processes.kill(primary)
        let killed = Date()

        // 3. The other three change view and serve.
        var counter = try await order(client, after: 0, "first request after kill -9 of the primary (replica \(primary), \(oldView))")
        let outage = Date().timeIntervalSince(killed)
        print("large view change: first request completed \(String(format: "%.2f", outage)) s after kill -9 of replica \(primary)")
        let newView = await statuses(client, of: survivors).values.map(\.view).max()
        #expect((newView ?? oldView) > oldView, "the survivors are still in \(oldView)")

        // 4. Restart the killed replica (empty): service goes on and it catches up with the others.
        // `start` truncates its log: keep the old one for the diagnostics.
        let logPath = processes.directory + "/replica-\(primary).log"
        try? FileManager.default.copyItem(atPath: logPath, toPath: logPath + ".before-restart")
        try processes.start(primary)
        let restarted = Date()
        for index in 0..<20 {
            counter = try await order(client, after: counter, "request \(index + 1) of 20 after the restart of replica \(primary)")
        }
        var caughtUp: Double?
        var lastSeen = "no status"
        var polls = 0
        while Date().timeIntervalSince(restarted) < 60 {
            let reference = await statuses(client, of: survivors).values.max(by: { $0.lastExecuted < $1.lastExecuted })
            if let reference, let report = try? await client.status(of: ReplicaID(UInt32(primary)), timeoutMilliseconds: 500) {
                lastSeen = "replica \(primary) at \(report.lastExecuted) in \(report.view), the others at \(reference.lastExecuted) in \(reference.view)"
                if report.lastExecuted == reference.lastExecuted, report.applicationDigest == reference.applicationDigest {
                    caughtUp = Date().timeIntervalSince(restarted)
                    break
                }
            }
            polls += 1
            // Keep ordering now and then: new batches are the restarted replica's evidence that it is behind.
            if polls % 10 == 0 { counter = try await order(client, after: counter, "request while replica \(primary) catches up") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let seconds = try #require(caughtUp, "the restarted replica \(primary) did not catch up within 60 s: \(lastSeen)")
        print("large view change: restarted replica \(primary) caught up \(String(format: "%.2f", seconds)) s after its restart")

        for id in everyone {
            let log = processes.log(of: id)
            #expect(!log.contains("exceeds the limit"), "replica \(id) met a frame over the limit: \(log.suffix(2000))")
        }
    }

    /// Orders one bench operation; the result starts with the application's operation counter (8 bytes,
    /// big-endian), which must have grown since `previous`.
    private func order(_ client: ThemisClient, after previous: UInt64, _ stage: String) async throws -> UInt64 {
        let result: [UInt8]
        do {
            result = try await client.invoke(Self.operation)
        } catch {
            throw TestFailure(description: "\(stage): \(error)")
        }
        guard result.count >= 8 else { throw TestFailure(description: "\(stage): result of \(result.count) bytes") }
        let counter = result.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard counter > previous else { throw TestFailure(description: "\(stage): counter \(counter) after \(previous)") }
        return counter
    }

    /// The status of each of `replicas` that answers.
    private func statuses(_ client: ThemisClient, of replicas: [Int]) async -> [Int: StatusReport] {
        var reports: [Int: StatusReport] = [:]
        for id in replicas {
            if let report = try? await client.status(of: ReplicaID(UInt32(id)), timeoutMilliseconds: 2000) { reports[id] = report }
        }
        return reports
    }

    /// The end of every replica log (and of a restarted replica's log from before its restart).
    private func logTails(_ processes: ReplicaProcesses) -> String {
        var tails: [String] = []
        for id in 0..<Self.replicaCount {
            for name in ["replica-\(id).log.before-restart", "replica-\(id).log"] {
                guard let text = try? String(contentsOfFile: processes.directory + "/" + name, encoding: .utf8) else { continue }
                tails.append("--- \(name) (last 2000 characters) ---\n\(text.suffix(2000))")
            }
        }
        return tails.joined(separator: "\n")
    }
}
}
