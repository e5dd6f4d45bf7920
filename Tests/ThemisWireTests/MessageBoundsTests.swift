// Proves that `MessageBounds` (what a cluster file is checked against) is the true maximum: for several
// configurations it builds the largest message of every kind, as correct replicas and clients make it,
// and checks that the encoding has exactly the computed size (at most, for batches, which are cut by an
// estimate); and that a VIEW-CHANGE no longer grows with batch sizes (issue 9, finding 1).
import Testing
import ThemisCore
import ThemisCrypto
import ThemisPBFT
import ThemisWire

@Suite("Message bounds: the largest message of every kind fits the computed bound")
struct MessageBoundsTests {
    struct Case: Sendable, CustomStringConvertible {
        let replicas: Int
        let sizes: MessageBounds.AuthenticatorSizes
        let window: UInt64
        var description: String { "n = \(replicas), authenticators \(sizes.broadcast)/\(sizes.request)/\(sizes.pairwise), L = \(window)" }
    }

    static let cases: [Case] = [
        Case(replicas: 4, sizes: .init(broadcast: 128, request: 128, pairwise: 32), window: 32),
        Case(replicas: 7, sizes: .init(broadcast: 64, request: 64, pairwise: 64), window: 20),
        Case(replicas: 5, sizes: .init(broadcast: 256, request: 256, pairwise: 256), window: 16),
    ]

    static func limits() -> Limits {
        var limits = Limits(frameBytesMax: 256 * 1024, operationBytesMax: 3000, resultBytesMax: 700, batchRequestsMax: 50)
        limits.stateChunkBytes = 4096
        limits.stateBytesMax = 64 * 1024
        return limits
    }

    func bounds(_ testCase: Case) throws -> PBFTMessageBounds {
        PBFTMessageBounds(configuration: try ClusterConfiguration(replicaCount: testCase.replicas),
                      settings: ProtocolSettings(checkpointInterval: testCase.window / 2, watermarkWindow: testCase.window),
                      limits: Self.limits(), authenticators: testCase.sizes)
    }

    func bound(_ kind: String, _ bounds: PBFTMessageBounds) throws -> Int {
        try #require(bounds.all.first { $0.kind == kind }).payloadBytes
    }

    func size(_ message: WireMessage) -> Int { Fixtures.bytes(message).count }

    func bytes(_ count: Int) -> [UInt8] { [UInt8](repeating: 0xAB, count: count) }

    /// The largest request: the largest operation, the request authenticator.
    func largestRequest(_ index: UInt32, _ testCase: Case) -> Request {
        Request(client: ClientID(index), timestamp: Timestamp(UInt64(index) + 1), operation: bytes(Self.limits().operationBytesMax),
                authenticator: bytes(testCase.sizes.request))
    }

    /// The largest batch `RequestQueue.popFirst` closes from largest requests (the same estimate).
    func largestBatch(_ testCase: Case) -> [Request] {
        let limits = Self.limits()
        var batch: [Request] = []
        var estimate = 0
        while batch.count < limits.batchRequestsMax {
            estimate += limits.operationBytesMax + testCase.sizes.request + 64
            if !batch.isEmpty && estimate > limits.batchBytesMax { break }
            batch.append(largestRequest(UInt32(batch.count), testCase))
        }
        return batch
    }

    func largestViewChange(_ testCase: Case, configuration: ClusterConfiguration) -> ViewChange {
        let auth = bytes(testCase.sizes.broadcast)
        let proof = (0..<testCase.replicas).map {
            Authenticated(Checkpoint(sequence: SequenceNumber(testCase.window / 2), stateDigest: Fixtures.digest(1), sender: ReplicaID(UInt32($0))),
                          authenticator: auth)
        }
        let certificates = (1...testCase.window).map { sequence in
            let header = PrePrepareHeader(view: View(0), sequence: SequenceNumber(sequence), digest: Fixtures.digest(sequence),
                                          requestCount: Self.limits().batchRequestsMax, sender: ReplicaID(0))
            let prepares = (1..<configuration.quorumSize).map {
                Authenticated(Prepare(view: View(0), sequence: SequenceNumber(sequence), digest: header.digest, sender: ReplicaID(UInt32($0))),
                              authenticator: auth)
            }
            return PreparedCertificate(prePrepare: Authenticated(header, authenticator: auth), prepares: prepares)
        }
        return ViewChange(newView: View(1), stableCheckpoint: SequenceNumber(testCase.window / 2), stableDigest: Fixtures.digest(1),
                          checkpointProof: proof, prepared: certificates, sender: ReplicaID(1))
    }

