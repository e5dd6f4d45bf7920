// Proves PBFT's normal-case rules (Castro & Liskov, OSDI'99, section 4.2) on pure cores: each test is
// named after a rule of the paper and drives 4 replicas (f = 1) through the in-memory TestCluster.
import Testing
import ThemisCore
import ThemisPBFTTesting
@testable import ThemisPBFT

@Suite("PBFT normal case")
struct NormalCaseTests {
    @Test("A request sent to the primary is executed by every replica and answered by all of them")
    func requestExecutesEverywhere() throws {
        var cluster = try TestCluster()
        cluster.submit(TestCluster.request(1, 1, [42]), to: replica0)
        cluster.run()
        for replica in cluster.replicas {
            #expect(cluster.executedRequests(replica.id).map(\.operation) == [[42]])
        }
        #expect(cluster.replies(for: 1, 1).count == 4)
        #expect(Set(cluster.replies(for: 1, 1).map(\.result)) == [[42]])
    }

    @Test("A backup relays a client's request to the primary, which orders it")
    func backupRelaysToPrimary() throws {
        var cluster = try TestCluster()
        cluster.submit(TestCluster.request(1, 1), to: replica2)
        #expect(cluster.network.count == 1)
        #expect(cluster.network[0].to == replica0)
        cluster.run()
        #expect(cluster.executedSequences(replica2) == [1])
    }

