// Proves that a client connection can carry more client ids only with a proof made with each one's keys
// over this connection's nonces: a valid attach is announced, and an attach from a replica, of an id the
// replica does not admit, made for another connection, made as a handshake proof or with the wrong keys
// closes the connection with a reason.
import NIOCore
import NIOEmbedded
import Testing
import ThemisCore
import ThemisCrypto
import ThemisTransport
import ThemisWire

@Suite("Clients attached to a connection")
struct AttachClientTests {
    struct Pair {
        let client: Side
        let replica: Side
        let keys: [Principal: PrivateKeys]
        let cluster: ClusterFile
    }

    func connectedPair(replicaAdmits: @escaping @Sendable (Principal) -> Bool = { _ in true }) throws -> Pair {
        let (cluster, keys) = try makeCluster()
        let client = try makeSide(try Keyring(cluster: cluster, me: .client(ClientID(0)), keys: keys[.client(ClientID(0))]!)) { $0 == .replica(ReplicaID(0)) }
        let replica = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!), admit: replicaAdmits)
        try client.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try replica.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try shuttle(client, replica)
        #expect(replica.sink.completed == [.client(ClientID(0))])
        return Pair(client: client, replica: replica, keys: keys, cluster: cluster)
    }

    func keyring(_ pair: Pair, _ principal: Principal) throws -> Keyring {
        try Keyring(cluster: pair.cluster, me: principal, keys: pair.keys[principal]!)
    }

    /// Sends `attach` from the client side and returns the goodbye reasons the replica sent.
    func send(_ attach: AttachClient, _ pair: Pair) throws -> [String] {
        try pair.client.channel.writeOutbound(ByteBufferAllocator().frame(.attachClient(attach)))
        var replicaSent: [ByteBuffer] = []
        while let bytes = try pair.client.channel.readOutbound(as: ByteBuffer.self) {
            if pair.replica.channel.isActive { _ = try? pair.replica.channel.writeInbound(bytes) }
        }
        while let bytes = try pair.replica.channel.readOutbound(as: ByteBuffer.self) { replicaSent.append(bytes) }
        return goodbyes(in: replicaSent)
    }

    @Test("A second client attaches with its own proof; its requests then pass, announced as attached")
    func attachSucceeds() throws {
        let pair = try connectedPair()
        let handshake = try #require(pair.client.sink.handshakes.first)
        let attach = try #require(try keyring(pair, .client(ClientID(1))).attachProof(handshake))
        #expect(try send(attach, pair).isEmpty)
        #expect(pair.replica.sink.attached == [ClientID(1)])
        #expect(pair.replica.channel.isActive)
    }

    @Test("A proof made for another connection (other nonces) is rejected")
    func proofFromAnotherConnection() throws {
        let first = try connectedPair()
        let second = try connectedPair()
        let handshake = try #require(first.client.sink.handshakes.first)
        let attach = try #require(try keyring(first, .client(ClientID(1))).attachProof(handshake))
        #expect(try send(attach, second).contains { $0.contains("could not prove its identity") })
        #expect(!second.replica.channel.isActive)
        #expect(second.replica.sink.attached.isEmpty)
    }

    @Test("A proof made with another client's keys is rejected")
    func wrongKeys() throws {
        let pair = try connectedPair()
        let handshake = try #require(pair.client.sink.handshakes.first)
        // Client 0's own proof, relabelled as client 1.
        let own = try #require(try keyring(pair, .client(ClientID(0))).attachProof(handshake))
        #expect(try send(AttachClient(client: ClientID(1), proof: own.proof), pair).contains { $0.contains("could not prove its identity") })
        #expect(!pair.replica.channel.isActive)
    }

    @Test("Attaching the connection's own client or an id not admitted closes the connection; attaching an id again changes nothing")
    func refusedIds() throws {
        let pair = try connectedPair()
        let handshake = try #require(pair.client.sink.handshakes.first)
        let own = try #require(try keyring(pair, .client(ClientID(0))).attachProof(handshake))
        #expect(try send(own, pair).contains { $0.contains("not accepted") })

        let again = try connectedPair()
        let againHandshake = try #require(again.client.sink.handshakes.first)
        let attach = try #require(try keyring(again, .client(ClientID(1))).attachProof(againHandshake))
        #expect(try send(attach, again).isEmpty)
        // A client that left its session and joined again: the connection stays (the replica's handler keeps
        // the set of attached ids).
        #expect(try send(attach, again).isEmpty)
        #expect(again.replica.sink.attached == [ClientID(1), ClientID(1)])
        #expect(again.replica.channel.isActive)

        let picky = try connectedPair(replicaAdmits: { $0 == .client(ClientID(0)) })
        let pickyHandshake = try #require(picky.client.sink.handshakes.first)
        let other = try #require(try keyring(picky, .client(ClientID(1))).attachProof(pickyHandshake))
        #expect(try send(other, picky).contains { $0.contains("not accepted") })
    }

    @Test("A handshake proof cannot be replayed as an attach proof (separate transcripts)")
    func handshakeProofIsNotAnAttachProof() throws {
        let pair = try connectedPair()
        let handshake = try #require(pair.client.sink.handshakes.first)
        // What client 1 would send as its HelloProof on a connection with the same Hellos.
        let claimed = Hello(principal: .client(ClientID(1)), nonce: handshake.ownHello.nonce, clusterTag: handshake.ownHello.clusterTag)
        let proof = try keyring(pair, .client(ClientID(1))).handshakeProof(
            transcript: WireCodec.handshakeTranscript(prover: claimed, verifier: handshake.peerHello), peer: .replica(ReplicaID(0)))
        #expect(try send(AttachClient(client: ClientID(1), proof: proof), pair).contains { $0.contains("could not prove its identity") })
    }

    @Test("A replica's connection cannot attach clients")
    func replicaCannotAttach() throws {
        let (cluster, keys) = try makeCluster()
        let one = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(1)), keys: keys[.replica(ReplicaID(1))]!)) { _ in true }
        let zero = try makeSide(try Keyring(cluster: cluster, me: .replica(ReplicaID(0)), keys: keys[.replica(ReplicaID(0))]!)) { _ in true }
        try one.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try zero.channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try shuttle(one, zero)
        let handshake = try #require(one.sink.handshakes.first)
        let attach = try #require(try Keyring(cluster: cluster, me: .client(ClientID(1)), keys: keys[.client(ClientID(1))]!).attachProof(handshake))
        let pair = Pair(client: one, replica: zero, keys: keys, cluster: cluster)
        #expect(try send(attach, pair).contains { $0.contains("may not attach clients") })
        #expect(!zero.channel.isActive)
    }
}
