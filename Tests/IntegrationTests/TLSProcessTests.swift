// TLS with real processes: a cluster from `themis keygen --tls` serves clients over TLS (and its replicas
// link over TLS: nothing would be ordered otherwise); a plaintext connection gets nowhere and leaves the
// replica serving; a client that trusts another authority cannot talk to the cluster; a replica without its
// certificate, or with a key that is not its certificate's, refuses to start with a message naming the file.
import Foundation
import NIOCore
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisCrypto
import ThemisTLS

extension IntegrationSuite {
@Suite("TLS with real processes")
struct TLSProcessTests {
    @Test("keygen --tls: writes and reads over TLS, the primary killed midway; plaintext and a foreign authority get nowhere")
    func clusterOverTLS() async throws {
        let processes = try ReplicaProcesses(clients: 6, auth: "hmac", http: true, keygenArguments: ["--tls"])
        defer { processes.stopAll() }
        let cluster = processes.cluster
        let authority = try #require(cluster.tls?.certificateAuthority)
        #expect(authority.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(FileManager.default.fileExists(atPath: processes.directory + "/tls-ca.key"))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<3).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        let writes = try await writeWhile(clients, count: 60) {
            try await Task.sleep(for: .milliseconds(500))
            processes.kill(0)
        }
        #expect(writes.count == 180)
        #expect(try await readBackAll(writes, via: clients[1]) == 0)
        #expect(try await clients[1].status(of: ReplicaID(1)).view.rawValue >= 1)

        // Plaintext: a Themis-looking frame without TLS. The replica closes the connection and serves on.
        let plaintext = try await ClientBootstrap(group: group).connect(host: cluster.replicas[1].host, port: cluster.replicas[1].port).get()
        var frame = ByteBuffer()
        frame.writeInteger(UInt32(8))
        frame.writeBytes([UInt8](repeating: 0x41, count: 8))
        try await plaintext.writeAndFlush(frame).get()
        try await withTimeout(seconds: 10) { try await plaintext.closeFuture.get() }
        let metrics = try await httpGet(port: try #require(processes.httpBasePort) + 1, "/metrics").body
        #expect(sample(metrics, "themis_handshake_failures_total{reason=\"tls\"}") ?? 0 >= 1, "\(metrics.split(separator: "\n").filter { $0.contains("handshake") })")

        // A client that trusts another authority (another keygen --tls) fails TLS verification with every replica.
        let other = NSTemporaryDirectory() + "themis-other-ca-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: other) }
        try ReplicaProcesses.runToCompletion(processes.binary, ["keygen", "--replicas", "4", "--clients", "1", "--out", other, "--tls", "--auth", "hmac"])
        var foreign = cluster
        foreign.tls = try ClusterFile.load(path: other + "/cluster.json").tls
        var options = ThemisClient.Options()
        options.deadlineMilliseconds = 3_000
        let stranger = try ThemisClient(cluster: foreign, id: ClientID(5), keys: processes.keys(client: 5), options: options, eventLoopGroup: group)
        await #expect(throws: (any Error).self) {
            _ = try await stranger.invoke(KeyValueOperation.get(key: "w0-0").encoded())
        }
        await stranger.close()

        // The cluster still serves after both.
        #expect(try await readBackAll(Array(writes.prefix(10)), via: clients[2]) == 0)
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }

    @Test("a replica without its certificate, or with another replica's key, refuses to start and names the file")
    func identityErrors() throws {
        let processes = try ReplicaProcesses(replicas: 4, clients: 1, auth: "hmac", keygenArguments: ["--tls"])
        defer { processes.stopAll() }
        let config = processes.directory + "/cluster.json"
        let missing = try runCapturing(processes.binary, ["replica", "--config", config, "--id", "3", "--first-start",
                                                          "--tls-identity", processes.directory + "/nowhere.pem"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("nowhere.pem"), "\(missing.output)")

        // replica-0's certificate with replica-1's key.
        let zero = try String(contentsOfFile: processes.directory + "/replica-0.tls.pem", encoding: .utf8)
        let one = try String(contentsOfFile: processes.directory + "/replica-1.tls.pem", encoding: .utf8)
        let certificate = try #require(zero.components(separatedBy: "-----BEGIN PRIVATE KEY-----").first)
        let key = try #require(one.components(separatedBy: "-----BEGIN PRIVATE KEY-----").last)
        let mixed = processes.directory + "/mixed.tls.pem"
        try (certificate + "-----BEGIN PRIVATE KEY-----" + key).write(toFile: mixed, atomically: true, encoding: .utf8)
        #expect(throws: TLSSetupError.self) {
            _ = try TLSContexts.make(cluster: processes.cluster, identityPEM: Array(try Data(contentsOf: URL(fileURLWithPath: mixed))),
                                     identitySource: mixed)
        }
        let refused = try runCapturing(processes.binary, ["replica", "--config", config, "--id", "3", "--first-start", "--tls-identity", mixed])
        #expect(refused.status != 0)
        #expect(refused.output.contains("mixed.tls.pem"), "\(refused.output)")
        // Only a certificate: no key.
        let keyless = processes.directory + "/keyless.tls.pem"
        try certificate.write(toFile: keyless, atomically: true, encoding: .utf8)
        let noKey = try runCapturing(processes.binary, ["replica", "--config", config, "--id", "3", "--first-start", "--tls-identity", keyless])
        #expect(noKey.output.contains("exactly one private key"), "\(noKey.output)")
    }
}
}

/// Runs `body`, failing if it takes longer than `seconds`.
func withTimeout(seconds: Double, _ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask { try await body(); return true }
        group.addTask { try await Task.sleep(for: .seconds(seconds)); return false }
        let finished = try await group.next() ?? false
        group.cancelAll()
        if !finished { throw TestFailure(description: "did not finish within \(seconds) s") }
    }
}
