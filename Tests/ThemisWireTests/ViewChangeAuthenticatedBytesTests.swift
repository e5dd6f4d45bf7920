// Proves that the authenticated bytes of VIEW-CHANGE and NEW-VIEW have the documented layout (domain,
// kind byte, fixed fields, SHA-256 of the whole encoded body) and therefore change when any nested
// field, nested authenticator (O's included), request or re-proposed batch changes; that the outer authenticator is
// not bound; and that the two kinds never share bytes with each other or with any other kind.
import Testing
import ThemisCore
import ThemisPBFT
import ThemisWire

@Suite struct ViewChangeAuthenticatedBytesTests {
    let domain: [UInt8] = Array("THEMIS/1".utf8)

    func bytes(_ viewChange: ViewChange) -> [UInt8] { WireCodec.authenticatedBytes(of: .viewChange(viewChange)) }
    func bytes(_ newView: NewView) -> [UInt8] { WireCodec.authenticatedBytes(of: .newView(newView)) }

    /// The encoded body: the payload without version, `replica` kind, protocol id, PBFT kind and the (empty) outer authenticator.
    func body(_ message: PBFTMessage) -> [UInt8] {
        Array(Fixtures.bytes(.pbft(message, authenticator: [])).dropFirst(4).dropLast(4))
    }

    func replacing<Element>(_ array: [Element], at index: Int, with element: Element) -> [Element] {
        var copy = array
        copy[index] = element
        return copy
    }

    func viewChange(
        newView: UInt64 = 4, stableCheckpoint: UInt64 = 1000, stableDigest: Digest = Fixtures.digest(2),
        proof: [Authenticated<Checkpoint>] = Fixtures.viewChange.checkpointProof,
        prepared: [PreparedCertificate] = Fixtures.viewChange.prepared, sender: UInt32 = 1
    ) -> ViewChange {
        ViewChange(
            newView: View(newView), stableCheckpoint: SequenceNumber(stableCheckpoint), stableDigest: stableDigest,
            checkpointProof: proof, prepared: prepared, sender: ReplicaID(sender)
        )
    }

    func newView(view: UInt64 = 4, viewChanges: [Authenticated<ViewChange>] = Fixtures.newView.viewChanges,
                 prePrepares: [Authenticated<PrePrepareHeader>] = Fixtures.newView.prePrepares, sender: UInt32 = 0) -> NewView {
        NewView(view: View(view), viewChanges: viewChanges, prePrepares: prePrepares, sender: ReplicaID(sender))
    }

    @Test func viewChangeLayoutIsDomainKindFixedFieldsThenBodyDigest() {
        let message = Fixtures.viewChange
        let expected = domain + [0x40, 1, 0x15] + Fixtures.bigEndian(UInt32(1)) + Fixtures.bigEndian(UInt64(4)) + Fixtures.bigEndian(UInt64(1000))
            + Fixtures.digest(2).bytes + Digest.of(body(.viewChange(message))).bytes
        #expect(bytes(message) == expected)
        #expect(bytes(message).count == 8 + 3 + 4 + 8 + 8 + 32 + 32)
    }

    @Test func newViewLayoutIsDomainKindFixedFieldsThenBodyDigest() {
        let message = Fixtures.newView
        let expected = domain + [0x40, 1, 0x16] + Fixtures.bigEndian(UInt32(0)) + Fixtures.bigEndian(UInt64(4)) + Digest.of(body(.newView(message))).bytes
        #expect(bytes(message) == expected)
        #expect(bytes(message).count == 8 + 3 + 4 + 8 + 32)
    }

