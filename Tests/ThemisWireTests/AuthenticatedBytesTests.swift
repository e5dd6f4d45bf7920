// Proves that the authenticated bytes bind the message kind and every field that matters: each kind
// gets its own kind byte after the "THEMIS/1" domain, a PREPARE never equals a COMMIT with the same
// fields, changing any bound field changes the bytes, and authenticators themselves are never bound.
import Testing
import ThemisCore
import ThemisPBFT
import ThemisWire

@Suite struct AuthenticatedBytesTests {
    let domain: [UInt8] = Array("THEMIS/1".utf8)

    func prepare(view: UInt64 = 3, sequence: UInt64 = 41, digest: UInt64 = 1, sender: UInt32 = 1) -> [UInt8] {
        WireCodec.authenticatedBytes(of: .prepare(Prepare(view: View(view), sequence: SequenceNumber(sequence), digest: Fixtures.digest(digest), sender: ReplicaID(sender))))
    }

    func commit(view: UInt64 = 3, sequence: UInt64 = 41, digest: UInt64 = 1, sender: UInt32 = 1) -> [UInt8] {
        WireCodec.authenticatedBytes(of: .commit(Commit(view: View(view), sequence: SequenceNumber(sequence), digest: Fixtures.digest(digest), sender: ReplicaID(sender))))
    }

    func prePrepare(view: UInt64 = 3, sequence: UInt64 = 41, digest: UInt64 = 1, sender: UInt32 = 1, requests: [Request] = []) -> [UInt8] {
        WireCodec.authenticatedBytes(of: .prePrepare(PrePrepare(view: View(view), sequence: SequenceNumber(sequence), digest: Fixtures.digest(digest), requests: requests, sender: ReplicaID(sender))))
    }

    @Test func everyKindStartsWithTheDomainAndHasItsOwnKindByte() {
        let all: [[UInt8]] = [
            WireCodec.authenticatedBytes(of: .request(Fixtures.request(1), relayedBy: ReplicaID(1))),
            WireCodec.authenticatedBytes(of: .prePrepare(Fixtures.prePrepare)),
            WireCodec.authenticatedBytes(of: .prepare(Fixtures.prepare)),
            WireCodec.authenticatedBytes(of: .commit(Fixtures.commit)),
            WireCodec.authenticatedBytes(of: .checkpoint(Fixtures.checkpoint)),
            WireCodec.authenticatedBytes(of: .viewChange(Fixtures.emptyViewChange)),
            WireCodec.authenticatedBytes(of: .newView(Fixtures.newView)),
            WireCodec.authenticatedBytes(of: .fetchState(Fixtures.fetchState)),
            WireCodec.authenticatedBytes(of: .stateChunk(Fixtures.stateChunk)),
            WireCodec.authenticatedBytes(of: .fetchBatches(Fixtures.fetchBatches)),
            WireCodec.authenticatedBytes(of: .committedBatches(Fixtures.committedBatches)),
            WireCodec.authenticatedBytes(of: Fixtures.request(1)),
            WireCodec.authenticatedBytes(ofReadOnly: Fixtures.request(1)),
            WireCodec.authenticatedBytes(of: Fixtures.reply),
            WireCodec.handshakeTranscript(prover: Fixtures.hello, verifier: Fixtures.clientHello),
        ]
        for bytes in all {
            #expect(Array(bytes.prefix(8)) == domain)
        }
        #expect(Set(all.map(Fixtures.authenticatedKind)).count == all.count)
        #expect(WireCodec.authenticationDomain == domain)
    }

    @Test func prepareAndCommitWithIdenticalFieldsDiffer() {
        #expect(prepare() != commit())
        // Only the kind byte differs: the fields are laid out identically.
        #expect(Array(prepare().dropFirst(11)) == Array(commit().dropFirst(11)))
    }

    @Test func normalCaseMessagesBindViewSequenceDigestAndSender() {
        for make in [prepare, commit, { prePrepare(view: $0, sequence: $1, digest: $2, sender: $3) }] {
            let base = make(3, 41, 1, 1)
            #expect(make(4, 41, 1, 1) != base)
            #expect(make(3, 42, 1, 1) != base)
            #expect(make(3, 41, 2, 1) != base)
            #expect(make(3, 41, 1, 2) != base)
            #expect(make(3, 41, 1, 1) == base)
        }
    }

    @Test func prepareLayoutIsDomainKindThenFields() {
        let expected: [UInt8] = domain + [0x40, 1, 0x12] + Fixtures.bigEndian(UInt64(3)) + Fixtures.bigEndian(UInt64(41))
            + Fixtures.digest(1).bytes + Fixtures.bigEndian(UInt32(1))
        #expect(prepare() == expected)
    }

