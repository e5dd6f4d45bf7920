// Proves that the authenticated bytes of the state-transfer messages have the documented layout
// (domain, kind byte, fixed fields; a chunk's bytes and the committed batches through their SHA-256),
// change when any field changes (every chunk byte, every nested batch field and request included),
// never coincide with another kind's, and are what a verifier recomputes after decoding.
import Testing
import ThemisCore
import ThemisPBFT
import ThemisWire

@Suite struct StateTransferAuthenticatedBytesTests {
    let domain: [UInt8] = Array("THEMIS/1".utf8)

    func bytes(_ message: PBFTMessage) -> [UInt8] { WireCodec.authenticatedBytes(of: message) }

    /// The encoded body: the payload without version, `replica` kind, protocol id, PBFT kind and the (empty) outer authenticator.
    func body(_ message: PBFTMessage) -> [UInt8] {
        Array(Fixtures.bytes(.pbft(message, authenticator: [])).dropFirst(4).dropLast(4))
    }

    func replacing<Element>(_ array: [Element], at index: Int, with element: Element) -> [Element] {
        var copy = array
        copy[index] = element
        return copy
    }

    func fetchState(sequence: UInt64 = 2000, digest: Digest = Fixtures.digest(4), offset: UInt64 = 65_536, sender: UInt32 = 2) -> PBFTMessage {
        .fetchState(FetchState(sequence: SequenceNumber(sequence), stateDigest: digest, offset: offset, sender: ReplicaID(sender)))
    }

    func stateChunk(
        sequence: UInt64 = 2000, digest: Digest = Fixtures.digest(4), totalBytes: UInt64 = 70_000, offset: UInt64 = 65_536,
        bytes: [UInt8] = Fixtures.stateChunk.bytes, sender: UInt32 = 1
    ) -> PBFTMessage {
        .stateChunk(StateChunk(sequence: SequenceNumber(sequence), stateDigest: digest, totalBytes: totalBytes, offset: offset, bytes: bytes, sender: ReplicaID(sender)))
    }

    func fetchBatches(from: UInt64 = 2001, sender: UInt32 = 2) -> PBFTMessage {
        .fetchBatches(FetchBatches(from: SequenceNumber(from), sender: ReplicaID(sender)))
    }

    func committedBatches(_ batches: [PrePrepare] = Fixtures.committedBatches.batches, sender: UInt32 = 3) -> PBFTMessage {
        .committedBatches(CommittedBatches(batches: batches, sender: ReplicaID(sender)))
    }

    // MARK: Layouts

    @Test func fetchStateLayoutIsDomainKindSenderSequenceDigestOffset() {
        let expected = domain + [0x40, 1, 0x17] + Fixtures.bigEndian(UInt32(2)) + Fixtures.bigEndian(UInt64(2000)) + Fixtures.digest(4).bytes
            + Fixtures.bigEndian(UInt64(65_536))
        #expect(bytes(.fetchState(Fixtures.fetchState)) == expected)
        #expect(expected.count == 8 + 3 + 4 + 8 + 32 + 8)
    }

    @Test func stateChunkLayoutEndsWithTheDigestsOfItsBytesAndOfItsChunkList() {
        let emptyList = Digest.of(Fixtures.bigEndian(UInt32(0))).bytes
        let expected = domain + [0x40, 1, 0x18] + Fixtures.bigEndian(UInt32(1)) + Fixtures.bigEndian(UInt64(2000)) + Fixtures.digest(4).bytes
            + Fixtures.bigEndian(UInt64(70_000)) + Fixtures.bigEndian(UInt64(65_536)) + Digest.of(Fixtures.stateChunk.bytes).bytes + emptyList
        #expect(bytes(.stateChunk(Fixtures.stateChunk)) == expected)
        #expect(expected.count == 8 + 3 + 4 + 8 + 32 + 8 + 8 + 32 + 32)
        // The length is fixed whatever the chunk's size or list.
        #expect(bytes(.stateChunk(Fixtures.stateChunk(bytes: 4096))).count == expected.count)
        #expect(Array(bytes(.stateChunk(Fixtures.emptyStateChunk)).suffix(64).prefix(32)) == Digest.of([UInt8]()).bytes)
        // The list is bound: another list gives other bytes.
        let listed = StateChunk(sequence: SequenceNumber(2000), stateDigest: Fixtures.digest(4), totalBytes: 70_000, offset: 0,
                                bytes: Fixtures.stateChunk.bytes, chunkDigests: [Fixtures.digest(1), Fixtures.digest(2)], sender: ReplicaID(1))
        let list = Fixtures.bigEndian(UInt32(2)) + Fixtures.digest(1).bytes + Fixtures.digest(2).bytes
        #expect(Array(bytes(.stateChunk(listed)).suffix(32)) == Digest.of(list).bytes)
    }

