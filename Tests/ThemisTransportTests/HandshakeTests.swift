// Proves the connection front (frame decoder + identity handshake) on EmbeddedChannels, without sockets:
// two sides with the right keys complete the handshake and exchange messages; a side that claims an id it
// cannot prove, a peer the other side does not admit, a peer from another cluster, an oversize frame and
// a message before the handshake each end with a goodbye that names the reason and a closed connection.
import NIOCore
import NIOEmbedded
import Testing
import ThemisCore
import ThemisCrypto
import ThemisTransport
import ThemisWire

/// Records what reaches the end of the pipeline.
final class Sink: ChannelInboundHandler {
    typealias InboundIn = PeerMessage
    var completed: [Principal] = []
    var handshakes: [HandshakeCompleted] = []
    var attached: [ClientID] = []
    var rejections: [ConnectionRejected] = []
    var messages: [PeerMessage] = []

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let done = event as? HandshakeCompleted {
            completed.append(done.peer)
            handshakes.append(done)
        }
        if let attach = event as? ClientAttached { attached.append(attach.client) }
        if let rejected = event as? ConnectionRejected { rejections.append(rejected) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        messages.append(unwrapInboundIn(data))
    }
}

struct Side {
    let channel: EmbeddedChannel
    let sink: Sink
}

func makeCluster() throws -> (ClusterFile, [Principal: PrivateKeys]) {
    var keys: [Principal: PrivateKeys] = [:]
    var replicas: [ClusterFile.Replica] = []
    for index in 0..<4 {
        let mine = try PrivateKeys.derive(scheme: .ed25519, seed: [UInt8](repeating: UInt8(index + 1), count: 32))
        keys[.replica(ReplicaID(UInt32(index)))] = mine
        replicas.append(.init(id: UInt32(index), host: "127.0.0.1", port: 7000 + index,
                              signingKey: mine.publicSigningKey, agreementKey: mine.publicAgreementKey))
    }
    var clients: [ClusterFile.Client] = []
    for index in 0..<2 {
        let mine = try PrivateKeys.derive(scheme: .ed25519, seed: [UInt8](repeating: UInt8(100 + index), count: 32))
        keys[.client(ClientID(UInt32(index)))] = mine
        clients.append(.init(id: UInt32(index), signingKey: mine.publicSigningKey, agreementKey: mine.publicAgreementKey))
    }
    return (ClusterFile(authentication: .ed25519, replicas: replicas, clients: clients), keys)
}

func makeSide(_ keyring: Keyring, clusterTag: UInt64? = nil, admit: @escaping @Sendable (Principal) -> Bool) throws -> Side {
    let channel = EmbeddedChannel()
    let sink = Sink()
    try channel.pipeline.syncOperations.addThemisFront(
        keyring: keyring, clusterTag: clusterTag ?? keyring.clusterTag, limits: Limits(), admit: admit, onRejection: { _ in })
    try channel.pipeline.syncOperations.addHandler(sink)
    return Side(channel: channel, sink: sink)
}

/// Moves bytes between the two sides until neither has anything left to send.
func shuttle(_ a: Side, _ b: Side) throws {
    var moved = true
    while moved {
        moved = false
        for (from, to) in [(a, b), (b, a)] {
            while let bytes = try from.channel.readOutbound(as: ByteBuffer.self) {
                moved = true
                if to.channel.isActive { _ = try? to.channel.writeInbound(bytes) }
            }
        }
    }
}

/// The goodbye reason a side sent, if any.
func goodbyes(in bytes: [ByteBuffer]) -> [String] {
    bytes.compactMap { buffer in
        var frame = buffer
        guard let length = frame.readInteger(as: UInt32.self), var payload = frame.readSlice(length: Int(length)),
            case .goodbye(let reason)? = try? WireCodec.decode(&payload, limits: Limits())
        else { return nil }
        return reason
    }
}

