// Durable mode of the PBFT core: the records it persists rebuild it after a crash (PROTOCOLS.md, "Durability
// and recovery"). The TestCluster's "disk" keeps what `persist` appended since the last `persistCheckpoint`
// (a new segment), as the storage does. K = 4, L = 8.
import NIOCore
import Testing
import ThemisCore
import ThemisPBFTTesting
import ThemisWire
@testable import ThemisPBFT

@Suite("PBFT durable mode: persist and restore")
struct DurabilityTests {
    @Test("The whole cluster crashes after 10 batches and restarts from disk: the same state, and ordering goes on")
    func wholeClusterRestart() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        for timestamp: UInt64 in 1...10 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        let before = cluster.applicationState
        #expect(before.allSatisfy { $0 == Array(1...10) })
        // The disk holds one checkpoint's state (8) and the records above it, not the whole history.
        #expect(cluster.savedStates.allSatisfy { Array($0.keys) == [SequenceNumber(8)] })
        // Each checkpoint's state was staged (the shell may write it ahead) when taken, before it was stable.
        #expect(cluster.staged.allSatisfy { $0 == [SequenceNumber(4), SequenceNumber(8)] })
        for replica in cluster.replicas.map(\.id) { try cluster.restartFromDisk(replica) }
        cluster.run()
        #expect(cluster.applicationState == before, "state 8 installed, batches 9 and 10 executed again")
        for replica in cluster.replicas {
            #expect(replica.lastExecuted == SequenceNumber(10))
            #expect(replica.lowWatermark == SequenceNumber(8))
        }
        // The restored primary of view 0 proposes nothing more in it (it may have forgotten a proposal): the
        // client's request reaches every replica, the backups' timers expire, view 1 takes over.
        #expect(cluster.events.contains { $0.0 == replica0 && $0.1 == .restoredAsPrimary(View(0)) })
        cluster.broadcast(TestCluster.request(1, 11, [11]), to: cluster.replicas.map(\.id))
        cluster.tick(250)
        #expect(cluster.views() == [1, 1, 1, 1])
        for timestamp: UInt64 in 12...14 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica1)
            cluster.run()
        }
        #expect(cluster.applicationState.allSatisfy { $0 == Array(1...14) })
        #expect(cluster.replicas.allSatisfy { $0.lowWatermark == SequenceNumber(12) })
    }

    @Test("A backup that prepared a batch remembers it after a crash: a different PRE-PREPARE for the slot is equivocation")
    func backupRemembersItsPrepare() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        let first = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1, [1])], sender: replica0)
        #expect(cluster.deliver(.prePrepare(first), to: replica1, authenticator: fakeAuthenticator(replica0)) == nil)
        try cluster.restartFromDisk(replica1)
        #expect(cluster.replicas[1].log[SequenceNumber(1)]?.prepares[replica1] != nil)
        let second = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1, [2])], sender: replica0)
        #expect(cluster.deliver(.prePrepare(second), to: replica1) == .equivocation(replica0, SequenceNumber(1)))
    }

    @Test("A primary restarted from disk proposes nothing more in its view (it may have forgotten a proposal); the next view orders the request, and no sequence number gets two batches")
    func restoredPrimaryStopsProposing() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        cluster.drop = { _ in true }  // its PRE-PREPARE for 1 is lost
        cluster.submit(TestCluster.request(1, 1, [1]), to: replica0)
        cluster.run()
        try cluster.restartFromDisk(replica0)
        cluster.drop = { _ in false }
        #expect(cluster.replicas[0].lastProposed == SequenceNumber(1))
        cluster.submit(TestCluster.request(2, 1, [2]), to: replica0)
        #expect(cluster.replicas[0].lastProposed == SequenceNumber(1), "no proposal in the view it was restored in")
        // Its retransmission repeats the PRE-PREPARE for 1 from disk (the proposal was written with a later
        // sync here); the request of client 2 reaches the backups, whose timers move the cluster to view 1.
        cluster.broadcast(TestCluster.request(2, 1, [2]), to: [replica1, replica2, replica3])
        cluster.tick(250)
        #expect(cluster.views() == [1, 1, 1, 1])
        for replica in cluster.replicas.map(\.id) {
            #expect(cluster.executedRequests(replica).map(\.client) == [ClientID(1), ClientID(2)])
        }
    }

    @Test("A proposal lost with the primary's crash (written lazily) costs a view change, never a second batch for its sequence number")
    func lostProposalIsNotRepeated() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        cluster.submit(TestCluster.request(1, 1, [1]), to: replica0)
        cluster.run()
        // The primary proposes 2; its PRE-PREPARE reaches replica 1 only, and the crash takes the unsynced record.
        cluster.drop = { $0.to != replica1 }
        cluster.submit(TestCluster.request(2, 1, [2]), to: replica0)
        cluster.run()
        cluster.drop = { _ in false }
        cluster.persisted[0].removeAll { if case .proposed(let p) = $0 { return p.sequence == SequenceNumber(2) } else { return false } }
        try cluster.restartFromDisk(replica0)
        cluster.submit(TestCluster.request(3, 1, [3]), to: replica0)
        #expect(cluster.replicas[0].lastProposed == SequenceNumber(1), "it forgot 2 and proposes nothing in view 0")
        cluster.broadcast(TestCluster.request(3, 1, [3]), to: [replica1, replica2, replica3])
        cluster.tick(250)
        #expect(cluster.views() == [1, 1, 1, 1])
        let histories = cluster.replicas.map { cluster.executedHistory[cluster.index($0.id)].map { $0.0.rawValue } }
        #expect(Set(cluster.replicas.map { cluster.applicationState[cluster.index($0.id)] }).count == 1, "\(histories)")
        #expect(cluster.applicationState[1].contains(3))
    }

    @Test("A backup whose PRE-PREPARE record was lost with a crash (written lazily) sends no PREPARE in the view it was restored in, still commits with the others' PREPAREs, and prepares again in the next view")
    func lostPrePrepareRecordMutesPreparesInThatView() throws {
        final class Sent: @unchecked Sendable { var prepares: [Prepare] = []; var commits: [Commit] = [] }
        let sent = Sent()
        var cluster = try TestCluster()
        try cluster.makeDurable()
        cluster.submit(TestCluster.request(1, 1, [1]), to: replica0)
        cluster.run()
        // The primary's PRE-PREPARE for 2 reaches replica 2 only; replica 2 prepares it (its PREPARE is lost on the
        // way), then crashes before its lazy record is synced.
        cluster.drop = { $0.to != replica2 }
        cluster.submit(TestCluster.request(2, 1, [2]), to: replica0)
        cluster.run()
        #expect(cluster.replicas[2].log[SequenceNumber(2)]?.prepares[replica2] != nil)
        let header = PrePrepare(view: View(0), sequence: SequenceNumber(2), requests: [], sender: replica0).header
        #expect(!PBFT.isUrgent(.prePrepare(Authenticated(header, authenticator: []), batch: nil, vouched: true)))
        cluster.persisted[2].removeAll { if case .prePrepare(let p, _, _) = $0 { return p.message.sequence == SequenceNumber(2) } else { return false } }
        try cluster.restartFromDisk(replica2)
        #expect(cluster.replicas[2].log[SequenceNumber(2)] == nil, "it forgot that it prepared 2")
        // What replica 2 sends from now on.
        let watch: (Envelope) -> Void = { envelope in
            guard envelope.from == replica2 else { return }
            if case .prepare(let prepare) = envelope.message { sent.prepares.append(prepare) }
            if case .commit(let commit) = envelope.message { sent.commits.append(commit) }
        }
        cluster.drop = { watch($0); return false }
        // The primary's retransmission brings the PRE-PREPARE for 2 again: replica 2 accepts it without a PREPARE
        // (had the primary equivocated, a second PREPARE could have voted for another batch), commits through the
        // PREPAREs of replicas 1 and 3 and executes it.
        cluster.tick(60)
        #expect(sent.prepares.isEmpty, "\(sent.prepares)")
        #expect(sent.commits.contains { $0.view == View(0) && $0.sequence == SequenceNumber(2) }, "its COMMIT follows an urgent record")
        for replica in cluster.replicas.map(\.id) {
            #expect(cluster.executedRequests(replica).map(\.client) == [ClientID(1), ClientID(2)])
        }
        // Restarted again in view 0 (a second crash): a PRE-PREPARE it accepted while muted comes back without a
        // PREPARE of its own, so it is still not sent (found in review: the record once said "vouched", and the
        // replay then repeated a PREPARE that never went out).
        cluster.drop = { watch($0); return $0.from == replica0 && $0.to != replica2 }
        cluster.submit(TestCluster.request(6, 1, [6]), to: replica0)
        cluster.run()
        #expect(cluster.replicas[2].log[SequenceNumber(3)]?.prePrepare != nil)
        try cluster.restartFromDisk(replica2)
        #expect(cluster.replicas[2].log[SequenceNumber(3)]?.prePrepare != nil)
        #expect(cluster.replicas[2].log[SequenceNumber(3)]?.prepares[replica2] == nil)
        cluster.drop = { watch($0); return false }
        cluster.tick(60)
        #expect(sent.prepares.isEmpty, "\(sent.prepares)")
        #expect(cluster.executedRequests(replica2).map(\.client) == [ClientID(1), ClientID(2), ClientID(6)])
        // The next view lifts it: replica 2 prepares the batches of view 1.
        cluster.silenced = [replica0]
        cluster.broadcast(TestCluster.request(3, 1, [3]), to: [replica1, replica2, replica3])
        cluster.tick(250, replicas: [replica1, replica2, replica3])
        #expect(cluster.views() == [1, 1, 1, 1])
        cluster.submit(TestCluster.request(4, 1, [4]), to: replica1)
        cluster.run()
        #expect(sent.prepares.contains { $0.view == View(1) })
        for replica in [replica1, replica2, replica3] {
            #expect(cluster.executedRequests(replica).map(\.client) == [ClientID(1), ClientID(2), ClientID(6), ClientID(3), ClientID(4)])
        }
    }

    @Test("A crash that tears the new segment restating everything at a stable checkpoint (the old segment read first, then the restatement up to its enteredView) keeps what the old records rebuilt: a VIEW-CHANGE sent since")
    func tornRestatementKeepsTheViewChange() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        for timestamp: UInt64 in 1...5 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        cluster.silenced = [replica0]
        cluster.broadcast(TestCluster.request(1, 6, [6]), to: [replica1])
        cluster.tick(100, replicas: [replica1])
        #expect(cluster.replicas[1].status == .viewChanging(to: View(1)))
        // The segment holds the restatement of checkpoint 4 (stable, enteredView(0), ...) and, after it, the
        // VIEW-CHANGE. A restatement of the same view cut short after its enteredView follows it.
        let records = cluster.persisted[1]
        let stable = try #require(records.first { if case .stable = $0 { return true }; return false })
        #expect(records.contains { if case .viewChange = $0 { return true }; return false })
        cluster.persisted[1] = records + [stable, .enteredView(View(0))]
        try cluster.restartFromDisk(replica1)
        #expect(cluster.replicas[1].status == .viewChanging(to: View(1)), "it sent a VIEW-CHANGE: it must not go back to view 0")
        #expect(cluster.replicas[1].log[SequenceNumber(5)] != nil, "the slots above the checkpoint stay")
    }

    @Test("A replica restarted during a view change still wants the new view and still has its VIEW-CHANGE")
    func viewChangeSurvivesRestart() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        cluster.silenced = [replica0, replica1]
        cluster.submit(TestCluster.request(1, 1), to: replica1)
        cluster.tick(100, replicas: [replica1])
        #expect(cluster.replicas[1].status == .viewChanging(to: View(1)))
        try cluster.restartFromDisk(replica1)
        #expect(cluster.replicas[1].status == .viewChanging(to: View(1)))
        #expect(cluster.replicas[1].viewChange.received[replica1]?.message.newView == View(1))
    }

    @Test("The views, prepared certificates and view changes survive: the cluster restarted after a view change comes back in view 1 and goes on")
    func restartAfterViewChange() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        cluster.silenced = [replica0]
        cluster.broadcast(TestCluster.request(1, 1, [5]), to: [replica1, replica2, replica3])
        cluster.tick(250, replicas: [replica1, replica2, replica3])
        #expect(cluster.views() == [1, 1, 1, 1])
        cluster.silenced = []
        for replica in cluster.replicas.map(\.id) { try cluster.restartFromDisk(replica) }
        #expect(cluster.views() == [1, 1, 1, 1])
        // Replica 1, restored as the primary of view 1, proposes nothing more in it: view 2 orders the request.
        cluster.broadcast(TestCluster.request(1, 2, [6]), to: cluster.replicas.map(\.id))
        cluster.tick(250)
        #expect(cluster.views() == [2, 2, 2, 2])
        for replica in [replica1, replica2, replica3] {
            #expect(cluster.applicationState[cluster.index(replica)] == [5, 6])
        }
    }

    @Test("A snapshot that does not match its checkpoint's digest is refused with snapshotMismatch")
    func corruptSnapshotIsRefused() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        for timestamp: UInt64 in 1...4 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        var state = try #require(cluster.savedStates[2][SequenceNumber(4)])
        state[state.count / 2] ^= 1
        cluster.savedStates[2][SequenceNumber(4)] = state
        #expect(throws: RestoreError.snapshotMismatch(SequenceNumber(4))) { try cluster.restartFromDisk(replica2) }
    }

    @Test("Without its snapshot a restarted replica fetches the stable checkpoint by state transfer")
    func missingSnapshotMeansStateTransfer() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        for timestamp: UInt64 in 1...5 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        cluster.savedStates[3] = [:]
        try cluster.restartFromDisk(replica3)
        #expect(cluster.events.contains { $0.0 == replica3 && $0.1 == .stateTransferNeeded(SequenceNumber(4), cluster.replicas[3].stableCheckpointDigest!) })
        cluster.tick(20)
        #expect(cluster.applicationState[3] == [1, 2, 3, 4, 5])
    }

    @Test("Every record kind survives its encoding")
    func recordCodecRoundTrip() throws {
        let request = TestCluster.request(7, 3, [1, 2, 3])
        let header = PrePrepareHeader(view: View(2), sequence: SequenceNumber(9), digest: Request.batchDigest([request]), requestCount: 1, sender: replica2)
        let prepare = Authenticated(Prepare(view: View(2), sequence: SequenceNumber(9), digest: header.digest, sender: replica1), authenticator: [1, 2])
        let certificate = PreparedCertificate(prePrepare: Authenticated(header, authenticator: [9]), prepares: [prepare])
        let proof = [Authenticated(Checkpoint(sequence: SequenceNumber(8), stateDigest: header.digest, sender: replica3), authenticator: [4])]
        let records: [PBFTRecord] = [
            .enteredView(View(3)),
            .viewChange(ViewChange(newView: View(4), stableCheckpoint: SequenceNumber(8), stableDigest: header.digest,
                                   checkpointProof: proof, prepared: [certificate], sender: replica1)),
            .prePrepare(Authenticated(header, authenticator: [5, 6]), batch: [request], vouched: true),
            .prePrepare(Authenticated(header, authenticator: []), batch: nil, vouched: false),
            .batch(SequenceNumber(9), [request]),
            .prepared(certificate),
            .committed(SequenceNumber(9)),
            .committedBatch(header.with([request])),
            .proposed(header.with([request])),
            .newViewSent(NewView(view: View(4), viewChanges: [], prePrepares: [Authenticated(header, authenticator: [7])], sender: replica0)),
            .stable(SequenceNumber(8), header.digest, proof: proof),
        ]
        for record in records {
            #expect(try PBFT.decodeRecord(PBFT.encodeRecord(record), limits: Limits()) == record)
        }
        #expect(throws: WireError.self) { try PBFT.decodeRecord([99], limits: Limits()) }
        #expect(throws: WireError.self) { try PBFT.decodeRecord(PBFT.encodeRecord(.committed(SequenceNumber(1))) + [0], limits: Limits()) }
    }

    @Test("In-memory mode persists nothing")
    func inMemoryPersistsNothing() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...5 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        #expect(cluster.persisted.allSatisfy { $0.isEmpty })
        #expect(cluster.savedStates.allSatisfy { $0.isEmpty })
        #expect(cluster.staged.allSatisfy { $0.isEmpty }, "checkpoint 4 was taken, and not staged")
    }
}
