// A cluster of hosts on one machine: each replica in a network namespace of its own (its own address and
// network stack), the links between them through scripts/netns-cluster.sh's switch with 5 ms one-way delay
// and 1 % frame loss; the clients run on this machine's side of the switch. The primary is killed under load
// and every acknowledged write must be read back. Needs root, `ip` and /dev/net/tun: CI runs as root; where
// they are missing the test is skipped and says why.
import Foundation
import NIOPosix
import Testing
import ThemisCore

/// `scripts/netns-cluster.sh` driven from a test.
struct NetnsCluster {
    let name: String
    let subnet: String
    let hosts: Int

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/netns-cluster.sh").path

    static let ip: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Why the test cannot run here, or nil when it can (`netns-cluster.sh check` makes a namespace and a TAP
    /// device and removes them).
    static let unavailable: String? = {
        if geteuid() != 0 { return "needs root for network namespaces (CI runs as root)" }
        if ip == nil { return "needs the ip command (iproute2)" }
        guard let (status, output) = try? runCapturing("/bin/bash", [script, "check"]) else { return "cannot run \(script)" }
        return status == 0 ? nil : output.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    var addresses: [String] { (1...hosts).map { "\(subnet).\($0)" } }

    func namespace(_ id: Int) -> String { "\(name)-\(id)" }

    /// The prefix that starts a command on host `id`.
    func launcher(_ id: Int) -> [String] { [NetnsCluster.ip ?? "ip", "netns", "exec", namespace(id)] }

    func up(delayMilliseconds: Double, lossPercent: Double) throws {
        try run(["up", "--name", name, "--subnet", subnet, "--hosts", "\(hosts)",
                 "--delay", "\(delayMilliseconds)", "--loss", "\(lossPercent)"])
    }

    func status() throws { try run(["status", "--name", name]) }

    func down() { try? run(["down", "--name", name]) }

    private func run(_ arguments: [String]) throws {
        let (status, text) = try runCapturing("/bin/bash", [NetnsCluster.script] + arguments)
        print(text, terminator: "")
        guard status == 0 else {
            throw TestFailure(description: "netns-cluster.sh \(arguments.joined(separator: " ")) exited \(status): \(text)")
        }
    }
}

extension IntegrationSuite {
@Suite("A cluster of hosts (network namespaces) with delay and loss")
struct MultiHostTests {
    @Test("4 replicas on 4 hosts, 5 ms delay and 1 % loss: kill -9 the primary under load, every acknowledged write is read back",
          .enabled(if: NetnsCluster.unavailable == nil, "\(NetnsCluster.unavailable ?? "")"))
    func primaryCrashAcrossHosts() async throws {
        let network = NetnsCluster(name: "thmit\(getpid() % 10_000)", subnet: "10.231.9", hosts: 4)
        try network.up(delayMilliseconds: 5, lossPercent: 1)
        defer { network.down() }
        let processes = try ReplicaProcesses(clients: 6, auth: "hmac", hosts: network.addresses,
                                             launcher: { network.launcher($0) })
        defer { processes.stopAll() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<4).map { try processes.client($0, group: group, deadlineMilliseconds: 30_000) }
        try await processes.waitUntilReady(clients[0])
        let killTime = LockedBox<Date?>(nil)
        let started = Date()
        let writes = try await writeWhile(clients, count: 100) {
            try await Task.sleep(for: .milliseconds(1_500))
            killTime.set(Date())
            processes.kill(0)
        }
        let kill = try #require(killTime.get())
        let before = writes.filter { $0.3 < kill }.count
        let resumed = try #require(outage(after: kill, writes), "no write started after the kill completed")
        print("hosts with 5 ms delay, 1 % loss: \(writes.count) writes acknowledged in "
            + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s (\(before) before the kill); "
            + "progress resumed \(String(format: "%.2f", resumed)) s after kill -9 of the primary")
        #expect(writes.count == 400)
        #expect(before > 0, "the primary was killed under load, not before it")
        #expect(try await readBackAll(writes, via: clients[1]) == 0)
        let report = try await clients[1].status(of: ReplicaID(1))
        #expect(report.view.rawValue >= 1)
        try network.status()  // the switch's per-link counts: frames were dropped on the way
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }
}
}