    @Test("VIEW-CHANGE and NEW-VIEW of a full window encode to exactly their bounds", arguments: cases)
    func viewChangeMessages(_ testCase: Case) throws {
        let bounds = try bounds(testCase)
        let auth = bytes(testCase.sizes.broadcast)
        let viewChange = largestViewChange(testCase, configuration: bounds.configuration)
        #expect(size(.pbft(.viewChange(viewChange), authenticator: auth)) == (try bound("viewChange", bounds)))
        let o = (1...testCase.window).map {
            Authenticated(PrePrepareHeader(view: View(1), sequence: SequenceNumber($0), digest: Fixtures.digest($0), requestCount: 1, sender: ReplicaID(1)),
                          authenticator: auth)
        }
        let newView = NewView(view: View(1), viewChanges: Array(repeating: Authenticated(viewChange, authenticator: auth), count: bounds.configuration.quorumSize),
                              prePrepares: o, sender: ReplicaID(1))
        #expect(size(.pbft(.newView(newView), authenticator: auth)) == (try bound("newView", bounds)))
        let relay = NewViewRelay(newView: Authenticated(newView, authenticator: auth), sender: ReplicaID(2))
        #expect(size(.pbft(.newViewRelay(relay), authenticator: auth)) == (try bound("newViewRelay", bounds)))
    }