@Suite("Connection handshake")
struct HandshakeTests {
    @Test("A client and a replica with the right keys prove their ids and then exchange messages")
    func handshakeSucceeds() throws {
        let (cluster, keys) = try makeCluster()
        let client = try makeSide(try Keyring(cluster: cluster, me: .client(ClientID(0)), keys: keys[.client(ClientID(0))]!)) { $0 == .replica(ReplicaID(0)) }
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { _ in true }
        try client.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try shuttle(client, replica)
        #expect(client.sink.completed == [.replica(ReplicaID(0))])
        #expect(replica.sink.completed == [.client(ClientID(0))])
        try client.channel.writeOutbound(ByteBufferAllocator().frame(.statusQuery(StatusQuery(nonce: 5))))
        try shuttle(client, replica)
        #expect(replica.sink.messages.map(\.message) == [.statusQuery(StatusQuery(nonce: 5))])
        #expect(replica.sink.messages.map(\.peer) == [.client(ClientID(0))])
    }

    @Test("A peer claiming an id whose keys it does not hold is disconnected with a reason")
    func impostorRejected() throws {
        let (cluster, keys) = try makeCluster()
        // Client 1's keys, but the cluster file says these are client 0's: build the impostor's keyring from
        // a cluster file whose entry for client 0 carries client 1's public keys.
        var forged = cluster
        forged.clients[0] = .init(id: 0, signingKey: cluster.clients[1].signingKey, agreementKey: cluster.clients[1].agreementKey)
        let impostorKeyring = try Keyring(cluster: forged, me: .client(ClientID(0)), keys: keys[.client(ClientID(1))]!)
        let impostor = try makeSide(impostorKeyring, clusterTag: try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!).clusterTag) { _ in true }
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { _ in true }
        try impostor.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        var replicaSent: [ByteBuffer] = []
        var moved = true
        while moved {
            moved = false
            while let bytes = try impostor.channel.readOutbound(as: ByteBuffer.self) {
                moved = true
                if replica.channel.isActive { _ = try? replica.channel.writeInbound(bytes) }
            }
            while let bytes = try replica.channel.readOutbound(as: ByteBuffer.self) {
                moved = true
                replicaSent.append(bytes)
                if impostor.channel.isActive { _ = try? impostor.channel.writeInbound(bytes) }
            }
        }
        #expect(replica.sink.completed.isEmpty)
        #expect(!replica.channel.isActive)
        #expect(goodbyes(in: replicaSent).contains { $0.contains("could not prove its identity") })
    }

    @Test("A peer that is not admitted on this connection is disconnected")
    func notAdmitted() throws {
        let (cluster, keys) = try makeCluster()
        let client = try makeSide(try Keyring(cluster: cluster, me: .client(ClientID(0)), keys: keys[.client(ClientID(0))]!)) { _ in true }
        // This side expects replica 1 only.
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { $0 == .replica(ReplicaID(1)) }
        try client.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try shuttle(client, replica)
        #expect(replica.sink.completed.isEmpty)
        #expect(!replica.channel.isActive)
        #expect(client.sink.rejections.contains { $0.byPeer && $0.reason.contains("not accepted") })
    }

    @Test("A peer with another cluster tag is disconnected")
    func otherCluster() throws {
        let (cluster, keys) = try makeCluster()
        let client = try makeSide(try Keyring(cluster: cluster, me: .client(ClientID(0)), keys: keys[.client(ClientID(0))]!), clusterTag: 12345) { _ in true }
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { _ in true }
        try client.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try shuttle(client, replica)
        #expect(!replica.channel.isActive)
        #expect(client.sink.rejections.contains { $0.reason.contains("another cluster") })
    }

    @Test("An oversize length prefix closes the connection before the frame is buffered")
    func oversizeFrame() throws {
        let (cluster, keys) = try makeCluster()
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { _ in true }
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        var bytes = ByteBufferAllocator().buffer(capacity: 8)
        bytes.writeInteger(UInt32.max)
        _ = try? replica.channel.writeInbound(bytes)
        #expect(!replica.channel.isActive)
        #expect(replica.sink.rejections.contains { !$0.byPeer })
    }

    @Test("Before the handshake a frame may hold at most 4 KiB: a stranger cannot make a replica buffer a whole frame (issue 9, finding 4)")
    func handshakeFramesAreSmall() throws {
        let (cluster, keys) = try makeCluster()
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { _ in true }
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        var bytes = ByteBufferAllocator().buffer(capacity: 8)
        bytes.writeInteger(UInt32(WireCodec.handshakeFrameBytesMax + 1))
        _ = try? replica.channel.writeInbound(bytes)
        #expect(!replica.channel.isActive)
        #expect(replica.sink.rejections.contains {
            !$0.byPeer && $0.reason.contains("\(WireCodec.handshakeFrameBytesMax + 1)") && $0.reason.contains("\(WireCodec.handshakeFrameBytesMax)")
        })
        // After the two handshake frames, the configured limit applies.
        let frames = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20)))
        var input = ByteBufferAllocator().buffer(capacity: 16_000)
        for length in [10, 20, 10_000] {
            input.writeInteger(UInt32(length))
            input.writeRepeatingByte(7, count: length)
        }
        try frames.writeInbound(input)
        #expect(try frames.readInbound(as: ByteBuffer.self)?.readableBytes == 10)
        #expect(try frames.readInbound(as: ByteBuffer.self)?.readableBytes == 20)
        #expect(try frames.readInbound(as: ByteBuffer.self)?.readableBytes == 10_000)
        #expect(FrameDecoder(maxFrameBytes: 100).handshakeFrameBytesMax == 100)
    }

    @Test("After a client's handshake, its frames are cut at the largest client message; a replica's are not (issue 9)",
          arguments: [UInt8(1), 0])
    func clientFramesAreSmall(principalKind: UInt8) throws {
        let frames = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(maxFrameBytes: 1 << 20, clientFrameBytesMax: 5_000)))
        var input = ByteBufferAllocator().buffer(capacity: 16_000)
        // A Hello (version, kind 0x01, principal kind, ...), a HelloProof, then a 10,000-byte frame.
        input.writeInteger(UInt32(10))
        input.writeBytes([WireCodec.version, 0x01, principalKind, 0, 0, 0, 0, 0, 0, 0])
        input.writeInteger(UInt32(20))
        input.writeRepeatingByte(7, count: 20)
        input.writeInteger(UInt32(10_000))
        input.writeRepeatingByte(7, count: 10_000)
        if principalKind == 1 {
            #expect(throws: WireError.frameTooLarge(length: 10_000, max: 5_000)) { try frames.writeInbound(input) }
        } else {
            try frames.writeInbound(input)
            _ = try frames.readInbound(as: ByteBuffer.self)
            _ = try frames.readInbound(as: ByteBuffer.self)
            #expect(try frames.readInbound(as: ByteBuffer.self)?.readableBytes == 10_000)
        }
        _ = try? frames.finish()
    }

    @Test("A peer that does not complete the handshake within the timeout is disconnected (issue 9, finding 4)")
    func handshakeTimesOut() throws {
        let (cluster, keys) = try makeCluster()
        let keyring = try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)
        let channel = EmbeddedChannel()
        let sink = Sink()
        try channel.pipeline.syncOperations.addHandler(HandshakeHandler(
            keyring: keyring, clusterTag: keyring.clusterTag, limits: Limits(), admit: { _ in true }, handshakeTimeout: .seconds(10)))
        try channel.pipeline.syncOperations.addHandler(sink)
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
        #expect(sink.rejections.contains { $0.reason == "no handshake within 10000 ms" })
    }

    @Test("A protocol message before the handshake closes the connection")
    func messageBeforeHandshake() throws {
        let (cluster, keys) = try makeCluster()
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { _ in true }
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        _ = try? replica.channel.writeInbound(ByteBufferAllocator().frame(.statusQuery(StatusQuery(nonce: 1))))
        #expect(!replica.channel.isActive)
        #expect(replica.sink.messages.isEmpty)
    }
}
