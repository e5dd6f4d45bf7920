import NIOCore
import NIOEmbedded
import ThemisCore
import ThemisCrypto
import ThemisTransport
import ThemisWire

/// A 4-replica, 2-client HMAC cluster with deterministic keys, built once.
enum FuzzCluster {
    struct Keys: Sendable {
        let replica0: Keyring
        let client0: Keyring
    }

    static let keys: Keys = {
        do {
            var replicas: [ClusterFile.Replica] = []
            var privateKeys: [PrivateKeys] = []
            for index in 0..<4 {
                let mine = try PrivateKeys.derive(scheme: .hmac, seed: [UInt8](repeating: UInt8(index + 1), count: 32))
                privateKeys.append(mine)
                replicas.append(.init(id: UInt32(index), host: "127.0.0.1", port: 7000 + index,
                                      signingKey: mine.publicSigningKey, agreementKey: mine.publicAgreementKey))
            }
            let client = try PrivateKeys.derive(scheme: .hmac, seed: [UInt8](repeating: 100, count: 32))
            let clients = [ClusterFile.Client(id: 0, signingKey: client.publicSigningKey, agreementKey: client.publicAgreementKey)]
            let cluster = ClusterFile(authentication: .hmac, replicas: replicas, clients: clients)
            return Keys(
                replica0: try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: privateKeys[0]),
                client0: try Keyring(cluster: cluster, me: .client(ClientID(0)), keys: client))
        } catch {
            fatalError("the fuzz cluster's keys: \(error)")
        }
    }()
}

/// Counts what reaches the end of a replica's connection front.
final class FrontSink: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    var established = false
    var messages = 0

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HandshakeCompleted { established = true }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        messages += 1
    }
}

/// The connection front of replica 0 (frame decoder with the handshake-frame limit, handshake handler),
/// fed the input as bytes from a stranger (`session: false`) or from client 0 after a real handshake
/// (`session: true`). Properties: nothing traps; a stranger never completes the handshake (it cannot
/// know the link key); no message reaches the pipeline's end before the handshake completed.
enum HandshakeFuzz {
    static func run(_ input: [UInt8], session: Bool) throws(FuzzFailure) {
        guard let first = input.first else { return }
        let keys = FuzzCluster.keys
        let replica = EmbeddedChannel()
        let sink = FrontSink()
        let limits = FuzzLimits.pick(first)
        do {
            try replica.pipeline.syncOperations.addThemisFront(
                keyring: keys.replica0, clusterTag: keys.replica0.clusterTag, limits: limits, admit: { _ in true }, onRejection: { _ in })
            try replica.pipeline.syncOperations.addHandler(sink)
            try replica.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            fatalError("the fuzz pipeline: \(error)")
        }
        if session {
            let client = EmbeddedChannel()
            do {
                try client.pipeline.syncOperations.addThemisFront(
                    keyring: keys.client0, clusterTag: keys.client0.clusterTag, limits: limits,
                    admit: { $0 == .replica(ReplicaID(0)) }, onRejection: { _ in })
                try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
            } catch {
                fatalError("the fuzz client pipeline: \(error)")
            }
            shuttle(client, replica)
            guard sink.established else { throw FuzzFailure("a correct client did not complete the handshake") }
            _ = try? client.finish()
            // A channel closed inside `writeInbound` removes its handlers in a task on its loop, which an
            // EmbeddedEventLoop runs only when asked: without this every run leaks the pipeline.
            client.embeddedEventLoop.run()
        }
        // Bits 1-3 of the first byte cut the stream into pieces, so partial frames are exercised.
        let stream = Array(input.dropFirst())
        let pieceBytes = max(1, stream.count >> (Int(first >> 1) & 7))
        var start = 0
        while start < stream.count, replica.isActive {
            let end = min(stream.count, start + pieceBytes)
            _ = try? replica.writeInbound(ByteBuffer(bytes: stream[start..<end]))
            while (try? replica.readOutbound(as: ByteBuffer.self)) != nil {}
            start = end
        }
        if !session {
            guard !sink.established, sink.messages == 0 else {
                throw FuzzFailure("a stranger's bytes completed the handshake or passed a message on")
            }
        }
        _ = try? replica.finish()
        replica.embeddedEventLoop.run()
    }

    /// Moves bytes between the two channels until neither has anything to send.
    static func shuttle(_ a: EmbeddedChannel, _ b: EmbeddedChannel) {
        var moved = true
        while moved {
            moved = false
            for (from, to) in [(a, b), (b, a)] {
                while let bytes = try? from.readOutbound(as: ByteBuffer.self) {
                    moved = true
                    if to.isActive { _ = try? to.writeInbound(bytes) }
                }
            }
        }
    }
}