    /// Each certificate of `Fixtures.viewChange.prepared[0]` with one thing changed.
    func certificateVariants() -> [PreparedCertificate] {
        let base = Fixtures.viewChange.prepared[0]
        let prePrepare = base.prePrepare.message
        func with(_ changed: PrePrepareHeader) -> PreparedCertificate {
            PreparedCertificate(prePrepare: Authenticated(changed, authenticator: base.prePrepare.authenticator), prepares: base.prepares)
        }
        func with(prepares: [Authenticated<Prepare>]) -> PreparedCertificate {
            PreparedCertificate(prePrepare: base.prePrepare, prepares: prepares)
        }
        let firstPrepare = base.prepares[0].message
        func prepare(view: UInt64? = nil, sequence: UInt64? = nil, digest: Digest? = nil, sender: UInt32? = nil, authenticator: [UInt8] = [0xA0]) -> Authenticated<Prepare> {
            Authenticated(Prepare(
                view: view.map(View.init) ?? firstPrepare.view, sequence: sequence.map(SequenceNumber.init) ?? firstPrepare.sequence,
                digest: digest ?? firstPrepare.digest, sender: sender.map(ReplicaID.init) ?? firstPrepare.sender
            ), authenticator: authenticator)
        }
        let p = prePrepare
        return [
            with(PrePrepareHeader(view: View(5), sequence: p.sequence, digest: p.digest, requestCount: p.requestCount, sender: p.sender)),
            with(PrePrepareHeader(view: p.view, sequence: SequenceNumber(9), digest: p.digest, requestCount: p.requestCount, sender: p.sender)),
            with(PrePrepareHeader(view: p.view, sequence: p.sequence, digest: Fixtures.digest(9), requestCount: p.requestCount, sender: p.sender)),
            with(PrePrepareHeader(view: p.view, sequence: p.sequence, digest: p.digest, requestCount: p.requestCount, sender: ReplicaID(2))),
            // The request count, which the digest does not show on the wire.
            with(PrePrepareHeader(view: p.view, sequence: p.sequence, digest: p.digest, requestCount: p.requestCount + 1, sender: p.sender)),
            with(PrePrepareHeader(view: p.view, sequence: p.sequence, digest: p.digest, requestCount: 0, sender: p.sender)),
            PreparedCertificate(prePrepare: Authenticated(p, authenticator: [0xB0, 0xB2]), prepares: base.prepares),
            PreparedCertificate(prePrepare: Authenticated(p, authenticator: []), prepares: base.prepares),
            with(prepares: replacing(base.prepares, at: 0, with: prepare(view: 5))),
            with(prepares: replacing(base.prepares, at: 0, with: prepare(sequence: 9))),
            with(prepares: replacing(base.prepares, at: 0, with: prepare(digest: Fixtures.digest(9)))),
            with(prepares: replacing(base.prepares, at: 0, with: prepare(sender: 3))),
            with(prepares: replacing(base.prepares, at: 0, with: prepare(authenticator: [0xA1]))),
            with(prepares: replacing(base.prepares, at: 0, with: prepare(authenticator: []))),
            with(prepares: Array(base.prepares.dropLast())),
            with(prepares: base.prepares.reversed()),
        ]
    }

    func viewChangeVariants() -> [ViewChange] {
        let base = Fixtures.viewChange
        let proofVariants = [
            Fixtures.checkpointEntry(0, sequence: 999), Fixtures.checkpointEntry(0, digest: 9), Fixtures.checkpointEntry(2),
            Fixtures.checkpointEntry(0, authenticator: [0xC0, 0x02]), Fixtures.checkpointEntry(0, authenticator: []),
        ].map { replacing(base.checkpointProof, at: 0, with: $0) }
        return [
            viewChange(newView: 5), viewChange(stableCheckpoint: 2000), viewChange(stableDigest: Fixtures.digest(9)), viewChange(sender: 2),
            viewChange(proof: replacing(base.checkpointProof, at: 1, with: Fixtures.checkpointEntry(1, authenticator: [0]))),
            viewChange(proof: Array(base.checkpointProof.dropLast())), viewChange(proof: base.checkpointProof.reversed()), viewChange(proof: []),
            viewChange(prepared: replacing(base.prepared, at: 1, with: Fixtures.certificate(1002, requests: [Fixtures.request(2), Fixtures.request(3, authenticator: [])]))),
            viewChange(prepared: Array(base.prepared.dropLast())), viewChange(prepared: base.prepared.reversed()), viewChange(prepared: []),
        ] + proofVariants.map { viewChange(proof: $0) } + certificateVariants().map { viewChange(prepared: replacing(base.prepared, at: 0, with: $0)) }
    }

