// Proves that bad input from outside is rejected without crashing any replica process: a request signed
// with the wrong key, garbage and oversize frames, a client claiming another client's id (at the handshake
// and inside a request). After each attack the cluster still serves, every replica process is alive and
// no forged operation was executed.
import Foundation
import NIOCore
import NIOPosix
import Testing
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisCrypto
import ThemisTransport
import ThemisWire

/// Collects what a raw connection receives.
final class Recorder: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    let handshake: EventLoopPromise<Principal>
    var goodbye = "(closed without a reason)"
    var handshakeDone = false

    init(handshake: EventLoopPromise<Principal>) {
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let done = event as? HandshakeCompleted {
            handshakeDone = true
            handshake.succeed(done.peer)
        }
        if let rejected = event as? ConnectionRejected { goodbye = rejected.reason }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !handshakeDone { handshake.fail(TestFailure(description: "closed: \(goodbye)")) }
    }
}

extension IntegrationSuite {
@Suite("Byzantine input against real replicas")
struct ByzantineInputTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Opens a connection to replica 0 that speaks the Themis handshake as `keyring.me`.
    func connect(_ processes: ReplicaProcesses, keyring: Keyring) async throws -> any Channel {
        let endpoint = processes.cluster.replicas[0]
        let loop = group.next()
        let handshake = loop.makePromise(of: Principal.self)
        let cluster = processes.cluster
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addThemisFront(
                        keyring: keyring, clusterTag: cluster.clusterTag, limits: cluster.limits,
                        admit: { _ in true }, onRejection: { _ in })
                    try channel.pipeline.syncOperations.addHandler(Recorder(handshake: handshake))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        _ = try await handshake.futureResult.get()
        return channel
    }

    func keyring(_ processes: ReplicaProcesses, client: Int) throws -> Keyring {
        try Keyring(cluster: processes.cluster, me: .client(ClientID(UInt32(client))), keys: processes.keys(client: client))
    }

    func get(_ key: String, via client: ThemisClient) async throws -> KeyValueResult {
        try KeyValueResult(decoding: try await client.invoke(KeyValueOperation.get(key: key).encoded()))
    }

    @Test("Forged requests, garbage frames and a false identity are rejected; no replica crashes")
    func byzantineInputsRejected() async throws {
        let processes = try ReplicaProcesses()
        defer { processes.stopAll() }
        let honest = try processes.client(0, group: group)
        try await processes.waitUntilReady(honest)
        let attacker = try keyring(processes, client: 9)
        let bystander = try keyring(processes, client: 8)

        // 1. A request of client 9 whose authenticator was made with client 8's key.
        let channel = try await connect(processes, keyring: attacker)
        let unsigned = Request(client: ClientID(9), timestamp: Timestamp(1), operation: KeyValueOperation.put(key: "forged-signature", value: [1]).encoded())
        let wrongTag = bystander.authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas)
        try await channel.writeAndFlush(channel.allocator.frame(.request(unsigned.withAuthenticator(wrongTag))))
        // 2. A request naming client 0, sent on client 9's authenticated link and signed by client 9.
        let impersonated = Request(client: ClientID(0), timestamp: Timestamp(UInt64.max / 2), operation: KeyValueOperation.put(key: "forged-client", value: [1]).encoded())
        let ownTag = attacker.authenticator(for: WireCodec.authenticatedBytes(of: impersonated), audience: .allReplicas)
        try await channel.writeAndFlush(channel.allocator.frame(.request(impersonated.withAuthenticator(ownTag))))
        // 3. Garbage after the handshake closes this connection.
        var garbage = channel.allocator.buffer(capacity: 64)
        garbage.writeInteger(UInt32(12))
        garbage.writeBytes((0..<12).map { _ in UInt8.random(in: 0...255) })
        try await channel.writeAndFlush(garbage)
        try await channel.closeFuture.get()

        // 4. An oversize length prefix on a fresh TCP connection (before any handshake).
        try await sendRaw(processes, bytes: [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
        // 5. Pure garbage.
        try await sendRaw(processes, bytes: (0..<4096).map { _ in UInt8.random(in: 0...255) })

        // 6. Claiming to be client 0 at the handshake with client 9's keys: the proof fails.
        let impostor = try await claimIdentity(processes, claimed: .client(ClientID(0)), keyring: attacker)
        #expect(impostor.contains("could not prove its identity"), "goodbye was: \(impostor)")

        // The cluster still serves, nothing forged executed, and every replica process is alive.
        #expect(try await get("forged-signature", via: honest) == .value(nil))
        #expect(try await get("forged-client", via: honest) == .value(nil))
        let put = try KeyValueResult(decoding: try await honest.invoke(KeyValueOperation.put(key: "after", value: [7]).encoded()))
        #expect(put == .ok)
        #expect(try await get("after", via: honest) == .value([7]))
        #expect((0..<4).allSatisfy { processes.isRunning($0) })
        await honest.close()
    }

    /// Writes raw bytes on a new TCP connection and waits until the replica closes it.
    func sendRaw(_ processes: ReplicaProcesses, bytes: [UInt8]) async throws {
        let endpoint = processes.cluster.replicas[0]
        let channel = try await ClientBootstrap(group: group).connect(host: endpoint.host, port: endpoint.port).get()
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await channel.writeAndFlush(buffer)
        try await channel.closeFuture.get()
    }

    /// Sends a Hello claiming `claimed`, answers the replica's Hello with a proof made with `keyring`'s
    /// keys, and returns the reason the replica gave for closing the connection.
    func claimIdentity(_ processes: ReplicaProcesses, claimed: Principal, keyring: Keyring) async throws -> String {
        let endpoint = processes.cluster.replicas[0]
        let loop = group.next()
        let reason = loop.makePromise(of: String.self)
        let ownHello = Hello(principal: claimed, nonce: (0..<32).map { _ in UInt8.random(in: 0...255) }, clusterTag: processes.cluster.clusterTag)
        let limits = processes.cluster.limits
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: limits.frameBytesMax)))
                    try channel.pipeline.syncOperations.addHandler(Impostor(ownHello: ownHello, keyring: keyring, limits: limits, reason: reason))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port).get()
        defer { channel.close(promise: nil) }
        return try await reason.futureResult.get()
    }
}
}

/// Speaks the handshake with a claimed identity and records the goodbye.
final class Impostor: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let ownHello: Hello
    let keyring: Keyring
    let limits: Limits
    let reason: EventLoopPromise<String>
    var answered = false

    init(ownHello: Hello, keyring: Keyring, limits: Limits, reason: EventLoopPromise<String>) {
        self.ownHello = ownHello
        self.keyring = keyring
        self.limits = limits
        self.reason = reason
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(NIOAny(context.channel.allocator.frame(.hello(ownHello))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        switch try? WireCodec.decode(&frame, limits: limits) {
        case .hello(let replicaHello):
            let transcript = WireCodec.handshakeTranscript(prover: ownHello, verifier: replicaHello)
            let proof = keyring.handshakeProof(transcript: transcript, peer: replicaHello.principal)
            context.writeAndFlush(NIOAny(context.channel.allocator.frame(.helloProof(HelloProof(proof: proof)))), promise: nil)
        case .goodbye(let text):
            answered = true
            reason.succeed(text)
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered { reason.succeed("(closed without a reason)") }
    }
}
