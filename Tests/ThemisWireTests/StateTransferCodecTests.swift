// Proves that FETCH-STATE, STATE-CHUNK, FETCH-BATCHES and COMMITTED-BATCHES survive encode then decode
// unchanged (an empty chunk, a chunk at the configured and the default limit, no batches, several
// batches, every list at its bound), pins their layout with golden bytes, and shows that a chunk
// length, a batch count or any nested length over its bound throws `lengthTooLarge` naming the field
// before anything is read or allocated (UInt32.max lengths with nothing behind them, even under
// limits so large that the check passes).
import NIOCore
import Testing
import ThemisCore
import ThemisPBFT
@testable import ThemisWire

@Suite struct StateTransferCodecTests {
    let limits = Fixtures.limits
    let maxLength: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
    let zero: [UInt8] = [0, 0, 0, 0]
    let one: [UInt8] = [0, 0, 0, 1]
    let tooLong = Int(UInt32.max)

    func roundTrip(_ message: WireMessage, limits: Limits = Fixtures.limits) throws -> WireMessage {
        var payload = Fixtures.payload(message)
        let decoded = try WireCodec.decode(&payload, limits: limits)
        #expect(payload.readableBytes == 0)
        return decoded
    }

    func limits(chunkBytes: Int? = nil, batchesPerMessage: Int? = nil) -> Limits {
        var limits = Limits()
        if let chunkBytes { limits.stateChunkBytes = chunkBytes }
        if let batchesPerMessage { limits.committedBatchesPerMessageMax = batchesPerMessage }
        return limits
    }

    @Test(arguments: Fixtures.stateTransferSamples)
    func samplesRoundTrip(message: WireMessage) throws {
        #expect(try roundTrip(message) == message)
    }

    @Test func emptyAndMaximumSizeChunksRoundTrip() throws {
        let authenticator = [UInt8](repeating: 0xAB, count: limits.authenticatorBytesMax)
        let full = Fixtures.stateChunk(bytes: limits.stateChunkBytes)
        let extremes = StateChunk(
            sequence: SequenceNumber(UInt64.max), stateDigest: Fixtures.digest(UInt64.max), totalBytes: UInt64.max, offset: UInt64.max,
            bytes: [0xFF], sender: ReplicaID(UInt32.max)
        )
        let messages: [WireMessage] = [
            .pbft(.stateChunk(Fixtures.emptyStateChunk), authenticator: []),
            .pbft(.stateChunk(full), authenticator: []),
            .pbft(.stateChunk(full), authenticator: authenticator),
            .pbft(.stateChunk(extremes), authenticator: [1]),
        ]
        for message in messages {
            #expect(try roundTrip(message) == message)
        }
        guard let inner = try roundTrip(messages[1]).pbft?.message, case .stateChunk(let received) = inner else {
            Issue.record("not a chunk")
            return
        }
        #expect(received.bytes.count == limits.stateChunkBytes)
        #expect(received.bytes == full.bytes)
    }

    @Test func maximumSizeChunkFitsInADefaultFrame() throws {
        // The default chunk size leaves room for the header and the largest authenticator in a frame.
        let message = WireMessage.pbft(
            .stateChunk(Fixtures.stateChunk(bytes: limits.stateChunkBytes)),
            authenticator: [UInt8](repeating: 1, count: limits.authenticatorBytesMax)
        )
        var stream = ByteBuffer()
        WireCodec.encodeFrame(message, into: &stream)
        #expect(stream.readableBytes - WireCodec.frameHeaderBytes <= limits.frameBytesMax)
        guard var frame = try FrameDecoder.nextFrame(from: &stream, maxFrameBytes: limits.frameBytesMax) else {
            Issue.record("no frame")
            return
        }
        #expect(try WireCodec.decode(&frame, limits: limits) == message)
    }