    @Test func viewChangeBytesChangeWhenAnyNestedFieldOrAuthenticatorChanges() {
        let variants = [Fixtures.viewChange] + viewChangeVariants()
        // Every variant is a different message, and every one has different authenticated bytes.
        #expect(Set(variants).count == variants.count)
        #expect(Set(variants.map(bytes)).count == variants.count)
        #expect(bytes(viewChange()) == bytes(Fixtures.viewChange))
    }

    /// An entry of O, with the digest of its batch unless `digest` is given, and the authenticator
    /// of the fixture's entry at the same position unless `authenticator` is given.
    func reProposal(
        _ sequence: UInt64, view: UInt64 = 4, digest: Digest? = nil, requests: [Request], authenticator: [UInt8]? = nil
    ) -> Authenticated<PrePrepareHeader> {
        let prePrepare = PrePrepareHeader(
            view: View(view), sequence: SequenceNumber(sequence), digest: digest ?? Request.batchDigest(requests),
            requestCount: requests.count, sender: ReplicaID(0)
        )
        let position = Fixtures.newView.prePrepares.firstIndex { $0.message.sequence == SequenceNumber(sequence) }
        return Authenticated(prePrepare, authenticator: authenticator ?? position.map { Fixtures.newView.prePrepares[$0].authenticator } ?? [])
    }

    /// `Fixtures.newView` with the authenticator of O's entry at `index` replaced.
    func newView(prePrepareAuthenticator authenticator: [UInt8], at index: Int) -> NewView {
        let base = Fixtures.newView.prePrepares
        return newView(prePrepares: replacing(base, at: index, with: Authenticated(base[index].message, authenticator: authenticator)))
    }

    @Test func changingOneReProposalAuthenticatorChangesTheNewViewBytes() {
        let base = Fixtures.newView
        // The fixture's O authenticators are [0xE1], [0xE2, 0xE2], [], [0xE4, 0x00, 0xE4].
        let variants = [
            newView(prePrepareAuthenticator: [0xE0], at: 0),
            newView(prePrepareAuthenticator: [], at: 0),
            newView(prePrepareAuthenticator: [0xE1, 0x00], at: 0),
            newView(prePrepareAuthenticator: [0xE2], at: 1),
            newView(prePrepareAuthenticator: [0x00], at: 2),
            newView(prePrepareAuthenticator: [0xE4, 0x00, 0xE5], at: 3),
            // Moving a byte from one entry's authenticator to its neighbour's keeps the total length.
            newView(prePrepares: replacing(
                replacing(base.prePrepares, at: 1, with: Authenticated(base.prePrepares[1].message, authenticator: [0xE2])),
                at: 2, with: Authenticated(base.prePrepares[2].message, authenticator: [0xE2])
            )),
        ]
        for variant in variants {
            // Everything the fixed fields cover is unchanged; only the body digest differs.
            #expect(variant.view == base.view && variant.sender == base.sender && variant.viewChanges == base.viewChanges)
            #expect(variant.prePrepares.map(\.message) == base.prePrepares.map(\.message))
            #expect(bytes(variant) != bytes(base))
            #expect(Array(bytes(variant).prefix(8 + 3 + 4 + 8)) == Array(bytes(base).prefix(8 + 3 + 4 + 8)))
        }
        #expect(Set(variants.map(bytes)).count == variants.count)
        // Setting the same authenticator again gives the same bytes.
        #expect(bytes(newView(prePrepareAuthenticator: [0xE1], at: 0)) == bytes(base))
    }

