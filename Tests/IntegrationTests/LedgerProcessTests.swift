// The ledger example end to end with real processes: `themis replica --app ledger`, appends through the
// `themis ledger` command and the Swift client, a backup restarted empty that catches up by state transfer
// (the ledger's snapshot restored and its chain rechecked), and `themis ledger verify`, which checks the chain
// and every replica's state: OK with all replicas, FAILED (exit 1) naming the replica that is down.
import Foundation
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore

/// Runs `themis ARGUMENTS`; returns its exit status and output.
func runThemis(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try runCapturing(try ReplicaProcesses.themisBinary(), arguments)
}

extension IntegrationSuite {
@Suite("Ledger example with real processes")
struct LedgerProcessTests {
    @Test("Appends from the command line and a client; a restarted replica catches up; verify checks the chain on every replica and fails, naming it, when one is down")
    func ledgerEndToEnd() async throws {
        let processes = try ReplicaProcesses(checkpointInterval: 10, auth: "hmac", application: ["ledger"])
        defer { processes.stopAll() }
        let config = processes.directory + "/cluster.json"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try processes.client(1, group: group)
        try await processes.waitUntilReady(client)
        let appended = try runThemis(["ledger", "--config", config, "--client", "0", "append", "genesis"])
        #expect(appended.status == 0 && appended.output.hasPrefix("block 0 "), "\(appended.output)")
        processes.kill(3)
        for index in 1...40 {
            let result = try Ledger.Result(decoding: try await client.invoke(Ledger.Operation.append(Array("entry \(index)".utf8)).encoded()))
            guard case .appended(let at, _) = result, at == UInt64(index) else { Issue.record("append \(index): \(result)"); return }
        }
        try processes.start(3)
        var height = 41
        let caughtUp = try await processes.waitUntilCaughtUp(3, via: client, rounds: 200) {
            _ = try await client.invoke(Ledger.Operation.append(Array("nudge".utf8)).encoded())
            height += 1
        } != nil
        #expect(caughtUp, "replica 3 did not catch up: \(processes.log(of: 3).suffix(1500))")
        let got = try runThemis(["ledger", "--config", config, "--client", "0", "get", "39", "5"])
        #expect(got.status == 0 && got.output.contains("entry 39") && got.output.contains("entry 40"), "\(got.output)")
        let verified = try runThemis(["ledger", "--config", config, "--client", "0", "verify"])
        #expect(verified.status == 0, "\(verified.output)")
        #expect(verified.output.contains("verdict: OK, all 4 replicas hold this chain of \(height) blocks"), "\(verified.output)")
        #expect(verified.output.contains("replica 3: its state is this chain"))
        processes.kill(2)
        let degraded = try runThemis(["ledger", "--config", config, "--client", "0", "verify", "--timeout", "20"])
        #expect(degraded.status == 1)
        #expect(degraded.output.contains("verdict: FAILED, replica 2 unreachable"), "\(degraded.output)")
        await client.close()
        try await group.shutdownGracefully()
    }
}
}