    @Test func prePrepareBindsTheRequestCountButNotTheRequests() {
        // The digest field binds the batch; the core recomputes it. The count is bound as well.
        let one = prePrepare(requests: [Fixtures.request(1)])
        #expect(prePrepare(requests: [Fixtures.request(2, operation: [42])]) == one)
        #expect(prePrepare(requests: [Fixtures.request(1), Fixtures.request(2)]) != one)
        #expect(one.count == 8 + 3 + 8 + 8 + 32 + 4 + 4)
    }

    @Test func checkpointBindsSequenceStateDigestAndSender() {
        func bytes(_ sequence: UInt64, _ digest: UInt64, _ sender: UInt32) -> [UInt8] {
            WireCodec.authenticatedBytes(of: .checkpoint(Checkpoint(sequence: SequenceNumber(sequence), stateDigest: Fixtures.digest(digest), sender: ReplicaID(sender))))
        }
        let base = bytes(1000, 2, 3)
        #expect(bytes(2000, 2, 3) != base)
        #expect(bytes(1000, 4, 3) != base)
        #expect(bytes(1000, 2, 0) != base)
    }

    @Test func relayedRequestBindsRelayerAndRequestDigestNotAuthenticator() {
        func bytes(_ request: Request, _ relayer: UInt32) -> [UInt8] {
            WireCodec.authenticatedBytes(of: .request(request, relayedBy: ReplicaID(relayer)))
        }
        let base = bytes(Fixtures.request(1), 1)
        #expect(bytes(Fixtures.request(1), 2) != base)
        #expect(bytes(Fixtures.request(1, operation: [0]), 1) != base)
        #expect(bytes(Fixtures.request(1, authenticator: [1, 2, 3]), 1) == base)
        // A relayed request is not a client's request: the kind differs.
        #expect(Array(base.suffix(32)) == Fixtures.request(1).digest.bytes)
        #expect(WireCodec.authenticatedBytes(of: Fixtures.request(1)) != base)
    }

    @Test func requestBindsItsDigestNotItsAuthenticator() {
        let base = WireCodec.authenticatedBytes(of: Fixtures.request(1))
        #expect(base == domain + [0x20] + Fixtures.request(1).digest.bytes)
        #expect(WireCodec.authenticatedBytes(of: Fixtures.request(1, authenticator: [])) == base)
        #expect(WireCodec.authenticatedBytes(of: Fixtures.request(1, operation: [3, 2, 1])) != base)
        #expect(WireCodec.authenticatedBytes(of: Fixtures.request(2)) != base)
    }

    @Test func replyBindsEveryFieldAndTheResultDigestNotTheAuthenticator() {
        let reply = Fixtures.reply
        let base = WireCodec.authenticatedBytes(of: reply)
        let variants = [
            Reply(view: View(9), timestamp: reply.timestamp, client: reply.client, replica: reply.replica, result: reply.result),
            Reply(view: reply.view, timestamp: Timestamp(9), client: reply.client, replica: reply.replica, result: reply.result),
            Reply(view: reply.view, timestamp: reply.timestamp, client: ClientID(9), replica: reply.replica, result: reply.result),
            Reply(view: reply.view, timestamp: reply.timestamp, client: reply.client, replica: ReplicaID(9), result: reply.result),
            Reply(view: reply.view, timestamp: reply.timestamp, client: reply.client, replica: reply.replica, result: [9]),
        ]
        for variant in variants {
            #expect(WireCodec.authenticatedBytes(of: variant) != base)
        }
        #expect(WireCodec.authenticatedBytes(of: reply.withAuthenticator([1, 1, 1])) == base)
        #expect(Array(base.suffix(32)) == Digest.of(reply.result).bytes)
    }

    @Test func handshakeTranscriptBindsBothHellosInOrder() {
        let prover = Fixtures.hello
        let verifier = Fixtures.clientHello
        let base = WireCodec.handshakeTranscript(prover: prover, verifier: verifier)
        #expect(base.count == 8 + 1 + 2 * (1 + 4 + 32 + 8))
        // A proof cannot be reflected back: swapping the roles changes the transcript.
        #expect(WireCodec.handshakeTranscript(prover: verifier, verifier: prover) != base)
        let otherNonce = Hello(principal: verifier.principal, nonce: Fixtures.nonce(3), clusterTag: verifier.clusterTag)
        #expect(WireCodec.handshakeTranscript(prover: prover, verifier: otherNonce) != base)
        let otherCluster = Hello(principal: prover.principal, nonce: prover.nonce, clusterTag: 1)
        #expect(WireCodec.handshakeTranscript(prover: otherCluster, verifier: verifier) != base)
        // replica 77 and client 77 are different principals.
        let replica77 = Hello(principal: .replica(ReplicaID(77)), nonce: verifier.nonce, clusterTag: verifier.clusterTag)
        #expect(WireCodec.handshakeTranscript(prover: prover, verifier: replica77) != base)
    }
}
