// The replica's operations endpoint with real processes (`--http-port`): /metrics in Prometheus text format
// counts what the replica did under load (requests, batches, frames and bytes per peer, handshake failures by
// reason, view changes), /status reports its state as JSON, /health says whether it can take part in ordering.
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
@testable import ThemisReplica

/// Collects a whole HTTP/1.1 response (the request asks the server to close the connection).
final class ResponseCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received = Mutex<[UInt8]>([])
    let done: EventLoopPromise<[UInt8]>
    init(done: EventLoopPromise<[UInt8]>) { self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.withLock { $0 += buffer.readableBytesView }
    }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(received.withLock { $0 }) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// GET `path` from 127.0.0.1:`port`: the status code and the body.
func httpGet(port: Int, _ path: String) async throws -> (status: Int, body: String) {
    let group = MultiThreadedEventLoopGroup.singleton
    let done = group.next().makePromise(of: [UInt8].self)
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ResponseCollector(done: done)) } }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.writeAndFlush(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")).get()
    let text = String(decoding: try await done.futureResult.get(), as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first, let code = Int(statusLine.split(separator: " ")[1]),
        let split = text.range(of: "\r\n\r\n")
    else { throw TestFailure(description: "not an HTTP response: \(text.prefix(200))") }
    return (code, String(text[split.upperBound...]))
}

/// The value of the sample `name` (with its labels, as written) in a Prometheus exposition.
func sample(_ exposition: String, _ name: String) -> Double? {
    for line in exposition.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.dropFirst(name.count + 1))
    }
    return nil
}

extension IntegrationSuite {
@Suite("Operations endpoint with real processes")
struct OperationsEndpointTests {
    @Test("/metrics counts requests, batches, traffic per peer and handshake failures under load; /status and /health report the state; after the primary is killed they show the view change, and /health turns 503 once too few replicas are linked")
    func metricsStatusAndHealth() async throws {
        let processes = try ReplicaProcesses(auth: "hmac", http: true)
        defer { processes.stopAll() }
        let base = try #require(processes.httpBasePort)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clients = try (0..<2).map { try processes.client($0, group: group) }
        try await processes.waitUntilReady(clients[0])
        let writes = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for (index, client) in clients.enumerated() { tasks.addTask { try await writeKeys(client, prefix: "m\(index)", count: 100).count } }
            return try await tasks.reduce(0, +)
        }
        #expect(writes == 200)
        // A stranger that sends garbage instead of a handshake.
        let stranger = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: processes.cluster.replicas[1].port).get()
        try await stranger.writeAndFlush(ByteBuffer(bytes: [0, 0, 0, 3, 0xFF, 0xFF, 0xFF])).get()
        try? await stranger.closeFuture.get()

        let metrics = try await httpGet(port: base + 1, "/metrics")
        #expect(metrics.status == 200)
        let text = metrics.body
        #expect((sample(text, "themis_requests_executed_total") ?? 0) >= 200, "\(text.prefix(3000))")
        #expect((sample(text, "themis_batches_executed_total") ?? 0) >= 1)
        #expect((sample(text, "themis_batch_size_count") ?? 0) >= 1)
        #expect((sample(text, "themis_execution_seconds_count") ?? 0) >= 1)
        #expect((sample(text, "themis_frames_received_total{peer=\"replica-0\"}") ?? 0) >= 200)
        #expect((sample(text, "themis_bytes_sent_total{peer=\"replica-2\"}") ?? 0) > 0)
        #expect((sample(text, "themis_bytes_sent_total{peer=\"clients\"}") ?? 0) > 0)
        #expect(sample(text, "themis_handshake_failures_total{reason=\"malformed\"}") == 1)
        #expect(sample(text, "themis_view") == 0)
        #expect(text.contains("# TYPE themis_requests_executed_total counter"))

        let status = try await httpGet(port: base + 1, "/status")
        #expect(status.status == 200)
        #expect(status.body.contains("\"id\":1,") && status.body.contains("\"protocol\":\"pbft\""), "\(status.body)")
        #expect(status.body.contains("\"replicasLinked\":[0,2,3]"), "\(status.body)")
        #expect(status.body.contains("\"recovering\":false"))
        let health = try await httpGet(port: base + 1, "/health")
        #expect(health.status == 200 && health.body == "ok\n")
        #expect(try await httpGet(port: base + 1, "/nothing").status == 404)

        processes.kill(0)
        _ = try await writeKeys(clients[0], prefix: "after", count: 10)
        let afterKill = try await httpGet(port: base + 1, "/metrics").body
        #expect(sample(afterKill, "themis_view_changes_total") == 1, "\(afterKill.prefix(2000))")
        #expect(sample(afterKill, "themis_view") == 1)
        let statusAfter = try await httpGet(port: base + 1, "/status").body
        #expect(statusAfter.contains("\"view\":1,") && statusAfter.contains("\"primary\":1,"), "\(statusAfter)")
        #expect(try await httpGet(port: base + 1, "/health").status == 200)
        processes.kill(2)
        var unhealthy: (status: Int, body: String)?
        for _ in 0..<50 {
            let answer = try await httpGet(port: base + 1, "/health")
            if answer.status == 503 { unhealthy = answer; break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(unhealthy?.body == "unhealthy: linked to 1 replicas, needs 2\n", "\(String(describing: unhealthy))")
        for client in clients { await client.close() }
        try await group.shutdownGracefully()
    }
}
}
