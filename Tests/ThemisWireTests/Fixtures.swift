// Shared fixtures: one sample of every message kind, byte helpers, and a seeded generator.
import NIOCore
import ThemisCore
import ThemisPBFT
import ThemisWire

enum Fixtures {
    static let limits = Limits()

    static func digest(_ seed: UInt64) -> Digest {
        Digest(word0: seed, word1: seed &* 3, word2: seed &* 5, word3: seed &* 7)
    }

    static func nonce(_ seed: UInt8) -> [UInt8] {
        (0..<UInt8(Hello.nonceByteCount)).map { $0 &+ seed }
    }

    static func request(_ index: UInt32, operation: [UInt8] = [1, 2, 3], authenticator: [UInt8] = [9, 9]) -> Request {
        Request(client: ClientID(100 + index), timestamp: Timestamp(UInt64(index) + 7), operation: operation, authenticator: authenticator)
    }

    static let hello = Hello(principal: .replica(ReplicaID(2)), nonce: nonce(1), clusterTag: 0xC0FFEE)
    static let clientHello = Hello(principal: .client(ClientID(77)), nonce: nonce(2), clusterTag: 0xC0FFEE)
    static let prepare = Prepare(view: View(3), sequence: SequenceNumber(41), digest: digest(1), sender: ReplicaID(1))
    static let commit = Commit(view: View(3), sequence: SequenceNumber(41), digest: digest(1), sender: ReplicaID(1))
    static let checkpoint = Checkpoint(sequence: SequenceNumber(1000), stateDigest: digest(2), sender: ReplicaID(3))
    static let prePrepare = PrePrepare(
        view: View(3), sequence: SequenceNumber(41), requests: [request(1), request(2, operation: []), request(3, authenticator: [])],
        sender: ReplicaID(3)
    )
    static let reply = Reply(
        view: View(3), timestamp: Timestamp(8), client: ClientID(101), replica: ReplicaID(2), result: [4, 5, 6], authenticator: [7]
    )
    static let statusReport = StatusReport(
        nonce: 99, replica: ReplicaID(1), view: View(3), lastExecuted: SequenceNumber(40),
        lastStableCheckpoint: SequenceNumber(0), applicationDigest: digest(3), connectedReplicas: 3,
        batchesExecuted: 7, requestsExecuted: 70, peakResidentBytes: 12_000_000
    )

    /// Small samples of every message kind (small enough to try every prefix).
    static let samples: [WireMessage] = [
        .hello(hello),
        .hello(clientHello),
        .helloProof(HelloProof(proof: [1, 2, 3, 4])),
        .helloProof(HelloProof(proof: [])),
        .goodbye(reason: "bad proof"),
        .goodbye(reason: ""),
        .goodbye(reason: "naïve €"),
        .attachClient(AttachClient(client: ClientID(7), proof: [9, 8, 7])),
        .attachClient(AttachClient(client: ClientID(0), proof: [])),
        .pbft(.request(request(1), relayedBy: ReplicaID(2)), authenticator: [5, 5]),
        .pbft(.prePrepare(prePrepare), authenticator: [1]),
        .pbft(.prePrepare(PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [], sender: ReplicaID(0))), authenticator: []),
        .pbft(.prepare(prepare), authenticator: [2, 2, 2]),
        .pbft(.commit(commit), authenticator: []),
        .pbft(.checkpoint(checkpoint), authenticator: [3]),
        .request(request(5)),
        .request(request(6, operation: [], authenticator: [])),
        .readOnlyRequest(request(7)),
        .reply(reply),
        .reply(Reply(view: View(0), timestamp: Timestamp(0), client: ClientID(0), replica: ReplicaID(0), result: [])),
        .reply(Reply(view: View(3), timestamp: Timestamp(9), client: ClientID(2), replica: ReplicaID(1), result: [7], authenticator: [1, 2], tentative: true)),
        .statusQuery(StatusQuery(nonce: 12)),
        .statusReport(statusReport),
    ] + viewChangeSamples + stateTransferSamples

    static func payload(_ message: WireMessage) -> ByteBuffer {
        var buffer = ByteBuffer()
        WireCodec.encode(message, into: &buffer)
        return buffer
    }

    static func bytes(_ message: WireMessage) -> [UInt8] {
        Array(payload(message).readableBytesView)
    }

    /// Decodes a payload; a PBFT message is decoded by the plug-in's codec too (and rebuilt from what it
    /// decoded, so a round trip compares the re-encoding of the decoded message).
    static func decode(_ bytes: [UInt8], limits: Limits = Fixtures.limits) throws(WireError) -> WireMessage {
        var buffer = ByteBuffer(bytes: bytes)
        let message = try WireCodec.decode(&buffer, limits: limits)
        guard case .replica(let payload) = message else { return message }
        let (inner, authenticator) = try PBFTCodec.decode(payload, limits: limits)
        return PBFTCodec.wireMessage(inner, authenticator: authenticator)
    }

    /// The kind byte of authenticated bytes: the framework's (after the 8-byte domain), or for a protocol
    /// message (`replica`, 0x40) the plug-in's, after the protocol id.
    static func authenticatedKind(_ bytes: [UInt8]) -> UInt8 {
        bytes[8] == 0x40 ? bytes[10] : bytes[8]
    }

    static func bigEndian<Integer: FixedWidthInteger>(_ value: Integer) -> [UInt8] {
        stride(from: Integer.bitWidth - 8, through: 0, by: -8).map { UInt8(truncatingIfNeeded: value >> $0) }
    }
}

/// PBFT messages in `WireMessage` form, as the tests build and take them apart.
extension WireMessage {
    static func pbft(_ message: PBFTMessage, authenticator: [UInt8]) -> WireMessage {
        PBFTCodec.wireMessage(message, authenticator: authenticator)
    }

    /// The PBFT message inside (decoded without limits worth mentioning), or nil for a framework message.
    var pbft: (message: PBFTMessage, authenticator: [UInt8])? {
        guard case .replica(let payload) = self else { return nil }
        var limits = Limits()
        limits.frameBytesMax = Int(Int32.max)
        limits.batchRequestsMax = 1 << 20
        return try? PBFTCodec.decode(payload, limits: limits)
    }
}
