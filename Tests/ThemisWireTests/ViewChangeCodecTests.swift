// Proves that VIEW-CHANGE and NEW-VIEW survive encode then decode unchanged (empty, with a checkpoint
// proof and several certificates, with empty and non-empty nested authenticators, with a null
// pre-prepare in O, with distinct authenticators on O's entries, and with every list exactly at its
// bound), pins their layout with golden bytes, and shows that every list count and nested
// authenticator (O's included) over its bound throws `lengthTooLarge` naming the field, before
// anything is read or allocated (UInt32.max counts with nothing behind them).
import NIOCore
import Testing
import ThemisCore
import ThemisPBFT
import ThemisWire

@Suite struct ViewChangeCodecTests {
    let limits = Fixtures.limits
    let maxLength: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
    let zero: [UInt8] = [0, 0, 0, 0]
    let one: [UInt8] = [0, 0, 0, 1]
    let tooLong = Int(UInt32.max)

    func roundTrip(_ message: WireMessage) throws -> WireMessage {
        var payload = Fixtures.payload(message)
        let decoded = try WireCodec.decode(&payload, limits: limits)
        #expect(payload.readableBytes == 0)
        return decoded
    }

    @Test func viewChangesRoundTrip() throws {
        let messages: [WireMessage] = [
            .pbft(.viewChange(Fixtures.emptyViewChange), authenticator: []),
            .pbft(.viewChange(Fixtures.viewChange), authenticator: []),
            .pbft(.viewChange(Fixtures.viewChange), authenticator: [1, 2, 3]),
            .pbft(.viewChange(Fixtures.otherViewChange), authenticator: [UInt8](repeating: 0xAB, count: limits.authenticatorBytesMax)),
        ]
        for message in messages {
            #expect(try roundTrip(message) == message)
        }
    }

    @Test func newViewWithThreeViewChangesAndANullPrePrepareRoundTrips() throws {
        let message = WireMessage.pbft(.newView(Fixtures.newView), authenticator: [6])
        let decoded = try roundTrip(message)
        #expect(decoded == message)
        guard let (inner, authenticator) = decoded.pbft, case .newView(let newView) = inner else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(authenticator == [6])
        #expect(newView.viewChanges.count == 3)
        #expect(newView.viewChanges.map(\.authenticator) == [[0xD1, 0xD1], [], [0xD3]])
        #expect(newView.viewChanges[0].message.prepared.map(\.prepares.count) == [2, 2, 3])
        #expect(newView.prePrepares.map(\.message.requestCount) == [1, 0, 0, 1])
        #expect(newView.prePrepares.map(\.authenticator) == [[0xE1], [0xE2, 0xE2], [], [0xE4, 0x00, 0xE4]])
        // The null pre-prepare keeps the digest of the empty batch it carried.
        #expect(newView.prePrepares[1].message.digest == Request.batchDigest([]))
        #expect(newView.prePrepares[0].message.digest == Request.batchDigest([Fixtures.request(1)]))
    }

    @Test func newViewReProposalsWithDistinctAuthenticatorsRoundTrip() throws {
        // Same pre-prepare fields where possible, so only the authenticator tells entries apart;
        // lengths from empty to the limit, and one that a 1-byte shift would confuse with its neighbour.
        let authenticators: [[UInt8]] = [
            [], [0x01], [0x01, 0x00], [0x00, 0x01], [UInt8](repeating: 0x5A, count: 64),
            [UInt8](repeating: 0xA5, count: limits.authenticatorBytesMax), [0xFF, 0xFF, 0xFF, 0xFF],
        ]
        let prePrepares = authenticators.enumerated().map { index, authenticator in
            Fixtures.reProposal(1000 + UInt64(index), requests: index % 2 == 0 ? [] : [Fixtures.request(UInt32(index))], authenticator: authenticator)
        }
        let sent = NewView(view: View(4), viewChanges: Fixtures.newView.viewChanges, prePrepares: prePrepares, sender: ReplicaID(0))
        let message = WireMessage.pbft(.newView(sent), authenticator: [0x0F])
        let decoded = try roundTrip(message)
        #expect(decoded == message)
        guard let (inner, authenticator) = decoded.pbft, case .newView(let received) = inner else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(authenticator == [0x0F])
        #expect(received.prePrepares.map(\.authenticator) == authenticators)
        #expect(received.prePrepares.map(\.message) == prePrepares.map(\.message))
        #expect(Set(received.prePrepares.map(\.authenticator)).count == authenticators.count)
    }

