// Regression tests for the review findings: following a later view without its NEW-VIEW (safety),
// short checkpoint proofs after state transfer or from a NEW-VIEW (liveness), and a Byzantine replica
// flooding the future-view buffer (memory). Each failed before its fix.
import Testing
import ThemisCore
import ThemisPBFTTesting
@testable import ThemisPBFT

@Suite("Regressions found in review")
struct ReviewRegressionTests {
    /// n = 7, f = 2, Byzantine: 1 (primary of view 1) and 2.
    @Test("R1 following a later view without NEW-VIEW lets a Byzantine primary overwrite a committed slot")
    func followUnsafe() throws {
        var cluster = try TestCluster(replicaCount: 7)
        let r = (0..<7).map { ReplicaID(UInt32($0)) }
        // View 0: replica 6 cut off; COMMITs reach replica 3 only.
        cluster.drop = { e in
            if e.to == r[6] || e.from == r[6] { return true }
            if case .commit = e.message, e.to != r[3] { return true }
            return false
        }
        let a = TestCluster.request(1, 1, [0xA])
        cluster.submit(a, to: r[0])
        cluster.run()
        #expect(cluster.executedSequences(r[3]) == [1])
        #expect(cluster.executedSequences(r[4]) == [])
        cluster.network = []
        cluster.drop = { _ in false }

        // Correct replicas 0, 3, 4, 5, 6 leave view 0.
        var viewChanges: [ReplicaID: ViewChange] = [:]
        for i in [0, 3, 4, 5, 6] {
            var actions: [PBFTAction] = []
            cluster.replicas[i].startViewChange(to: View(1), into: &actions)
            for case .broadcast(.viewChange(let vc)) in actions { viewChanges[r[i]] = vc }
        }
        // Byzantine replica 1 (primary of view 1) builds a valid NEW-VIEW (we let its correct code do it).
        for i in [0, 3, 4, 5] {
            cluster.deliver(.viewChange(viewChanges[r[i]]!), to: r[1], authenticator: fakeAuthenticator(r[i]))
        }
        let newViews = cluster.network.filter { if case .newView = $0.message { return $0.to == r[0] } else { return false } }
        #expect(newViews.count == 1)
        cluster.network = []
        // ... and sends it to replica 0 only.
        cluster.deliver(newViews[0].message, to: r[0], authenticator: fakeAuthenticator(r[1]))
        #expect(cluster.replicas[0].view == View(1))
        // Replica 0's PREPARE(v1, s1, A) reaches 4, 5, 6 only.
        cluster.network = cluster.network.filter { [r[4], r[5], r[6]].contains($0.to) }
        // Byzantine 1 and 2: PRE-PREPARE / PREPARE for a different batch B at s = 1 in view 1.
        let b = TestCluster.request(2, 1, [0xB])
        let prePrepareB = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: [b], sender: r[1])
        for i in [4, 5, 6] {
            cluster.network.append(Envelope(from: r[1], to: r[i], message: .prePrepare(prePrepareB), authenticator: fakeAuthenticator(r[1])))
            cluster.network.append(Envelope(from: r[2], to: r[i], message: .prepare(Prepare(view: View(1), sequence: SequenceNumber(1), digest: prePrepareB.digest, sender: r[2])), authenticator: fakeAuthenticator(r[2])))
            for byz in [1, 2] {
                cluster.network.append(Envelope(from: r[byz], to: r[i], message: .commit(Commit(view: View(1), sequence: SequenceNumber(1), digest: prePrepareB.digest, sender: r[byz])), authenticator: fakeAuthenticator(r[byz])))
            }
        }
        // Only 4, 5, 6 talk to each other from now on (0 and 3 are slow).
        cluster.drop = { e in ![r[4], r[5], r[6]].contains(e.to) || e.from == r[3] }
        cluster.run()
        #expect(cluster.executedHistory[3].first?.1 == [a])
        for i in [4, 5, 6] {
            // Replicas that never processed the NEW-VIEW do not enter view 1, so B cannot commit there.
            #expect(cluster.executedHistory[i].first.map { $0.1 == [a] } ?? true, "replica \(i) executed another batch at seq 1")
        }
    }

    /// n = 4, f = 1. Replica 3 recovers by state transfer started at f+1 votes; its stable proof then has f+1 entries.
    @Test("R2 after a state transfer the replica's VIEW-CHANGE carries an f+1 checkpoint proof and is rejected")
    func stateTransferShortProof() throws {
        var cluster = try TestCluster()
        cluster.drop = { $0.to == replica3 || $0.from == replica3 }
        for t: UInt64 in 1...30 {
            cluster.submit(TestCluster.request(1, t, [UInt8(t)]), to: replica0)
            cluster.run()
        }
        cluster.restart(replica3)
        cluster.drop = { _ in false }
        cluster.tick(520)  // the periodic CHECKPOINT re-broadcast tells replica 3 how far behind it is
        #expect(cluster.installed.contains { $0.0 == replica3 })
        // Now primary 0 fails (f = 1). Replicas 1, 2, 3 must be able to change view.
        cluster.silenced = [replica0]
        cluster.drop = { $0.from == replica0 }
        cluster.broadcast(TestCluster.request(2, 1, [9]), to: [replica1, replica2, replica3])
        cluster.tick(5000, replicas: [replica1, replica2, replica3])
        #expect(cluster.executedRequests(replica1).contains { $0.client == ClientID(2) }, "view change never completed")
    }

    /// n = 4. The chosen stable VIEW-CHANGE's own checkpoint is implied; a replica that never got that
    /// CHECKPOINT forwards a proof of 2f entries.
    @Test("R3 forwardableProof can end below a quorum")
    func forwardableProofShort() throws {
        var cluster = try TestCluster()
        // Replica 3 gets no COMMITs (it does not execute) and no CHECKPOINT from replica 1.
        cluster.drop = { e in
            if e.to == replica3, case .commit = e.message { return true }
            if e.to == replica3, e.from != replica0, case .checkpoint = e.message { return true }
            return false
        }
        for t: UInt64 in 1...4 {
            cluster.submit(TestCluster.request(1, t, [UInt8(t)]), to: replica0)
            cluster.run()
        }
        #expect(cluster.replicas[0].lowWatermark == SequenceNumber(4))
        #expect(cluster.replicas[3].lowWatermark == SequenceNumber(0))
        // Primary 0 stops ordering but takes part in the view change (like FollowingTests).
        cluster.drop = { e in
            if e.to == replica3, e.from != replica0, case .checkpoint = e.message { return true }
            return e.from == replica0 && e.message.normalCaseView == View(0)
        }
        cluster.broadcast(TestCluster.request(2, 1, [9]), to: [replica1, replica2, replica3])
        cluster.tick(300)
        #expect(cluster.replicas[3].checkpoints.stableProof.count >= 3)
        // Issue 9, finding 2: the proof must also be forwardable. After the state transfer the NEW-VIEW
        // started, replica 3 kept V's raw proof, whose entry for the VIEW-CHANGE's sender is implied
        // (empty); every later VIEW-CHANGE of replica 3 was then forged to everyone else.
        #expect(cluster.replicas[3].checkpoints.stableProof.allSatisfy { !$0.authenticator.isEmpty || $0.message.sender == replica3 },
                "\(cluster.replicas[3].checkpoints.stableProof.map { ($0.message.sender, $0.authenticator) })")
        cluster.unverifiable = []
        cluster.drop = { _ in false }
        cluster.silenced = [cluster.replicas[0].primary]
        cluster.broadcast(TestCluster.request(3, 1, [10]), to: [replica0, replica1, replica2, replica3])
        cluster.tick(400)
        #expect(cluster.unverifiable.isEmpty, "\(cluster.unverifiable)")
    }

    @Test("R4 one Byzantine replica fills the future-view buffer forever")
    func futureBufferFlood() throws {
        var cluster = try TestCluster()
        for s: UInt64 in 1...40 {
            let p = Prepare(view: View(1_000_000), sequence: SequenceNumber(s), digest: .zero, sender: replica2)
            cluster.deliver(.prepare(p), to: replica1, authenticator: fakeAuthenticator(replica2))
        }
        let legit = Prepare(view: View(1), sequence: SequenceNumber(1), digest: .zero, sender: replica3)
        cluster.deliver(.prepare(legit), to: replica1, authenticator: fakeAuthenticator(replica3))
        #expect(cluster.replicas[1].viewChange.future.contains { $0.message == .prepare(legit) })
    }

    @Test("Issue 9 finding 3: messages for the next view are checked before they are kept, and kept within a byte budget per sender")
    func futureBufferCheckedAndBoundedByBytes() throws {
        var limits = Limits()
        limits.batchRequestsMax = 16
        var cluster = try TestCluster(limits: limits)
        let budget = ViewChangeState.futureBytesPerSenderMax(limits)
        // Replica 1, primary of view 1, is faulty: it sends replica 2 (in view 0) a full batch of the
        // largest requests for every sequence number of the window, about 1 MiB each.
        // Requests sized so that a full batch is just within batchBytesMax (what a correct primary may send).
        let large = [UInt8](repeating: 7, count: limits.batchBytesMax / limits.batchRequestsMax - 64)
        var sent = 0
        for sequence in 1...UInt64(8) {
            let batch = (0..<UInt32(limits.batchRequestsMax)).map { Request(client: ClientID($0), timestamp: Timestamp(sequence), operation: large) }
            let prePrepare = PrePrepare(view: View(1), sequence: SequenceNumber(sequence), requests: batch, sender: replica1)
            #expect(cluster.deliver(.prePrepare(prePrepare), to: replica2, authenticator: fakeAuthenticator(replica1)) == nil)
            sent += RetainedBytes.estimate(.prePrepare(prePrepare)) + fakeAuthenticator(replica1).count
        }
        let kept = cluster.replicas[2].viewChange.futureBytes[replica1, default: 0]
        #expect(kept <= budget && kept < sent, "kept \(kept) of \(sent) bytes; budget \(budget)")
        // A correct primary's pipeline of full batches is kept; the rest is not.
        #expect(cluster.replicas[2].viewChange.future.count >= limits.pipelineDepthMax)
        #expect(cluster.replicas[2].viewChange.future.count < 8)
        // What cannot be valid in view 1 is refused before it is kept: not from its primary, beyond the
        // watermarks, a batch that does not match its digest, a PREPARE from the primary.
        let one = [TestCluster.request(1, 1)]
        let cases: [(PBFTMessage, ReplicaID, Rejection)] = [
            (.prePrepare(PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: one, sender: replica3)), replica3,
             .notFromPrimary(replica3, primary: replica1)),
            (.prePrepare(PrePrepare(view: View(1), sequence: SequenceNumber(9), requests: one, sender: replica1)), replica1,
             .outsideWatermarks(SequenceNumber(9), low: .zero, high: SequenceNumber(8))),
            (.prePrepare(PrePrepare(view: View(1), sequence: SequenceNumber(2), digest: Digest.of([1]), requests: one, sender: replica1)), replica1,
             .batchDigestMismatch(SequenceNumber(2))),
            (.prepare(Prepare(view: View(1), sequence: SequenceNumber(1), digest: .zero, sender: replica1)), replica1, .prepareFromPrimary(replica1)),
        ]
        let before = cluster.replicas[2].viewChange.future.count
        for (message, sender, rejection) in cases {
            #expect(cluster.deliver(message, to: replica2, authenticator: fakeAuthenticator(sender)) == rejection)
        }
        #expect(cluster.replicas[2].viewChange.future.count == before)
    }

    @Test("Issue 9 finding 8: a sender's far CHECKPOINT and its repeat inside the window count once towards a state transfer")
    func farAndNearVoteCountOnce() throws {
        var cluster = try TestCluster()
        let digest = Digest.of([4, 2])
        func vote(_ sender: ReplicaID) -> Authenticated<Checkpoint> {
            Authenticated(Checkpoint(sequence: SequenceNumber(12), stateDigest: digest, sender: sender), authenticator: fakeAuthenticator(sender))
        }
        // Replica 1's vote arrived when 12 was beyond the window, and again (its periodic repeat) once inside.
        cluster.replicas[3].stateTransfer.farVotes[replica1] = vote(replica1)
        cluster.replicas[3].checkpoints.votes[SequenceNumber(12)] = [replica1: vote(replica1), replica2: vote(replica2)]
        var actions: [PBFTAction] = []
        cluster.replicas[3].considerStateTransfer(into: &actions)
        #expect(cluster.replicas[3].stateTransfer.fetch == nil, "two replicas are not a quorum of three")
        cluster.replicas[3].checkpoints.votes[SequenceNumber(12)]?[replica0] = vote(replica0)
        cluster.replicas[3].considerStateTransfer(into: &actions)
        #expect(cluster.replicas[3].stateTransfer.fetch?.sequence == SequenceNumber(12))
        #expect(cluster.replicas[3].stateTransfer.fetch?.proof.map(\.message.sender) == [replica0, replica1, replica2])
    }

    @Test("Issue 9 finding 5: one client cannot fill the primary's queue; each client has one queued request and batches take them in turn")
    func oneQueuedRequestPerClient() throws {
        var cluster = try TestCluster()
        // A batch in flight, so that later requests queue at the primary.
        cluster.submit(TestCluster.request(9, 1), to: replica0)
        // A faulty client sends every timestamp it likes; a correct one sends one request.
        for timestamp: UInt64 in 1...50 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
        }
        cluster.submit(TestCluster.request(2, 1), to: replica0)
        #expect(cluster.replicas[0].pendingRequests.count == 2, "one of client 1, one of client 2")
        let refused = cluster.rejections.filter { $0.1 == .clientRequestQueued(ClientID(1)) }.count
        #expect(refused == 49)
        cluster.run()
        // Both queued requests executed in the next batch; client 1 may queue again.
        #expect(cluster.executedRequests(replica1).map { $0.client.rawValue } == [9, 1, 2])
        cluster.submit(TestCluster.request(1, 60), to: replica0)
        cluster.run()
        #expect(cluster.executedRequests(replica1).last?.timestamp == Timestamp(60))
    }

    @Test("Review: a header's request count is the sender's word; a replica holding the batch attaches it by digest alone")
    func wrongRequestCountInCertificate() throws {
        var cluster = try TestCluster()
        // Replica 2 accepts the PRE-PREPARE of view 0 (with its batch); nothing commits.
        cluster.drop = { envelope in if case .commit = envelope.message { return true } else { return false } }
        let batch = [TestCluster.request(1, 1, [5])]
        cluster.submit(batch[0], to: replica0)
        cluster.run()
        #expect(cluster.replicas[2].log[SequenceNumber(1)]?.batch == batch)
        // The new primary (1) builds O from a certificate whose header has the right digest, a wrong count.
        let good = certificate(view: 0, sequence: 1, requests: batch, by: [2, 3])
        let header = good.prePrepare.message
        let lying = PreparedCertificate(
            prePrepare: Authenticated(PrePrepareHeader(view: header.view, sequence: header.sequence, digest: header.digest, requestCount: 7,
                                                       sender: header.sender), authenticator: good.prePrepare.authenticator),
            prepares: good.prepares)
        let changes = [viewChange(to: 1, from: 1, prepared: [lying]), viewChange(to: 1, from: 2), viewChange(to: 1, from: 3)]
        let (_, o) = PBFTReplica.reproposals(from: changes, view: View(1), primary: replica1)
        #expect(o.first?.requestCount == 7)
        let newView = NewView(view: View(1), viewChanges: changes.map { Authenticated($0, authenticator: fakeAuthenticator($0.sender)) },
                              prePrepares: o.map { Authenticated($0, authenticator: fakeAuthenticator(replica1)) }, sender: replica1)
        #expect(cluster.deliver(.newView(newView), to: replica2, authenticator: fakeAuthenticator(replica1)) == nil)
        #expect(cluster.replicas[2].view == View(1))
        #expect(cluster.replicas[2].log[SequenceNumber(1)]?.batch == batch, "the held batch is attached: its digest matches")
        #expect(!cluster.events.contains { $0.0 == replica2 && $0.1 == .batchMissing(SequenceNumber(1)) })
    }

    @Test("Review: sequence numbers and sizes from peers are never used in arithmetic that can trap")
    func peerNumbersCannotTrap() throws {
        var cluster = try TestCluster()
        cluster.submit(TestCluster.request(1, 1), to: replica0)
        cluster.run()
        // FETCH-BATCHES from the end of the sequence space: nothing to serve, no overflow.
        #expect(cluster.deliver(.fetchBatches(FetchBatches(from: SequenceNumber(UInt64.max), sender: replica2)), to: replica1,
                                authenticator: fakeAuthenticator(replica2)) == nil)
        // A batch of two requests over batchBytesMax (a correct primary cuts batches below it).
        let limits = cluster.replicas[1].limits
        let large = [UInt8](repeating: 1, count: limits.operationBytesMax)
        let count = limits.batchBytesMax / limits.operationBytesMax + 1
        let oversized = PrePrepare(view: View(0), sequence: SequenceNumber(2),
                                   requests: (0..<UInt32(count)).map { Request(client: ClientID($0), timestamp: Timestamp(1), operation: large) },
                                   sender: replica0)
        guard case .batchTooLarge? = cluster.deliver(.prePrepare(oversized), to: replica1, authenticator: fakeAuthenticator(replica0)) else {
            Issue.record("a batch over batchBytesMax was accepted")
            return
        }
    }

    @Test("A replica alone in a view change keeps fetching the batches the others commit without it (found under ThreadSanitizer)")
    func aloneInViewChangeKeepsUp() throws {
        var cluster = try TestCluster()
        var actions: [PBFTAction] = []
        cluster.replicas[3].startViewChange(to: View(1), into: &actions)
        cluster.perform(actions, at: replica3)
        for timestamp: UInt64 in 1...6 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        #expect(cluster.replicas[3].status == .viewChanging(to: View(1)), "no quorum joined its view change")
        #expect(cluster.executedSequences(replica3).isEmpty)
        cluster.tick(250)
        // Checkpoint 4 by state transfer, then 5 and 6 fetched and executed while still changing views.
        #expect(cluster.replicas[3].lastExecuted == cluster.replicas[0].lastExecuted)
        #expect(cluster.executedSequences(replica3) == [5, 6])
        #expect(cluster.applicationState[3] == cluster.applicationState[0])
    }
}
