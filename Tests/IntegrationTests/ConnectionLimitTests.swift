// Proves the connection bounds of a replica in this process (issue 9, finding 4): with
// `limits.connectionsMax = 3`, of four TCP connections one is closed at once and counted, the other
// three stay open until the handshake timeout, and a slot freed by a closed connection is taken again.
import Foundation
import NIOCore
import NIOPosix
import Testing
import ThemisApps
import ThemisCore
import ThemisPBFT
import ThemisCrypto
@testable import ThemisReplica

extension IntegrationSuite {
@Suite("Connection limits")
struct ConnectionLimitTests {
    /// A raw TCP connection to the replica, with a future that completes when the replica closes it.
    func connect(_ group: MultiThreadedEventLoopGroup, port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
    }

    func closedWithin(_ channel: any Channel, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if !channel.isActive { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return !channel.isActive
    }

    @Test("connectionsMax = 3: of four connections one is closed at once and counted; a freed slot is taken again")
    func connectionCap() async throws {
        let directory = NSTemporaryDirectory() + "themis-limit-\(UUID().uuidString.prefix(8))"
        let port = try ReplicaProcesses.freePortRange(count: 4)
        var limits = Limits()
        limits.connectionsMax = 3
        let cluster = try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 1, hosts: ["127.0.0.1"], basePort: port,
                                                     scheme: .hmac, plugin: PBFT.self, settings: ProtocolSettings(checkpointInterval: 50, watermarkWindow: 100),
                                                     limits: limits)
        let (_, keys) = try ClusterFile.loadKeys(path: directory + "/replica-0.key")
        let replica = try await ReplicaServer.start(options: ReplicaServer.Options(cluster: cluster, id: ReplicaID(0), keys: keys),
                                                    application: KeyValueStore())
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Four connections; the replica admits them on several event loops, so which one comes fourth
        // is not the client's order: exactly one of them must be closed, the others stay open.
        var channels: [any Channel] = []
        for _ in 0..<4 { channels.append(try await connect(group, port: port)) }
        var closed = 0
        for _ in 0..<250 {
            closed = channels.filter { !$0.isActive }.count
            if closed >= 1 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(200))
        closed = channels.filter { !$0.isActive }.count
        #expect(closed == 1, "one of four connections is closed at once")
        let refused = replica.metrics.connectionsRefused.value
        #expect(refused == 1)
        var open = channels.filter { $0.isActive }
        try await open.removeFirst().close()
        try? await Task.sleep(for: .milliseconds(200))
        let again = try await connect(group, port: port)
        #expect(!(await closedWithin(again, seconds: 1)), "a freed slot is taken again")
        for channel in open + [again] { try? await channel.close() }
        await replica.shutdown()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
}