    @Test func fetchBatchesLayoutIsDomainKindSenderFrom() {
        #expect(bytes(.fetchBatches(Fixtures.fetchBatches)) == domain + [0x40, 1, 0x19] + Fixtures.bigEndian(UInt32(2)) + Fixtures.bigEndian(UInt64(2001)))
    }

    @Test func committedBatchesLayoutIsDomainKindSenderBodyDigest() {
        for message in [committedBatches(), committedBatches([], sender: 0)] {
            let sender = message.sender.rawValue
            #expect(bytes(message) == domain + [0x40, 1, 0x1A] + Fixtures.bigEndian(sender) + Digest.of(body(message)).bytes)
        }
        // The body is sender, count, then the batches: the complete encoding between kind and authenticator.
        #expect(body(committedBatches([], sender: 7)) == Fixtures.bigEndian(UInt32(7)) + [0, 0, 0, 0])
    }

    // MARK: Kinds

    @Test func kindsNeverShareAuthenticatedBytes() {
        let all: [[UInt8]] = [
            bytes(.request(Fixtures.request(1), relayedBy: ReplicaID(1))),
            bytes(.prePrepare(Fixtures.prePrepare)),
            bytes(.prepare(Fixtures.prepare)),
            bytes(.commit(Fixtures.commit)),
            bytes(.checkpoint(Fixtures.checkpoint)),
            bytes(.viewChange(Fixtures.emptyViewChange)),
            bytes(.newView(Fixtures.newView)),
            bytes(.fetchState(Fixtures.fetchState)),
            bytes(.stateChunk(Fixtures.stateChunk)),
            bytes(.fetchBatches(Fixtures.fetchBatches)),
            bytes(.committedBatches(Fixtures.committedBatches)),
            WireCodec.authenticatedBytes(of: Fixtures.request(1)),
            WireCodec.authenticatedBytes(of: Fixtures.reply),
            WireCodec.handshakeTranscript(prover: Fixtures.hello, verifier: Fixtures.clientHello),
        ]
        for bytes in all {
            #expect(Array(bytes.prefix(8)) == domain)
        }
        #expect(Set(all.map(Fixtures.authenticatedKind)).count == all.count)
        #expect(all[7 ..< 11].map(Fixtures.authenticatedKind) == [0x17, 0x18, 0x19, 0x1A])
    }

    @Test func kindsWithCoincidingFieldsStillDiffer() {
        // FETCH-STATE vs STATE-CHUNK vs FETCH-BATCHES with the same sender and sequence: only the kind
        // byte keeps the shared prefix of their fields apart.
        let request = bytes(fetchState(sequence: 5, digest: .zero, offset: 0, sender: 1))
        let chunk = bytes(stateChunk(sequence: 5, digest: .zero, totalBytes: 0, offset: 0, bytes: [], sender: 1))
        let fetch = bytes(fetchBatches(from: 5, sender: 1))
        #expect(Array(request.dropFirst(11).prefix(12)) == Array(fetch.dropFirst(11)))
        #expect(Array(chunk.dropFirst(11).prefix(52)) == Array(request.dropFirst(11)))
        #expect(Set([request, chunk, fetch]).count == 3)
        // A COMMITTED-BATCHES and a VIEW-CHANGE from the same sender never coincide either.
        #expect(bytes(committedBatches([], sender: 2)) != bytes(.viewChange(Fixtures.emptyViewChange)))
    }

    // MARK: Every field is bound

    @Test func fetchStateBindsEveryField() {
        let variants = [fetchState(), fetchState(sequence: 2001), fetchState(digest: Fixtures.digest(5)), fetchState(offset: 0), fetchState(sender: 3)]
        #expect(Set(variants.map(bytes)).count == variants.count)
        #expect(bytes(fetchState()) == bytes(.fetchState(Fixtures.fetchState)))
    }

    @Test func stateChunkBindsEveryFieldAndEveryByte() {
        let base = Fixtures.stateChunk.bytes
        var variants = [
            stateChunk(), stateChunk(sequence: 2001), stateChunk(digest: Fixtures.digest(5)), stateChunk(totalBytes: 70_001),
            stateChunk(offset: 0), stateChunk(sender: 2),
            stateChunk(bytes: []), stateChunk(bytes: base + [0]), stateChunk(bytes: Array(base.dropLast())), stateChunk(bytes: base.reversed()),
        ]
        // Every single bit of every byte.
        for index in base.indices {
            for bit in 0 ..< 8 {
                variants.append(stateChunk(bytes: replacing(base, at: index, with: base[index] ^ (1 << UInt8(bit)))))
            }
        }
        #expect(Set(variants).count == variants.count)
        #expect(Set(variants.map(bytes)).count == variants.count)
        #expect(bytes(stateChunk()) == bytes(.stateChunk(Fixtures.stateChunk)))
        // An empty chunk and a chunk of one zero byte differ.
        #expect(bytes(stateChunk(bytes: [])) != bytes(stateChunk(bytes: [0])))
    }

