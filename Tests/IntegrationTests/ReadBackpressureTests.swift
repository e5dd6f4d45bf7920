// Proves read backpressure in the replica shell (issue 9, finding 4): while the protocol loop is busy,
// verified inputs queue up; past `ProtocolDriverLimits.inputsQueuedHigh` inputs (or `inputBytesQueuedHigh`
// bytes of them: a few large PRE-PREPAREs) the driver asks the delivering
// connection to stop reading, the connection's autoRead goes off, and it comes back on once the loop has
// worked the queue down below `inputsQueuedLow`. Runs a real driver on a real event loop, in this process.
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import ThemisCore
import ThemisCrypto
import ThemisDriver
import ThemisPBFT
@testable import ThemisReplica

extension IntegrationSuite {
@Suite("Read backpressure")
struct ReadBackpressureTests {
    @Test("A connection stops reading while the protocol loop is behind (by input count or by bytes), and reads again once it caught up",
          arguments: [false, true])
    func pauseAndResume(large: Bool) async throws {
        let directory = NSTemporaryDirectory() + "themis-bp-\(UUID().uuidString.prefix(8))"
        let cluster = try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 1, hosts: ["127.0.0.1"], basePort: 7000,
                                                     scheme: .hmac, plugin: PBFT.self, settings: ProtocolSettings(checkpointInterval: 50, watermarkWindow: 100))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (_, keys) = try ClusterFile.loadKeys(path: directory + "/replica-1.key")
        let keyring = try Keyring(cluster: cluster, me: .replica(ReplicaID(1)), keys: keys)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let protocolLoop = group.next()
        let executor = ApplicationExecutor()
        let driver = ProtocolDriver<PBFT>(
            core: PBFTReplica(id: ReplicaID(1), configuration: cluster.configuration, settings: cluster.settings, limits: cluster.limits),
            loop: protocolLoop, keyring: keyring, executor: executor, logger: Logger(label: "test"),
            metrics: ReplicaMetrics())

        // A real TCP connection whose server side plays the replica's connection to a peer.
        let accepted = protocolLoop.makePromise(of: (any Channel).self)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: group).connect(to: server.localAddress!).get()
        let connection = try await accepted.futureResult.get()

        // Hold the protocol loop, then deliver more than the high mark in bursts (stale requests: each is
        // fed to the core and rejected, which is all we need).
        let release = NIOLockedValueBox(false)
        protocolLoop.execute { while !release.withLockedValue({ $0 }) { usleep(1_000) } }
        let operation = [UInt8](repeating: 7, count: 1 << 20)
        let burst = large
            ? (0..<8).map { index in
                // 1 MiB each by the size estimate (the operation's storage is shared, so the test holds little).
                DriverInput<PBFTMessage>.message(Verified(checked: .prePrepare(PrePrepare(
                    view: View(0), sequence: SequenceNumber(UInt64(index) + 1_000_000),
                    requests: [Request(client: ClientID(0), timestamp: Timestamp(1), operation: operation)], sender: ReplicaID(0)))))
            }
            : (0..<1024).map { index in
                DriverInput<PBFTMessage>.message(Verified(checked: .prepare(Prepare(view: View(0), sequence: SequenceNumber(UInt64(index) + 1_000_000),
                                                                       digest: .zero, sender: ReplicaID(2)))))
            }
        var behind = false
        var bursts = 0
        while !behind && bursts < 100 {
            behind = driver.deliver(burst)
            bursts += 1
        }
        if large {
            #expect(behind && bursts * burst.count < ProtocolDriverLimits.inputsQueuedHigh && bursts * (8 << 20) >= ProtocolDriverLimits.inputBytesQueuedHigh,
                    "\(bursts) bursts")
        } else {
            #expect(behind && bursts * burst.count > ProtocolDriverLimits.inputsQueuedHigh, "\(bursts) bursts")
        }
        driver.pause(connection)
        #expect(try await connection.getOption(.autoRead).get() == false)
        // Let the loop work the queue off: the connection reads again.
        release.withLockedValue { $0 = true }
        var resumed = false
        for _ in 0..<200 where !resumed {
            try await Task.sleep(for: .milliseconds(20))
            resumed = try await connection.getOption(.autoRead).get()
        }
        #expect(resumed)
        let pauses = driver.metrics.readPauses.value
        #expect(pauses == 1)
        try await client.close()
        try await server.close()
        executor.finish()
        try await group.shutdownGracefully()
    }
}
}