    @Test func newViewBytesChangeWhenAnyNestedViewChangeOrReProposalChanges() {
        let base = Fixtures.newView
        let first = base.viewChanges[0]
        let nullPrePrepare = base.prePrepares[1]
        let variants = [base, newView(view: 5), newView(sender: 1)]
            + [[0xD1, 0xD2], [], [0xD1, 0xD1, 0]].map {
                newView(viewChanges: replacing(base.viewChanges, at: 0, with: Authenticated(first.message, authenticator: $0)))
            }
            + [newView(viewChanges: replacing(base.viewChanges, at: 1, with: Authenticated(Fixtures.emptyViewChange, authenticator: [1])))]
            + viewChangeVariants().map {
                newView(viewChanges: replacing(base.viewChanges, at: 0, with: Authenticated($0, authenticator: first.authenticator)))
            }
            + [newView(viewChanges: Array(base.viewChanges.dropLast())), newView(viewChanges: base.viewChanges.reversed()), newView(viewChanges: [])]
            + [
                // A null request filled in, a batch emptied, another batch, a forged digest.
                newView(prePrepares: replacing(base.prePrepares, at: 1, with: reProposal(1002, digest: nullPrePrepare.message.digest, requests: [Fixtures.request(7)]))),
                newView(prePrepares: replacing(base.prePrepares, at: 0, with: reProposal(1001, digest: base.prePrepares[0].message.digest, requests: []))),
                newView(prePrepares: replacing(base.prePrepares, at: 0, with: reProposal(1001, requests: [Fixtures.request(1, operation: [1])]))),
                newView(prePrepares: replacing(base.prePrepares, at: 1, with: reProposal(1002, digest: Fixtures.digest(9), requests: []))),
                newView(prePrepares: replacing(base.prePrepares, at: 1, with: reProposal(1002, view: 5, requests: []))),
                newView(prePrepares: Array(base.prePrepares.dropLast())), newView(prePrepares: []),
                // The new primary's authenticator on a re-proposal: changed, emptied, filled in.
                newView(prePrepareAuthenticator: [0xE1, 0xE1], at: 0),
                newView(prePrepareAuthenticator: [], at: 1),
                newView(prePrepareAuthenticator: [0xE3], at: 2),
            ]
        #expect(Set(variants).count == variants.count)
        #expect(Set(variants.map(bytes)).count == variants.count)
        #expect(bytes(newView()) == bytes(base))
    }

    @Test func kindsNeverShareAuthenticatedBytes() {
        let all: [[UInt8]] = [
            WireCodec.authenticatedBytes(of: .request(Fixtures.request(1), relayedBy: ReplicaID(1))),
            WireCodec.authenticatedBytes(of: .prePrepare(Fixtures.prePrepare)),
            WireCodec.authenticatedBytes(of: .prepare(Fixtures.prepare)),
            WireCodec.authenticatedBytes(of: .commit(Fixtures.commit)),
            WireCodec.authenticatedBytes(of: .checkpoint(Fixtures.checkpoint)),
            bytes(Fixtures.emptyViewChange),
            bytes(Fixtures.newView),
            WireCodec.authenticatedBytes(of: Fixtures.request(1)),
            WireCodec.authenticatedBytes(of: Fixtures.reply),
            WireCodec.handshakeTranscript(prover: Fixtures.hello, verifier: Fixtures.clientHello),
        ]
        for bytes in all {
            #expect(Array(bytes.prefix(8)) == domain)
        }
        #expect(Set(all.map(Fixtures.authenticatedKind)).count == all.count)
        #expect(bytes(Fixtures.emptyViewChange)[8...10] == [0x40, 1, 0x15])
        #expect(bytes(Fixtures.newView)[8...10] == [0x40, 1, 0x16])
        // A NEW-VIEW with no entries and a VIEW-CHANGE are different even where their numbers coincide.
        let emptyNewView = NewView(view: View(4), viewChanges: [], prePrepares: [], sender: ReplicaID(2))
        #expect(Array(bytes(emptyNewView).dropFirst(11).prefix(12)) == Array(bytes(Fixtures.emptyViewChange).dropFirst(11).prefix(12)))
        #expect(bytes(emptyNewView) != bytes(Fixtures.emptyViewChange))
    }

    @Test func decodedMessagesYieldTheSenderAuthenticatedBytes() throws {
        // What a verifier recomputes after decoding equals what the sender authenticated.
        for message in [PBFTMessage.viewChange(Fixtures.viewChange), .newView(Fixtures.newView)] {
            let decoded = try Fixtures.decode(Fixtures.bytes(.pbft(message, authenticator: [1])))
            guard let received = decoded.pbft?.message else {
                Issue.record("decoded \(decoded)")
                continue
            }
            #expect(WireCodec.authenticatedBytes(of: received) == WireCodec.authenticatedBytes(of: message))
        }
    }
}