    @Test func listsExactlyAtTheirBoundsRoundTrip() throws {
        let certificateMax = WireCodec.certificateEntriesMax
        let preparedMax = WireCodec.preparedCertificatesMax
        let viewChange = Fixtures.viewChange(proof: certificateMax, certificates: preparedMax, prepares: certificateMax)
        let newView = Fixtures.newView(viewChanges: certificateMax, prePrepares: preparedMax)
        let batch = (0..<UInt32(limits.batchRequestsMax)).map { Fixtures.request($0) }
        let fullBatch = NewView(
            view: View(1), viewChanges: [],
            prePrepares: [Authenticated(PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: batch, sender: ReplicaID(1)).header, authenticator: [3])],
            sender: ReplicaID(1)
        )
        let authenticatedO = Fixtures.newView(viewChanges: 1, prePrepares: preparedMax, prePrepareAuthenticator: [0xE0, 0xE1])
        let messages: [WireMessage] = [
            .pbft(.viewChange(viewChange), authenticator: [1]), .pbft(.newView(newView), authenticator: [2]), .pbft(.newView(fullBatch), authenticator: []),
            .pbft(.newView(authenticatedO), authenticator: [4]),
        ]
        for message in messages {
            #expect(try roundTrip(message) == message)
        }
    }

    @Test func constantsAreDocumentedValues() {
        #expect(WireCodec.certificateEntriesMax == 1024)
        #expect(WireCodec.preparedCertificatesMax == 4096)
    }

    @Test func goldenEmptyViewChangeEncoding() {
        let expected: [UInt8] = [2, 0x40, 1, 0x15] + Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt64(0)) + Digest.zero.bytes
            + Fixtures.bigEndian(UInt32(2)) + zero + zero + [0, 0, 0, 1, 0xEE]
        #expect(Fixtures.bytes(.pbft(.viewChange(Fixtures.emptyViewChange), authenticator: [0xEE])) == expected)
    }

    @Test func goldenNewViewEncoding() {
        let nullPrePrepare = PrePrepare(view: View(4), sequence: SequenceNumber(7), requests: [], sender: ReplicaID(0))
        let viewChange = Authenticated(Fixtures.emptyViewChange, authenticator: [0xAA])
        let prePrepares = [Authenticated(nullPrePrepare.header, authenticator: [0xCC, 0xCD]), Authenticated(nullPrePrepare.header, authenticator: [])]
        let newView = NewView(view: View(4), viewChanges: [viewChange], prePrepares: prePrepares, sender: ReplicaID(0))
        let nullPrePrepareFields = Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt64(7)) + Request.batchDigest([]).bytes + Fixtures.bigEndian(UInt32(0)) + zero
        let viewChangeBody = Array(Fixtures.bytes(.pbft(.viewChange(Fixtures.emptyViewChange), authenticator: [])).dropFirst(4).dropLast(4))
        let expected: [UInt8] = [2, 0x40, 1, 0x16] + Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt32(0))
            + one + viewChangeBody + [0, 0, 0, 1, 0xAA]
            + Fixtures.bigEndian(UInt32(2)) + nullPrePrepareFields + [0, 0, 0, 2, 0xCC, 0xCD] + nullPrePrepareFields + zero
            + [0, 0, 0, 2, 0xBB, 0xBB]
        #expect(Fixtures.bytes(.pbft(.newView(newView), authenticator: [0xBB, 0xBB])) == expected)
    }

    @Test func goldenCertificateEncoding() {
        let certificate = Fixtures.certificate(9, view: 1, requests: [], prePrepareAuthenticator: [0xB0], prepareSenders: [2], prepareAuthenticator: [])
        let viewChange = ViewChange(
            newView: View(2), stableCheckpoint: SequenceNumber(0), stableDigest: .zero,
            checkpointProof: [Fixtures.checkpointEntry(3, authenticator: [0xC3])], prepared: [certificate], sender: ReplicaID(1)
        )
        let slot = Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(9)) + Request.batchDigest([]).bytes
        let expected: [UInt8] = [2, 0x40, 1, 0x15] + Fixtures.bigEndian(UInt64(2)) + Fixtures.bigEndian(UInt64(0)) + Digest.zero.bytes + Fixtures.bigEndian(UInt32(1))
            + one + Fixtures.bigEndian(UInt64(1000)) + Fixtures.digest(2).bytes + Fixtures.bigEndian(UInt32(3)) + [0, 0, 0, 1, 0xC3]
            + one + slot + Fixtures.bigEndian(UInt32(1)) + zero + [0, 0, 0, 1, 0xB0]
            + one + slot + Fixtures.bigEndian(UInt32(2)) + zero
            + zero
        #expect(Fixtures.bytes(.pbft(.viewChange(viewChange), authenticator: [])) == expected)
    }

    @Test func maximalCountsAndLengthsThrowBeforeAnythingIsRead() {
        let head = Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt64(0)) + Digest.zero.bytes + Fixtures.bigEndian(UInt32(1))
        let slot = Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(2)) + Fixtures.digest(1).bytes + one
        let checkpoint = Fixtures.bigEndian(UInt64(1000)) + Fixtures.digest(2).bytes + one
        let viewChange: [UInt8] = [2, 0x40, 1, 0x15] + head
        let newView: [UInt8] = [2, 0x40, 1, 0x16] + Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt32(0))
        let authenticatorMax = limits.authenticatorBytesMax
        let cases: [(bytes: [UInt8], field: String, max: Int)] = [
            (viewChange + maxLength, "checkpoint proof", WireCodec.certificateEntriesMax),
            (viewChange + one + checkpoint + maxLength, "checkpoint authenticator", authenticatorMax),
            (viewChange + zero + maxLength, "prepared certificates", WireCodec.preparedCertificatesMax),
            (viewChange + zero + one + slot + maxLength, "batch", limits.batchRequestsMax),
            (viewChange + zero + one + slot + zero + maxLength, "pre-prepare authenticator", authenticatorMax),
            (viewChange + zero + one + slot + zero + zero + maxLength, "prepares", WireCodec.certificateEntriesMax),
            (viewChange + zero + one + slot + zero + zero + one + slot + maxLength, "prepare authenticator", authenticatorMax),
            (viewChange + zero + zero + maxLength, "authenticator", authenticatorMax),
            (newView + maxLength, "view changes", WireCodec.certificateEntriesMax),
            (newView + one + head + zero + zero + maxLength, "view-change authenticator", authenticatorMax),
            (newView + one + head + maxLength, "checkpoint proof", WireCodec.certificateEntriesMax),
            (newView + zero + maxLength, "new-view pre-prepares", WireCodec.preparedCertificatesMax),
            (newView + zero + one + slot + maxLength, "batch", limits.batchRequestsMax),
            (newView + zero + one + slot + zero + maxLength, "new-view pre-prepare authenticator", authenticatorMax),
            (newView + zero + zero + maxLength, "authenticator", authenticatorMax),
        ]
        for (bytes, field, max) in cases {
            #expect(throws: WireError.lengthTooLarge(field: field, length: tooLong, max: max)) { try Fixtures.decode(bytes) }
        }
    }

    @Test func countsAtTheirBoundWithNothingBehindThemAreTruncated() {
        // The count passes its check, but the reservation is capped by the bytes present.
        let head = Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt64(0)) + Digest.zero.bytes + Fixtures.bigEndian(UInt32(1))
        let certificateMax = Fixtures.bigEndian(UInt32(WireCodec.certificateEntriesMax))
        let preparedMax = Fixtures.bigEndian(UInt32(WireCodec.preparedCertificatesMax))
        let newView: [UInt8] = [2, 0x40, 1, 0x16] + Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt32(0))
        for bytes in [[2, 0x40, 1, 0x15] + head + certificateMax, [2, 0x40, 1, 0x15] + head + zero + preparedMax, newView + certificateMax, newView + zero + preparedMax] {
            #expect(throws: WireError.truncated) { try Fixtures.decode(bytes) }
        }
    }

    @Test func listsOnePastTheirBoundsThrowLengthTooLarge() {
        let certificateMax = WireCodec.certificateEntriesMax
        let preparedMax = WireCodec.preparedCertificatesMax
        let batch = (0...UInt32(limits.batchRequestsMax)).map { Fixtures.request($0) }
        let bigBatch = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: batch, sender: ReplicaID(1))
        let cases: [(PBFTMessage, WireError)] = [
            (.viewChange(Fixtures.viewChange(proof: certificateMax + 1, certificates: 0, prepares: 0)),
             .lengthTooLarge(field: "checkpoint proof", length: certificateMax + 1, max: certificateMax)),
            (.viewChange(Fixtures.viewChange(proof: 0, certificates: preparedMax + 1, prepares: 0)),
             .lengthTooLarge(field: "prepared certificates", length: preparedMax + 1, max: preparedMax)),
            (.viewChange(Fixtures.viewChange(proof: 0, certificates: 1, prepares: certificateMax + 1)),
             .lengthTooLarge(field: "prepares", length: certificateMax + 1, max: certificateMax)),
            (.newView(Fixtures.newView(viewChanges: certificateMax + 1, prePrepares: 0)),
             .lengthTooLarge(field: "view changes", length: certificateMax + 1, max: certificateMax)),
            (.newView(Fixtures.newView(viewChanges: 0, prePrepares: preparedMax + 1)),
             .lengthTooLarge(field: "new-view pre-prepares", length: preparedMax + 1, max: preparedMax)),
            (.newView(NewView(view: View(1), viewChanges: [], prePrepares: [Authenticated(bigBatch.header, authenticator: [])], sender: ReplicaID(1))),
             .lengthTooLarge(field: "batch", length: batch.count, max: limits.batchRequestsMax)),
            (.viewChange(ViewChange(newView: View(2), stableCheckpoint: SequenceNumber(0), stableDigest: .zero, checkpointProof: [],
                                    prepared: [PreparedCertificate(prePrepare: Authenticated(bigBatch.header, authenticator: []), prepares: [])], sender: ReplicaID(1))),
             .lengthTooLarge(field: "batch", length: batch.count, max: limits.batchRequestsMax)),
        ]
        for (message, error) in cases {
            #expect(throws: error) { try Fixtures.decode(Fixtures.bytes(.pbft(message, authenticator: []))) }
        }
    }

    @Test func nestedAuthenticatorsAreCheckedAgainstTheConfiguredLimit() {
        let small = Limits(authenticatorBytesMax: 1)
        let long: [UInt8] = [1, 2]
        let prePrepare = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: [], sender: ReplicaID(1))
        func viewChange(proof: [Authenticated<Checkpoint>] = [], prepared: [PreparedCertificate] = []) -> ViewChange {
            ViewChange(newView: View(2), stableCheckpoint: SequenceNumber(0), stableDigest: .zero, checkpointProof: proof, prepared: prepared, sender: ReplicaID(1))
        }
        let cases: [(PBFTMessage, String)] = [
            (.viewChange(viewChange(proof: [Fixtures.checkpointEntry(1, authenticator: long)])), "checkpoint authenticator"),
            (.viewChange(viewChange(prepared: [PreparedCertificate(prePrepare: Authenticated(prePrepare.header, authenticator: long), prepares: [])])), "pre-prepare authenticator"),
            (.viewChange(viewChange(prepared: [
                PreparedCertificate(prePrepare: Authenticated(prePrepare.header, authenticator: []), prepares: [Fixtures.prepareEntry(2, of: prePrepare, authenticator: long)]),
            ])), "prepare authenticator"),
            (.newView(NewView(view: View(2), viewChanges: [Authenticated(viewChange(), authenticator: long)], prePrepares: [], sender: ReplicaID(2))),
             "view-change authenticator"),
            (.newView(NewView(view: View(2), viewChanges: [], prePrepares: [Authenticated(prePrepare.header, authenticator: long)], sender: ReplicaID(2))),
             "new-view pre-prepare authenticator"),
        ]
        for (message, field) in cases {
            let bytes = Fixtures.bytes(.pbft(message, authenticator: [9]))
            #expect(throws: WireError.lengthTooLarge(field: field, length: 2, max: 1)) { try Fixtures.decode(bytes, limits: small) }
            // At the default limit the same bytes decode.
            #expect(throws: Never.self) { try Fixtures.decode(bytes) }
        }
    }

    @Test func newViewPrePrepareAuthenticatorOverTheLimitThrowsLengthTooLarge() throws {
        let max = limits.authenticatorBytesMax
        func message(authenticatorBytes: Int) -> WireMessage {
            let prePrepares = [
                Fixtures.reProposal(1, requests: [Fixtures.request(1)], authenticator: [1]),
                Fixtures.reProposal(2, requests: [], authenticator: [UInt8](repeating: 0xAB, count: authenticatorBytes)),
            ]
            return .pbft(.newView(NewView(view: View(4), viewChanges: [], prePrepares: prePrepares, sender: ReplicaID(0))), authenticator: [9])
        }
        // At the limit the entry decodes; one byte more and the length is refused before the bytes are read.
        #expect(try roundTrip(message(authenticatorBytes: max)) == message(authenticatorBytes: max))
        #expect(throws: WireError.lengthTooLarge(field: "new-view pre-prepare authenticator", length: max + 1, max: max)) {
            try Fixtures.decode(Fixtures.bytes(message(authenticatorBytes: max + 1)))
        }
        // A lying length with nothing behind it is refused the same way (not reported as truncated).
        let newView: [UInt8] = [2, 0x40, 1, 0x16] + Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt32(0)) + zero + one
            + Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt64(1)) + Request.batchDigest([]).bytes + Fixtures.bigEndian(UInt32(0)) + zero
        #expect(throws: WireError.lengthTooLarge(field: "new-view pre-prepare authenticator", length: max + 1, max: max)) {
            try Fixtures.decode(newView + Fixtures.bigEndian(UInt32(max + 1)))
        }
    }
}