    @Test func fetchBatchesBindsEveryField() {
        let variants = [fetchBatches(), fetchBatches(from: 2002), fetchBatches(from: 0), fetchBatches(sender: 0)]
        #expect(Set(variants.map(bytes)).count == variants.count)
    }

    @Test func committedBatchesBindEveryNestedFieldAndRequest() {
        let batches = Fixtures.committedBatches.batches
        let first = batches[0]
        func with(_ changed: PrePrepare, at index: Int = 0) -> PBFTMessage { committedBatches(replacing(batches, at: index, with: changed)) }
        func changed(view: UInt64? = nil, sequence: UInt64? = nil, digest: Digest? = nil, requests: [Request]? = nil, sender: UInt32? = nil) -> PrePrepare {
            PrePrepare(
                view: view.map(View.init) ?? first.view, sequence: sequence.map(SequenceNumber.init) ?? first.sequence,
                digest: digest ?? first.digest, requests: requests ?? first.requests, sender: sender.map(ReplicaID.init) ?? first.sender
            )
        }
        let requests = first.requests
        let variants: [PBFTMessage] = [
            committedBatches(),
            committedBatches(sender: 1),
            with(changed(view: 4)), with(changed(sequence: 1999)), with(changed(digest: Fixtures.digest(9))), with(changed(sender: 0)),
            // The batch itself under the same digest field: a nested request's operation, authenticator,
            // client, timestamp; a request dropped, added, reordered.
            with(changed(requests: replacing(requests, at: 1, with: Fixtures.request(2, operation: [0])))),
            with(changed(requests: replacing(requests, at: 0, with: Fixtures.request(1, authenticator: [9, 8])))),
            with(changed(requests: replacing(requests, at: 0, with: Request(client: ClientID(999), timestamp: requests[0].timestamp, operation: requests[0].operation, authenticator: requests[0].authenticator)))),
            with(changed(requests: replacing(requests, at: 0, with: Request(client: requests[0].client, timestamp: Timestamp(999), operation: requests[0].operation, authenticator: requests[0].authenticator)))),
            with(changed(requests: Array(requests.dropLast()))),
            with(changed(requests: requests + [Fixtures.request(9)])),
            with(changed(requests: requests.reversed())),
            with(changed(requests: [])),
            // A null batch filled in; a later batch changed.
            with(Fixtures.committedBatch(2002, requests: [Fixtures.request(7)]).withDigest(batches[1].digest), at: 1),
            with(Fixtures.committedBatch(2004, requests: [Fixtures.request(5, operation: [0xAA, 0xBC])]), at: 3),
            // Batches dropped, reordered, emptied.
            committedBatches(Array(batches.dropLast())), committedBatches(Array(batches.dropFirst())),
            committedBatches(batches.reversed()), committedBatches([]), committedBatches([], sender: 1),
            // Bytes moved across a boundary: a one-byte operation moved from one request to its neighbour.
            with(changed(requests: [Fixtures.request(1, operation: [1, 2]), Fixtures.request(2, operation: [3]), requests[2]])),
        ]
        #expect(Set(variants).count == variants.count)
        #expect(Set(variants.map(bytes)).count == variants.count)
        #expect(bytes(committedBatches()) == bytes(.committedBatches(Fixtures.committedBatches)))
    }

    @Test func decodedMessagesYieldTheSenderAuthenticatedBytes() throws {
        // What a verifier recomputes after decoding equals what the sender authenticated.
        for message in Fixtures.stateTransferSamples.compactMap({ $0.pbft?.message }) {
            let decoded = try Fixtures.decode(Fixtures.bytes(.pbft(message, authenticator: [1, 2])))
            guard let received = decoded.pbft?.message else {
                Issue.record("decoded \(decoded)")
                continue
            }
            #expect(bytes(received) == bytes(message))
        }
    }
}

extension PrePrepare {
    /// The same pre-prepare carrying another digest field (as a forger could send it).
    func withDigest(_ digest: Digest) -> PrePrepare {
        PrePrepare(view: view, sequence: sequence, digest: digest, requests: requests, sender: sender)
    }
}