    @Test("Fixed-size and single-request kinds encode to exactly their bounds", arguments: cases)
    func otherMessages(_ testCase: Case) throws {
        let bounds = try bounds(testCase)
        let limits = Self.limits()
        let auth = bytes(testCase.sizes.broadcast)
        let request = largestRequest(0, testCase)
        let slot = (View(1), SequenceNumber(2), Fixtures.digest(3), ReplicaID(1))
        let exact: [(String, WireMessage)] = [
            ("hello", .hello(Hello(principal: .client(ClientID(1)), nonce: bytes(Hello.nonceByteCount), clusterTag: 1))),
            ("helloProof", .helloProof(HelloProof(proof: bytes(testCase.sizes.pairwise)))),
            ("goodbye", .goodbye(reason: String(repeating: "x", count: WireCodec.goodbyeReasonBytesMax))),
            ("attachClient", .attachClient(AttachClient(client: ClientID(1), proof: bytes(testCase.sizes.pairwise)))),
            ("relayedRequest", .pbft(.request(request, relayedBy: ReplicaID(1)), authenticator: auth)),
            ("prepare", .pbft(.prepare(Prepare(view: slot.0, sequence: slot.1, digest: slot.2, sender: slot.3)), authenticator: auth)),
            ("commit", .pbft(.commit(Commit(view: slot.0, sequence: slot.1, digest: slot.2, sender: slot.3)), authenticator: auth)),
            ("checkpoint", .pbft(.checkpoint(Checkpoint(sequence: slot.1, stateDigest: slot.2, sender: slot.3)), authenticator: auth)),
            ("fetchState", .pbft(.fetchState(FetchState(sequence: slot.1, stateDigest: slot.2, offset: 9, sender: slot.3)), authenticator: auth)),
            ("stateChunk", .pbft(.stateChunk(StateChunk(sequence: slot.1, stateDigest: slot.2, totalBytes: 1 << 20, offset: 0,
                                                        bytes: bytes(limits.stateChunkBytes),
                                                        chunkDigests: Array(repeating: slot.2, count: limits.stateChunksMax), sender: slot.3)),
                           authenticator: auth)),
            ("fetchBatches", .pbft(.fetchBatches(FetchBatches(from: slot.1, sender: slot.3)), authenticator: auth)),
            ("recoveryQuery", .pbft(.recoveryQuery(RecoveryQuery(nonce: 1, target: slot.1, view: slot.0, sender: slot.3)), authenticator: auth)),
            ("recoveryReply", .pbft(.recoveryReply(RecoveryReply(
                nonce: 1, view: slot.0, lastExecuted: slot.1, stableCheckpoint: slot.1, stableDigest: slot.2,
                checkpointProof: Array(repeating: Authenticated(Checkpoint(sequence: slot.1, stateDigest: slot.2, sender: slot.3), authenticator: auth),
                                       count: bounds.configuration.replicaCount), sender: slot.3)), authenticator: auth)),
            ("request", .request(request)),
            ("readOnlyRequest", .readOnlyRequest(request)),
            ("reply", .reply(Reply(view: slot.0, timestamp: Timestamp(1), client: ClientID(1), replica: slot.3,
                                   result: bytes(limits.resultBytesMax), authenticator: bytes(testCase.sizes.pairwise)))),
            ("tentativeReply", .reply(Reply(view: slot.0, timestamp: Timestamp(1), client: ClientID(1), replica: slot.3,
                                            result: bytes(limits.resultBytesMax), authenticator: bytes(testCase.sizes.pairwise), tentative: true))),
            ("statusQuery", .statusQuery(StatusQuery(nonce: 1))),
            ("statusReport", .statusReport(Fixtures.statusReport)),
        ]
        for (kind, message) in exact {
            #expect(size(message) == (try bound(kind, bounds)), "\(kind)")
        }
        // Batches are cut by an estimate that overstates every request: at most the bound.
        let batch = largestBatch(testCase)
        let prePrepare = PrePrepare(view: slot.0, sequence: slot.1, requests: batch, sender: slot.3)
        #expect(size(.pbft(.prePrepare(prePrepare), authenticator: auth)) <= (try bound("prePrepare", bounds)))
        #expect(size(.pbft(.committedBatches(CommittedBatches(batches: [prePrepare], sender: slot.3)), authenticator: auth))
                <= (try bound("committedBatches", bounds)))
        #expect(bounds.all.count == 24, "every kind has a bound")
    }

    @Test("A VIEW-CHANGE does not grow with the batches it proves prepared")
    func viewChangeSizeIndependentOfBatches() throws {
        let small = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [Fixtures.request(1)], sender: ReplicaID(0))
        let large = PrePrepare(view: View(0), sequence: SequenceNumber(1),
                               requests: (0..<100).map { Fixtures.request($0, operation: bytes(4096)) }, sender: ReplicaID(0))
        func viewChange(_ prePrepare: PrePrepare) -> WireMessage {
            let certificate = PreparedCertificate(prePrepare: Authenticated(prePrepare.header, authenticator: [1]), prepares: [])
            return .pbft(.viewChange(ViewChange(newView: View(1), stableCheckpoint: .zero, stableDigest: .zero, checkpointProof: [],
                                                prepared: [certificate], sender: ReplicaID(1))), authenticator: [])
        }
        #expect(size(viewChange(small)) == size(viewChange(large)))
    }

    @Test("With the default limits, n = 4 fits 4 MiB with HMAC, Ed25519 and ECDSA at L = 2000; RSA needs more")
    func defaultsAtTheReferenceConfiguration() throws {
        let configuration = try ClusterConfiguration(replicaCount: 4)
        func bounds(_ sizes: MessageBounds.AuthenticatorSizes) -> PBFTMessageBounds {
            PBFTMessageBounds(configuration: configuration, settings: ProtocolSettings(), limits: Limits(), authenticators: sizes)
        }
        #expect(bounds(.init(broadcast: 128, request: 128, pairwise: 32)).oversized.isEmpty)
        #expect(bounds(.init(broadcast: 64, request: 64, pairwise: 64)).oversized.isEmpty)
        let rsa = bounds(.init(broadcast: 256, request: 256, pairwise: 256))
        #expect(rsa.oversized.map(\.kind) == ["newViewRelay", "newView"])
        #expect(KeyGeneration.frameBytesNeeded(configuration, settings: ProtocolSettings(), limits: Limits(),
                                               authenticators: rsa.authenticators, plugin: PBFT.self) > Limits().frameBytesMax)
    }
}
