// Proves Hybster's codec: every message kind survives an encode/decode round trip (certificates, chains,
// nested VIEW-CHANGEs included) and fits its computed bound; every truncation of a valid payload and a
// certificate of an unknown kind are typed errors, never a crash; a forged trusted certificate, a forged
// link authenticator or a missing trusted verifier make the verdict `forged`.
import Crypto
import NIOCore
import Testing
import ThemisCore
import ThemisCrypto
import ThemisWire
@testable import ThemisHybster

@Suite("Hybster codec and verifier")
struct HybsterCodecTests {
    let key = SymmetricKey(data: [UInt8](repeating: 5, count: 32))

    func subsystem(_ replica: UInt32, _ pillar: UInt32 = 0) throws -> SoftwareTrustedCounter {
        try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: ReplicaID(replica), pillar: pillar), key: key, store: InMemoryCounterStore())
    }

    /// One message of every kind, with genuine certificates.
    func samples() throws -> [HybsterMessage] {
        var primary = try subsystem(0)
        var backup = try subsystem(1)
        let requests = [Request(client: ClientID(1), timestamp: Timestamp(1), operation: [1, 2, 3], authenticator: [9, 9])]
        let digest = Request.batchDigest(requests)
        let header = PrepareHeader(view: View(0), order: SequenceNumber(1), digest: digest, sender: ReplicaID(0),
                                   certificate: try primary.certifyIndependent(HybsterDigests.prepare(view: View(0), order: SequenceNumber(1), digest: digest, sender: ReplicaID(0)),
                                                                               counter: 0, value: CounterValue(view: 0, order: 1)))
        let commitDigest = HybsterDigests.commit(view: View(0), order: SequenceNumber(1), digest: digest, sender: ReplicaID(1))
        let commit = HybsterCommit(view: View(0), order: SequenceNumber(1), digest: digest, sender: ReplicaID(1),
                                   certificate: try backup.certifyIndependent(commitDigest, counter: 0, value: CounterValue(view: 0, order: 1)))
        let checkpoints = try [UInt32(0), 1].map { replica -> HybsterCheckpoint in
            let certified = HybsterDigests.checkpoint(sequence: SequenceNumber(4), stateDigest: digest, sender: ReplicaID(replica))
            return HybsterCheckpoint(sequence: SequenceNumber(4), stateDigest: digest, sender: ReplicaID(replica), certificate: try subsystem(replica).trustedMAC(certified))
        }
        let content = HybsterViewChange(sender: ReplicaID(1), fromView: View(0), toView: View(1), checkpoint: SequenceNumber(0), checkpointDigest: digest,
                                        checkpointProof: [], entries: [header], chains: [[]])
        let link = try backup.certifyContinuing(content.certifiedDigest, counter: 0, value: CounterValue(view: 1, order: 0))
        let viewChange = HybsterViewChange(sender: ReplicaID(1), fromView: View(0), toView: View(1), checkpoint: SequenceNumber(0), checkpointDigest: digest,
                                           checkpointProof: [], entries: [header], chains: [[link]])
        var third = try subsystem(2)
        let ackDigest = HybsterDigests.newViewAck(view: View(1), reproposalsDigest: digest, sender: ReplicaID(2))
        let ack = HybsterNewViewAck(view: View(1), reproposalsDigest: digest, sender: ReplicaID(2),
                                    certificates: [try third.certifyIndependent(ackDigest, counter: 0, value: CounterValue(view: 1, order: 1))])
        return [
            .request(requests[0], relayedBy: ReplicaID(2)),
            .prepare(HybsterPrepare(header: header, requests: requests)),
            .commit(commit),
            .checkpoint(checkpoints[0]),
            .viewChange(viewChange),
            .newView(HybsterNewView(view: View(1), sender: ReplicaID(1), viewChanges: [viewChange], reproposals: [header])),
            .newViewAck(ack),
            .fetch(HybsterFetch(order: SequenceNumber(3), sender: ReplicaID(2))),
            .forward(HybsterForward(prepare: HybsterPrepare(header: header, requests: requests), sender: ReplicaID(2))),
            .fetchState(HybsterFetchState(sequence: SequenceNumber(4), stateDigest: digest, offset: 10, sender: ReplicaID(2))),
            .stateChunk(HybsterStateChunk(sequence: SequenceNumber(4), stateDigest: digest, totalBytes: 3, offset: 0, bytes: [1, 2, 3],
                                          chunkDigests: [digest], sender: ReplicaID(0))),
            .requestViewChange(HybsterViewChangeRequest(toView: View(2), sender: ReplicaID(1))),
            .stableCheckpoint(HybsterStableCheckpoint(sequence: SequenceNumber(4), stateDigest: digest, proof: checkpoints, sender: ReplicaID(1))),
        ]
    }

    func payload(_ message: HybsterMessage, authenticator: [UInt8] = [7, 7, 7]) -> ProtocolPayload {
        guard case .replica(let payload) = HybsterCodec.wireMessage(message, authenticator: authenticator) else { preconditionFailure() }
        return payload
    }

    @Test("Every kind round-trips, through a whole frame too, and fits its bound")
    func roundTrip() throws {
        let configuration = try ClusterConfiguration(replicaCount: 3, faultModel: .hybrid)
        let bounds = Hybster.messageBounds(configuration: configuration, settings: ProtocolSettings(), limits: Limits(),
                                           authenticators: MessageBounds.AuthenticatorSizes(broadcast: 64, request: 64, pairwise: 64))
        let samples = try samples()
        #expect(Set(samples.map { HybsterKind(of: $0) }).count == HybsterKind.allCases.count)
        for message in samples {
            let decoded = try HybsterCodec.decode(payload(message), limits: Limits())
            #expect(decoded.message == message && decoded.authenticator == [7, 7, 7])
            var frame = ByteBuffer()
            HybsterCodec.encodeFrame(message, authenticator: [1], into: &frame)
            frame.moveReaderIndex(forwardBy: WireCodec.frameHeaderBytes)
            guard case .replica(let inner) = try WireCodec.decode(&frame, limits: Limits()) else { throw WireError.unexpectedMessage }
            #expect(try HybsterCodec.decode(inner, limits: Limits()).message == message)
            let bound = try #require(bounds.first { $0.kind == "hybster.\(HybsterKind(of: message))" })
            #expect(inner.bytes.readableBytes + WireCodec.payloadHeaderBytes <= bound.payloadBytes)
        }
    }

    @Test("Every truncation of every kind is a typed error; an unknown certificate kind and another protocol's payload too")
    func malformedPayloads() throws {
        for message in try samples() {
            let bytes = payload(message).bytes
            for length in 0..<bytes.readableBytes {
                let cut = ProtocolPayload(protocolID: HybsterCodec.protocolID, bytes: bytes.getSlice(at: bytes.readerIndex, length: length) ?? ByteBuffer())
                #expect(throws: WireError.self) { try HybsterCodec.decode(cut, limits: Limits()) }
            }
        }
        // The commit's certificate kind byte: kind, view, order, digest, sender, then the certificate.
        var bytes = payload(try samples()[2]).bytes
        bytes.setInteger(UInt8(9), at: bytes.readerIndex + 1 + 8 + 8 + 32 + 4)
        #expect(throws: WireError.invalidValue(field: "certificate kind", value: 9)) {
            try HybsterCodec.decode(ProtocolPayload(protocolID: HybsterCodec.protocolID, bytes: bytes), limits: Limits())
        }
        #expect(throws: WireError.unknownProtocol(1)) {
            try HybsterCodec.decode(ProtocolPayload(protocolID: ProtocolID(1), bytes: payload(try samples()[0]).bytes), limits: Limits())
        }
    }

    @Test("Trusted certificates are checked: a certificate over other fields, or made with another key, makes the message forged")
    func forgedCertificates() throws {
        let trusted = TrustedVerifier(key: key)
        let samples = try samples()
        for message in samples {
            #expect(Hybster.certificatesVerify(message, trusted), "\(message.kindName)")
        }
        guard case .commit(let commit) = samples[2] else { return }
        let changed = HybsterCommit(view: commit.view, order: SequenceNumber(2), digest: commit.digest, sender: commit.sender, certificate: commit.certificate)
        #expect(!Hybster.certificatesVerify(.commit(changed), trusted))
        #expect(!Hybster.certificatesVerify(samples[4], TrustedVerifier(key: SymmetricKey(data: [UInt8](repeating: 6, count: 32)))))
    }

    @Test("Every write-ahead-log record round-trips; a truncated or unknown one is a typed error")
    func recordsRoundTrip() throws {
        let samples = try samples()
        guard case .prepare(let prepare) = samples[1], case .commit(let commit) = samples[2], case .viewChange(let viewChange) = samples[4],
              case .newView(let newView) = samples[5], case .newViewAck(let ack) = samples[6], case .stableCheckpoint(let stable) = samples[12]
        else { Issue.record("samples changed"); return }
        let records: [HybsterRecord] = [
            .enteredView(newView), .prepare(prepare, vouched: true), .prepare(prepare, vouched: false), .batch(SequenceNumber(3), prepare.requests),
            .batch(SequenceNumber(4), []), .commit(commit), .newViewAck(ack), .committed(SequenceNumber(9)), .viewChange(viewChange),
            .stable(stable), .counters([CounterValue(view: 2, order: 17), .zero]),
        ]
        for record in records {
            let bytes = Hybster.encodeRecord(record)
            #expect(try Hybster.decodeRecord(bytes, limits: Limits()) == record)
            #expect(throws: WireError.self) { try Hybster.decodeRecord(Array(bytes.dropLast()), limits: Limits()) }
            #expect(throws: WireError.self) { try Hybster.decodeRecord(bytes + [0], limits: Limits()) }
        }
        #expect(throws: WireError.unknownMessageKind(0x7F)) { try Hybster.decodeRecord([0x7F], limits: Limits()) }
        #expect(Hybster.isUrgent(.commit(commit)) && !Hybster.isUrgent(.committed(SequenceNumber(1))))
    }

    /// Hybster has a durable mode: keygen writes a data directory per replica into the cluster file.
    @Test func dataDirectoriesAreWritten() throws {
        let directory = "/tmp/themis-hybster-tests-\(UInt64.random(in: 0...UInt64.max))"
        let cluster = try KeyGeneration.writeCluster(directory: directory, replicas: 3, clients: 0, hosts: ["a"], basePort: 100, scheme: .hmac,
                                                     plugin: Hybster.self, dataDirectory: "d{id}")
        #expect(cluster.replicas.map(\.dataDir) == ["d0", "d1", "d2"])
    }
}