    @Test("A backup accepts a pre-prepare only if it is in view v; one for a later view waits until it enters that view")
    func prePrepareForOtherViewNotAccepted() throws {
        var cluster = try TestCluster()
        let prePrepare = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1)], sender: replica1)
        #expect(cluster.deliver(.prePrepare(prePrepare), to: replica2) == nil)
        #expect(cluster.network.isEmpty, "no PREPARE for a view the backup is not in")
        #expect(cluster.replicas[2].viewChange.future.count == 1)
        #expect(cluster.replicas[2].log.isEmpty)
    }

    @Test("Only the primary of the view may send a pre-prepare")
    func prePrepareFromBackupRejected() throws {
        var cluster = try TestCluster()
        let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1)], sender: replica1)
        #expect(cluster.deliver(.prePrepare(prePrepare), to: replica2) == .notFromPrimary(replica1, primary: replica0))
    }

    @Test("A pre-prepare is accepted only if h < s <= h + L")
    func prePrepareOutsideWatermarksRejected() throws {
        var cluster = try TestCluster()  // L = 8
        for sequence: UInt64 in [0, 9, 1000] {
            let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(sequence), requests: [TestCluster.request(1, 1)], sender: replica0)
            #expect(cluster.deliver(.prePrepare(prePrepare), to: replica1)
                == .outsideWatermarks(SequenceNumber(sequence), low: .zero, high: SequenceNumber(8)))
        }
        let inside = PrePrepare(view: View(0), sequence: SequenceNumber(8), requests: [TestCluster.request(1, 1)], sender: replica0)
        #expect(cluster.deliver(.prePrepare(inside), to: replica1) == nil)
    }

    @Test("A pre-prepare whose digest does not match its batch is rejected")
    func prePrepareDigestMismatchRejected() throws {
        var cluster = try TestCluster()
        let honest = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1)], sender: replica0)
        let forged = PrePrepare(view: View(0), sequence: SequenceNumber(1), digest: honest.digest,
                                requests: [TestCluster.request(1, 1, [9])], sender: replica0)
        #expect(cluster.deliver(.prePrepare(forged), to: replica1) == .batchDigestMismatch(SequenceNumber(1)))
    }

    @Test("An oversized batch is rejected; an empty one is a null batch (an idle primary fills for a recovering replica)")
    func invalidBatchSizeRejected() throws {
        var limits = Limits()
        limits.batchRequestsMax = 2
        var cluster = try TestCluster(limits: limits)
        let empty = PrePrepare(view: View(0), sequence: SequenceNumber(2), requests: [], sender: replica0)
        #expect(cluster.deliver(.prePrepare(empty), to: replica1) == nil)
        let large = PrePrepare(view: View(0), sequence: SequenceNumber(1),
                               requests: (1...3).map { TestCluster.request(UInt32($0), 1) }, sender: replica0)
        #expect(cluster.deliver(.prePrepare(large), to: replica1) == .invalidBatchSize(3))
    }

    @Test("A backup has not accepted a different pre-prepare for (v, s): the second is equivocation")
    func equivocatingPrePrepareRejected() throws {
        var cluster = try TestCluster()
        let first = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1)], sender: replica0)
        let second = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(2, 1)], sender: replica0)
        #expect(cluster.deliver(.prePrepare(first), to: replica1) == nil)
        #expect(cluster.deliver(.prePrepare(first), to: replica1) == .duplicate)
        #expect(cluster.deliver(.prePrepare(second), to: replica1) == .equivocation(replica0, SequenceNumber(1)))
        let prepares = cluster.network.filter { if case .prepare = $0.message { return true } else { return false } }
        #expect(prepares.count == 3, "replica 1 prepared only the first pre-prepare")
    }

    @Test("An equivocating primary cannot make correct backups commit different batches at one sequence number")
    func equivocatingPrimaryCannotSplitBackups() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica0]  // the Byzantine primary speaks only through what we inject
        let a = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1, [0xA])], sender: replica0)
        let b = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(2, 1, [0xB])], sender: replica0)
        cluster.deliver(.prePrepare(a), to: replica1)
        cluster.deliver(.prePrepare(b), to: replica2)
        cluster.deliver(.prePrepare(b), to: replica3)
        // The primary sends each side a commit for "its" batch; commits alone prepare nothing.
        cluster.deliver(.commit(Commit(view: View(0), sequence: SequenceNumber(1), digest: a.digest, sender: replica0)), to: replica1)
        for replica in [replica2, replica3] {
            cluster.deliver(.commit(Commit(view: View(0), sequence: SequenceNumber(1), digest: b.digest, sender: replica0)), to: replica)
        }
        cluster.run()
        let executed = [replica1, replica2, replica3].map { cluster.executedRequests($0).map(\.operation) }
        // b has 2 prepares (replicas 2, 3): exactly 2f, so b prepares at 2 and 3; a cannot (1 prepare).
        #expect(executed[0] == [])
        #expect(executed[1] == [[0xB]])
        #expect(executed[2] == [[0xB]])
        #expect(cluster.replicas[1].log[SequenceNumber(1)]?.isPrepared == false)
    }

    @Test("Prepared needs 2f matching prepares from distinct backups; a repeated prepare counts once")
    func preparedNeedsDistinctBackups() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica0, replica1, replica2, replica3]  // observe the primary in isolation
        cluster.submit(TestCluster.request(1, 1), to: replica0)
        let digest = try #require(cluster.replicas[0].log[SequenceNumber(1)]?.prePrepare?.message.digest)
        let prepare = Prepare(view: View(0), sequence: SequenceNumber(1), digest: digest, sender: replica2)
        #expect(cluster.deliver(.prepare(prepare), to: replica0) == nil)
        #expect(cluster.deliver(.prepare(prepare), to: replica0) == .duplicate)
        #expect(cluster.replicas[0].log[SequenceNumber(1)]?.isPrepared == false, "one backup, even twice, is not 2f")
        // A prepare with another digest does not count, and the sender cannot take it back.
        let wrong = Prepare(view: View(0), sequence: SequenceNumber(1), digest: Digest.of([1, 2, 3]), sender: replica3)
        cluster.deliver(.prepare(wrong), to: replica0)
        #expect(cluster.replicas[0].log[SequenceNumber(1)]?.isPrepared == false)
        #expect(cluster.deliver(.prepare(Prepare(view: View(0), sequence: SequenceNumber(1), digest: digest, sender: replica3)), to: replica0)
            == .equivocation(replica3, SequenceNumber(1)))
        cluster.deliver(.prepare(Prepare(view: View(0), sequence: SequenceNumber(1), digest: digest, sender: replica1)), to: replica0)
        #expect(cluster.replicas[0].log[SequenceNumber(1)]?.isPrepared == true, "replicas 1 and 2 are 2f distinct backups")
    }

    @Test("The primary does not send prepares: a PREPARE from the primary is rejected")
    func prepareFromPrimaryRejected() throws {
        var cluster = try TestCluster()
        let prepare = Prepare(view: View(0), sequence: SequenceNumber(1), digest: .zero, sender: replica0)
        #expect(cluster.deliver(.prepare(prepare), to: replica1) == .prepareFromPrimary(replica0))
    }

    @Test("Messages naming this replica or an unknown replica as sender are rejected")
    func forgedSendersRejected() throws {
        var cluster = try TestCluster()
        let own = Prepare(view: View(0), sequence: SequenceNumber(1), digest: .zero, sender: replica1)
        #expect(cluster.deliver(.prepare(own), to: replica1) == .fromSelf)
        let unknown = Prepare(view: View(0), sequence: SequenceNumber(1), digest: .zero, sender: ReplicaID(7))
        #expect(cluster.deliver(.prepare(unknown), to: replica1) == .unknownReplica(ReplicaID(7)))
    }

    @Test("Committed-local needs 2f+1 matching commits, own included; then the batch executes")
    func committedNeedsQuorumOfCommits() throws {
        var cluster = try TestCluster()
        let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1)], sender: replica0)
        cluster.deliver(.prePrepare(prePrepare), to: replica1)
        for sender in [replica2, replica3] {
            cluster.deliver(.prepare(Prepare(view: View(0), sequence: SequenceNumber(1), digest: prePrepare.digest, sender: sender)), to: replica1)
        }
        #expect(cluster.replicas[1].log[SequenceNumber(1)]?.isPrepared == true)
        cluster.deliver(.commit(Commit(view: View(0), sequence: SequenceNumber(1), digest: prePrepare.digest, sender: replica2)), to: replica1)
        #expect(cluster.executedSequences(replica1) == [], "2 commits (own + 1) are fewer than 2f+1")
        cluster.deliver(.commit(Commit(view: View(0), sequence: SequenceNumber(1), digest: prePrepare.digest, sender: replica3)), to: replica1)
        #expect(cluster.executedSequences(replica1) == [1])
    }

    @Test("Batches execute strictly in sequence order, even when a later one commits first")
    func executionInSequenceOrder() throws {
        var cluster = try TestCluster()
        // Hold back everything about sequence 1 until sequence 2 has committed.
        cluster.submit(TestCluster.request(1, 1, [1]), to: replica0)
        let heldBack = cluster.network
        cluster.network = []
        cluster.submit(TestCluster.request(2, 1, [2]), to: replica0)
        cluster.run()
        #expect(cluster.executedSequences(replica1) == [], "sequence 2 waits for sequence 1")
        cluster.network = heldBack
        cluster.run()
        for replica in cluster.replicas {
            #expect(cluster.executedSequences(replica.id) == [1, 2])
            #expect(cluster.executedRequests(replica.id).map(\.operation) == [[1], [2]])
        }
    }

    @Test("A retransmitted request gets the cached reply; an older timestamp is ignored")
    func replyCacheAndStaleTimestamps() throws {
        var cluster = try TestCluster()
        cluster.submit(TestCluster.request(1, 5), to: replica0)
        cluster.run()
        cluster.replies = []
        cluster.submit(TestCluster.request(1, 5), to: replica2)
        #expect(cluster.replies.count == 1 && cluster.replies[0].replica == replica2)
        #expect(cluster.network.isEmpty, "the cached reply needs no new agreement")
        cluster.submit(TestCluster.request(1, 4), to: replica2)
        #expect(cluster.rejections.last?.1 == .staleTimestamp(ClientID(1), Timestamp(4), lastExecuted: Timestamp(5)))
        #expect(cluster.executedRequests(replica2).count == 1)
    }

    @Test("A request proposed in two batches executes exactly once")
    func duplicateRequestExecutesOnce() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica0]
        let request = TestCluster.request(1, 1, [7])
        for sequence: UInt64 in [1, 2] {
            let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(sequence), requests: [request], sender: replica0)
            for replica in [replica1, replica2, replica3] { cluster.deliver(.prePrepare(prePrepare), to: replica) }
        }
        cluster.run()
        for replica in [replica1, replica2, replica3] {
            #expect(cluster.executedSequences(replica) == [1, 2])
            #expect(cluster.executedRequests(replica).map(\.operation) == [[7]])
        }
    }

    @Test("The primary keeps at most pipelineDepthMax batches in flight, pipelines only full batches; batches grow under load")
    func adaptiveBatching() throws {
        var limits = Limits()
        limits.pipelineDepthMax = 2
        limits.batchRequestsMax = 10
        var cluster = try TestCluster(settings: ProtocolSettings(checkpointInterval: 100, watermarkWindow: 200), limits: limits)
        for client in 1...30 {
            cluster.submit(TestCluster.request(UInt32(client), 1), to: replica0)
        }
        let proposed = cluster.events.compactMap { event -> Int? in
            if case .batchProposed(_, let count) = event.1, event.0 == replica0 { return count } else { return nil }
        }
        #expect(proposed == [1, 10], "the first request goes out alone; a second batch is pipelined only once full; the rest waits")
        cluster.run()
        let all = cluster.events.compactMap { event -> Int? in
            if case .batchProposed(_, let count) = event.1, event.0 == replica0 { return count } else { return nil }
        }
        #expect(all.reduce(0, +) == 30)
        #expect(all.max() == 10, "once the pipeline was full, requests queued up and went out in full batches")
        #expect(cluster.executedRequests(replica3).count == 30)
    }
}