    @Test func chunkAtTheConfiguredLimitRoundTripsAndOneByteMoreThrows() throws {
        let small = limits(chunkBytes: 64)
        let atLimit = WireMessage.pbft(.stateChunk(Fixtures.stateChunk(bytes: 64)), authenticator: [2])
        #expect(try roundTrip(atLimit, limits: small) == atLimit)
        // Every strict prefix of a maximum-size chunk is truncated.
        let bytes = Fixtures.bytes(atLimit)
        for length in 0..<bytes.count {
            #expect(throws: WireError.truncated) { try Fixtures.decode(Array(bytes.prefix(length)), limits: small) }
        }
        let over = Fixtures.bytes(.pbft(.stateChunk(Fixtures.stateChunk(bytes: 65)), authenticator: [2]))
        #expect(throws: WireError.lengthTooLarge(field: "state chunk", length: 65, max: 64)) { try Fixtures.decode(over, limits: small) }
        // The check comes before the bytes: a 65-byte length with nothing behind it throws the same.
        let head: [UInt8] = Array(over.prefix(4 + 8 + 32 + 8 + 8 + 4))
        #expect(throws: WireError.lengthTooLarge(field: "state chunk", length: 65, max: 64)) { try Fixtures.decode(head, limits: small) }
        // A limit of 0 admits only empty chunks.
        let none = limits(chunkBytes: 0)
        let empty = WireMessage.pbft(.stateChunk(Fixtures.emptyStateChunk), authenticator: [])
        #expect(try roundTrip(empty, limits: none) == empty)
        #expect(throws: WireError.lengthTooLarge(field: "state chunk", length: 5, max: 0)) {
            try Fixtures.decode(Fixtures.bytes(.pbft(.stateChunk(Fixtures.stateChunk), authenticator: [])), limits: none)
        }
    }

    @Test func committedBatchesWithSeveralAndWithNoBatchesRoundTrip() throws {
        let several = WireMessage.pbft(.committedBatches(Fixtures.committedBatches), authenticator: [9, 9])
        let decoded = try roundTrip(several)
        #expect(decoded == several)
        guard let (inner, authenticator) = decoded.pbft, case .committedBatches(let received) = inner else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(authenticator == [9, 9])
        #expect(received.sender == ReplicaID(3))
        #expect(received.batches.map(\.requests.count) == [3, 0, 1, 1])
        #expect(received.batches.map(\.sequence) == (2001...2004).map(SequenceNumber.init))
        #expect(received.batches[1].digest == Request.batchDigest([]))
        #expect(received.batches[0].requests[2].digest == Fixtures.request(3, authenticator: []).digest)
        let none = WireMessage.pbft(.committedBatches(Fixtures.noCommittedBatches), authenticator: [])
        #expect(try roundTrip(none) == none)
    }

    @Test func committedBatchesKeepTheDigestTheyCarried() throws {
        // As for a PRE-PREPARE, the protocol core (not the codec) checks each batch against its digest.
        let forged = PrePrepare(view: View(1), sequence: SequenceNumber(2), digest: Fixtures.digest(9), requests: [Fixtures.request(1)], sender: ReplicaID(1))
        let message = WireMessage.pbft(.committedBatches(CommittedBatches(batches: [forged], sender: ReplicaID(2))), authenticator: [])
        guard let inner = try roundTrip(message).pbft?.message, case .committedBatches(let received) = inner else {
            Issue.record("not committed batches")
            return
        }
        #expect(received.batches[0].digest == Fixtures.digest(9))
    }

    @Test func committedBatchesAtEveryBoundRoundTrip() throws {
        let authenticator = [UInt8](repeating: 0x5A, count: limits.authenticatorBytesMax)
        let full = Fixtures.committedBatches(count: limits.committedBatchesPerMessageMax, requestsPerBatch: limits.batchRequestsMax)
        let big = Request(
            client: ClientID(UInt32.max), timestamp: Timestamp(UInt64.max),
            operation: [UInt8](repeating: 0x33, count: limits.operationBytesMax), authenticator: authenticator
        )
        let bigRequests = CommittedBatches(batches: [Fixtures.committedBatch(1, requests: [big, big])], sender: ReplicaID(0))
        let nullBatches = Fixtures.committedBatches(count: limits.committedBatchesPerMessageMax, requestsPerBatch: 0)
        let messages: [WireMessage] = [
            .pbft(.committedBatches(full), authenticator: authenticator),
            .pbft(.committedBatches(bigRequests), authenticator: []),
            .pbft(.committedBatches(nullBatches), authenticator: [1]),
        ]
        for message in messages {
            #expect(try roundTrip(message) == message)
        }
    }

    @Test func fetchMessagesRoundTripTheirExtremes() throws {
        let messages: [WireMessage] = [
            .pbft(.fetchState(FetchState(sequence: SequenceNumber(UInt64.max), stateDigest: Fixtures.digest(UInt64.max), offset: UInt64.max, sender: ReplicaID(UInt32.max))), authenticator: []),
            .pbft(.fetchBatches(FetchBatches(from: SequenceNumber(0), sender: ReplicaID(0))), authenticator: [UInt8](repeating: 7, count: limits.authenticatorBytesMax)),
        ]
        for message in messages {
            #expect(try roundTrip(message) == message)
        }
    }

    // MARK: Golden layouts

    @Test func goldenFetchStateEncoding() {
        let expected: [UInt8] = [2, 0x40, 1, 0x17] + Fixtures.bigEndian(UInt64(2000)) + Fixtures.digest(4).bytes + Fixtures.bigEndian(UInt64(65_536))
            + Fixtures.bigEndian(UInt32(2)) + [0, 0, 0, 1, 0xAA]
        #expect(Fixtures.bytes(.pbft(.fetchState(Fixtures.fetchState), authenticator: [0xAA])) == expected)
    }

    @Test func goldenStateChunkEncoding() {
        let expected: [UInt8] = [2, 0x40, 1, 0x18] + Fixtures.bigEndian(UInt64(2000)) + Fixtures.digest(4).bytes + Fixtures.bigEndian(UInt64(70_000))
            + Fixtures.bigEndian(UInt64(65_536)) + [0, 0, 0, 5, 0x10, 0x00, 0xFF, 0x7F, 0x01] + zero + Fixtures.bigEndian(UInt32(1)) + zero
        #expect(Fixtures.bytes(.pbft(.stateChunk(Fixtures.stateChunk), authenticator: [])) == expected)
    }

    @Test func goldenFetchBatchesEncoding() {
        let expected: [UInt8] = [2, 0x40, 1, 0x19] + Fixtures.bigEndian(UInt64(2001)) + Fixtures.bigEndian(UInt32(2)) + [0, 0, 0, 2, 0xBB, 0xCC]
        #expect(Fixtures.bytes(.pbft(.fetchBatches(Fixtures.fetchBatches), authenticator: [0xBB, 0xCC])) == expected)
    }

    @Test func goldenCommittedBatchesEncoding() {
        let request = Request(client: ClientID(5), timestamp: Timestamp(6), operation: [7], authenticator: [8, 9])
        let first = Fixtures.committedBatch(10, view: 1, requests: [request])
        let null = Fixtures.committedBatch(11, view: 1, requests: [])
        let message = WireMessage.pbft(.committedBatches(CommittedBatches(batches: [first, null], sender: ReplicaID(2))), authenticator: [0xDD])
        let expected: [UInt8] = [2, 0x40, 1, 0x1A] + Fixtures.bigEndian(UInt32(2)) + Fixtures.bigEndian(UInt32(2))
            + Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(10)) + Request.batchDigest([request]).bytes + Fixtures.bigEndian(UInt32(1))
            + one + Fixtures.bigEndian(UInt32(5)) + Fixtures.bigEndian(UInt64(6)) + [0, 0, 0, 1, 7] + [0, 0, 0, 2, 8, 9]
            + Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(11)) + Request.batchDigest([]).bytes + Fixtures.bigEndian(UInt32(1)) + zero
            + [0, 0, 0, 1, 0xDD]
        #expect(Fixtures.bytes(message) == expected)
        // Each batch is written exactly as a PRE-PREPARE's fields.
        let prePrepareFields = Array(Fixtures.bytes(.pbft(.prePrepare(first), authenticator: [])).dropFirst(4).dropLast(4))
        #expect(Array(expected.dropFirst(4 + 4 + 4).prefix(prePrepareFields.count)) == prePrepareFields)
    }

    // MARK: Bounds

    @Test func maximalLengthsAndCountsThrowBeforeAnythingIsRead() {
        let sequence = Fixtures.bigEndian(UInt64(2000))
        let slot = Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(2)) + Fixtures.digest(1).bytes + one
        let requestHead = Fixtures.bigEndian(UInt32(5)) + Fixtures.bigEndian(UInt64(6))
        let chunkHead: [UInt8] = [2, 0x40, 1, 0x18] + sequence + Fixtures.digest(4).bytes + Fixtures.bigEndian(UInt64(10)) + Fixtures.bigEndian(UInt64(0))
        let committed: [UInt8] = [2, 0x40, 1, 0x1A] + one
        let authenticatorMax = limits.authenticatorBytesMax
        let cases: [(bytes: [UInt8], field: String, max: Int)] = [
            (chunkHead + maxLength, "state chunk", limits.stateChunkBytes),
            (chunkHead + zero + maxLength, "chunk digests", limits.stateChunksMax),
            (chunkHead + zero + zero + one + maxLength, "authenticator", authenticatorMax),
            ([2, 0x40, 1, 0x17] + sequence + Fixtures.digest(4).bytes + Fixtures.bigEndian(UInt64(0)) + one + maxLength, "authenticator", authenticatorMax),
            ([2, 0x40, 1, 0x19] + sequence + one + maxLength, "authenticator", authenticatorMax),
            (committed + maxLength, "committed batches", limits.committedBatchesPerMessageMax),
            (committed + one + slot + maxLength, "batch", limits.batchRequestsMax),
            (committed + one + slot + one + requestHead + maxLength, "operation", limits.operationBytesMax),
            (committed + one + slot + one + requestHead + zero + maxLength, "request authenticator", authenticatorMax),
            (committed + zero + maxLength, "authenticator", authenticatorMax),
        ]
        for (bytes, field, max) in cases {
            #expect(throws: WireError.lengthTooLarge(field: field, length: tooLong, max: max)) { try Fixtures.decode(bytes) }
        }
    }

    @Test func lyingLengthsUnderHugeLimitsAllocateNothing() {
        // Limits so large that a UInt32.max length passes its check: the decoder must still reserve
        // no more than the bytes present (here none) and report the payload as truncated.
        var huge = Limits()
        huge.stateChunkBytes = Int.max
        huge.committedBatchesPerMessageMax = Int.max
        huge.batchRequestsMax = Int.max
        let slot = Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(2)) + Fixtures.digest(1).bytes + one
        let chunkHead: [UInt8] = [2, 0x40, 1, 0x18] + Fixtures.bigEndian(UInt64(1)) + Digest.zero.bytes + Fixtures.bigEndian(UInt64(0)) + Fixtures.bigEndian(UInt64(0))
        for bytes in [chunkHead + maxLength, [2, 0x40, 1, 0x1A] + one + maxLength, [2, 0x40, 1, 0x1A] + one + one + slot + maxLength] {
            #expect(throws: WireError.truncated) { try Fixtures.decode(bytes, limits: huge) }
        }
        // The same at the default bounds, with the count exactly at its bound.
        let atBound = Fixtures.bigEndian(UInt32(limits.committedBatchesPerMessageMax))
        #expect(throws: WireError.truncated) { try Fixtures.decode([2, 0x40, 1, 0x1A] + one + atBound) }
        #expect(throws: WireError.truncated) { try Fixtures.decode(chunkHead + Fixtures.bigEndian(UInt32(limits.stateChunkBytes))) }
    }

    @Test func listsOnePastTheirBoundsThrowLengthTooLarge() {
        let max = limits.committedBatchesPerMessageMax
        let fullBatch = (0...UInt32(limits.batchRequestsMax)).map { Fixtures.request($0) }
        let cases: [(PBFTMessage, WireError)] = [
            (.committedBatches(Fixtures.committedBatches(count: max + 1, requestsPerBatch: 0)),
             .lengthTooLarge(field: "committed batches", length: max + 1, max: max)),
            (.committedBatches(CommittedBatches(batches: [Fixtures.committedBatch(1, requests: []), Fixtures.committedBatch(2, requests: fullBatch)], sender: ReplicaID(1))),
             .lengthTooLarge(field: "batch", length: fullBatch.count, max: limits.batchRequestsMax)),
            (.committedBatches(CommittedBatches(batches: [Fixtures.committedBatch(1, requests: [Fixtures.request(1, operation: [UInt8](repeating: 0, count: limits.operationBytesMax + 1))])], sender: ReplicaID(1))),
             .lengthTooLarge(field: "operation", length: limits.operationBytesMax + 1, max: limits.operationBytesMax)),
            (.stateChunk(Fixtures.stateChunk(bytes: limits.stateChunkBytes + 1)),
             .lengthTooLarge(field: "state chunk", length: limits.stateChunkBytes + 1, max: limits.stateChunkBytes)),
        ]
        for (message, error) in cases {
            #expect(throws: error) { try Fixtures.decode(Fixtures.bytes(.pbft(message, authenticator: []))) }
        }
    }

    @Test func batchCountIsCheckedAgainstTheConfiguredLimit() throws {
        let three = limits(batchesPerMessage: 3)
        let atLimit = WireMessage.pbft(.committedBatches(Fixtures.committedBatches(count: 3, requestsPerBatch: 2)), authenticator: [1])
        #expect(try roundTrip(atLimit, limits: three) == atLimit)
        #expect(throws: WireError.lengthTooLarge(field: "committed batches", length: 4, max: 3)) {
            try Fixtures.decode(Fixtures.bytes(.pbft(.committedBatches(Fixtures.committedBatches), authenticator: [])), limits: three)
        }
        // Nested lengths obey their own configured limits.
        let small = Limits(authenticatorBytesMax: 1, batchRequestsMax: 2)
        #expect(throws: WireError.lengthTooLarge(field: "batch", length: 3, max: 2)) {
            try Fixtures.decode(Fixtures.bytes(.pbft(.committedBatches(Fixtures.committedBatches), authenticator: [])), limits: small)
        }
        let longRequestAuthenticator = CommittedBatches(batches: [Fixtures.committedBatch(1, requests: [Fixtures.request(1, authenticator: [1, 2])])], sender: ReplicaID(1))
        #expect(throws: WireError.lengthTooLarge(field: "request authenticator", length: 2, max: 1)) {
            try Fixtures.decode(Fixtures.bytes(.pbft(.committedBatches(longRequestAuthenticator), authenticator: [])), limits: small)
        }
        #expect(throws: WireError.lengthTooLarge(field: "authenticator", length: 2, max: 1)) {
            try Fixtures.decode(Fixtures.bytes(.pbft(.fetchBatches(Fixtures.fetchBatches), authenticator: [1, 2])), limits: small)
        }
        // A limit of 0 admits only an empty message.
        let none = limits(batchesPerMessage: 0)
        let empty = WireMessage.pbft(.committedBatches(Fixtures.noCommittedBatches), authenticator: [])
        #expect(try roundTrip(empty, limits: none) == empty)
    }

    // MARK: Kinds

    @Test func kindNumbersArePinned() {
        // A number, once used, is never reused: these lists only ever grow. (0x10-0x1A were PBFT's kinds in
        // the framework's space in wire version 1; since version 2 they are PBFT's own, inside `replica`.)
        let expected: [(MessageKind, UInt8)] = [
            (.hello, 0x01), (.helloProof, 0x02), (.goodbye, 0x03), (.attachClient, 0x04),
            (.request, 0x20), (.reply, 0x21), (.readOnlyRequest, 0x22), (.tentativeReply, 0x23), (.statusQuery, 0x30), (.statusReport, 0x31), (.replica, 0x40),
        ]
        for (kind, raw) in expected {
            #expect(kind.rawValue == raw)
        }
        #expect(MessageKind.allCases.count == expected.count)
        let pbftExpected: [(PBFTKind, UInt8)] = [
            (.relayedRequest, 0x10), (.prePrepare, 0x11), (.prepare, 0x12), (.commit, 0x13), (.checkpoint, 0x14),
            (.viewChange, 0x15), (.newView, 0x16), (.fetchState, 0x17), (.stateChunk, 0x18), (.fetchBatches, 0x19), (.committedBatches, 0x1A),
            (.recoveryQuery, 0x1B), (.recoveryReply, 0x1C), (.newViewRelay, 0x1D),
        ]
        for (kind, raw) in pbftExpected {
            #expect(kind.rawValue == raw)
        }
        #expect(PBFTKind.allCases.count == pbftExpected.count)
        #expect(PBFTCodec.protocolID == ProtocolID(1))
        // The fuzz and malformed-input tests know every kind.
        #expect(Set(FuzzTests.knownKinds) == Set(MessageKind.allCases.map(\.rawValue)))
        let fixtureKinds = Fixtures.samples.map { Fixtures.bytes($0)[1] }
        #expect(Set(fixtureKinds) == Set(MessageKind.allCases.map(\.rawValue)))
        let fixturePBFTKinds = Fixtures.samples.compactMap { $0.pbft.map { PBFTKind(of: $0.message).rawValue } }
        #expect(Set(fixturePBFTKinds) == Set(PBFTKind.allCases.map(\.rawValue)))
    }


    @Test func encodedKindBytesMatchTheMessages() {
        let kinds = Fixtures.stateTransferSamples.map { Fixtures.bytes($0)[3] }
        #expect(kinds == [0x17, 0x17, 0x18, 0x18, 0x19, 0x19, 0x1A, 0x1A, 0x1A, 0x1B, 0x1B, 0x1C, 0x1C, 0x1D])
    }
}
