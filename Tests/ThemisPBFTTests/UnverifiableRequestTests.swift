// A backup that cannot authenticate a request in a PRE-PREPARE (a faulty client's MAC vector valid for
// some replicas only, or a faulty primary that made the request up) must neither vouch for it nor drop
// out: it logs the batch and prepares it once f other backups have (with the primary, f+1 replicas, so at
// least one correct replica authenticated the request).
import Testing
import ThemisCore
import ThemisPBFTTesting
@testable import ThemisPBFT

@Suite("PBFT: requests a backup cannot authenticate")
struct UnverifiableRequestTests {
    @Test("A backup that cannot authenticate a request prepares it once f other backups have; it executes everywhere")
    func preparesOnceVouchedFor() throws {
        var cluster = try TestCluster()
        cluster.requestsUnverifiableAt = [replica3]
        cluster.submit(TestCluster.request(1, 1, [42]), to: replica0)
        cluster.run()
        for replica in cluster.replicas {
            #expect(cluster.executedRequests(replica.id).map(\.operation) == [[42]])
        }
        let events = cluster.events.filter { $0.0 == replica3 }.map(\.1)
        #expect(events.contains(.awaitingVouchers(SequenceNumber(1))))
        #expect(events.contains(.vouchedFor(SequenceNumber(1))))
        #expect(cluster.replicas[3].log[SequenceNumber(1)]?.prepares[replica3] != nil, "it prepared after being vouched for")
    }

    @Test("With f replicas silent, the replica that cannot authenticate the request is still needed and takes part")
    func livenessWithFaultySilentReplica() throws {
        // Before: replica 3 rejected the PRE-PREPARE; with replica 2 silent, 0 and 1 had no quorum.
        var cluster = try TestCluster()
        cluster.silenced = [replica2]
        cluster.requestsUnverifiableAt = [replica3]
        cluster.submit(TestCluster.request(1, 1, [7]), to: replica0)
        cluster.run()
        for replica in [replica0, replica1, replica3] {
            #expect(cluster.executedSequences(replica) == [1], "replica \(replica.rawValue)")
        }
    }

    @Test("No backup prepares a request that no backup could authenticate (a primary that made it up)")
    func noVouchersNoPrepare() throws {
        var cluster = try TestCluster()
        cluster.requestsUnverifiableAt = [replica1, replica2, replica3]
        cluster.submit(TestCluster.request(1, 1), to: replica0)
        cluster.run()
        for replica in cluster.replicas {
            #expect(cluster.executedSequences(replica.id).isEmpty)
            #expect(cluster.replicas[Int(replica.id.rawValue)].log[SequenceNumber(1)]?.isPrepared != true)
        }
        #expect(!cluster.network.contains { if case .prepare = $0.message { true } else { false } })
        for replica in [replica1, replica2, replica3] {
            #expect(cluster.replicas[Int(replica.rawValue)].log[SequenceNumber(1)]?.prepares.isEmpty == true)
        }
    }

    @Test("It takes f other backups: with f = 2, one PREPARE (possibly from a faulty backup) is not enough")
    func thresholdIsFOtherBackups() throws {
        var cluster = try TestCluster(replicaCount: 7)
        cluster.requestsUnverifiableAt = Set((1...6).map { ReplicaID(UInt32($0)) })
        let request = TestCluster.request(1, 1)
        let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [request], sender: replica0)
        #expect(cluster.deliver(.prePrepare(prePrepare), to: replica3) == nil)
        cluster.network.removeAll()
        let prepare = { (sender: ReplicaID) in
            PBFTMessage.prepare(Prepare(view: View(0), sequence: SequenceNumber(1), digest: prePrepare.digest, sender: sender))
        }
        cluster.deliver(prepare(replica1), to: replica3)
        #expect(cluster.network.isEmpty, "one voucher with f = 2: no PREPARE yet")
        // A PREPARE for another digest does not vouch.
        cluster.deliver(.prepare(Prepare(view: View(0), sequence: SequenceNumber(1), digest: Digest.zero, sender: replica2)), to: replica3)
        #expect(cluster.network.isEmpty)
        cluster.deliver(prepare(replica4), to: replica3)
        #expect(cluster.network.contains { $0.from == replica3 && $0.message == prepare(replica3) }, "f = 2 vouchers: it prepares")
    }

    @Test("A PRE-PREPARE for a later view keeps its unverified mark while it waits to be replayed")
    func bufferedPrePrepareKeepsMark() throws {
        var cluster = try TestCluster()
        cluster.requestsUnverifiableAt = [replica2]
        let prePrepare = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1)], sender: replica1)
        #expect(cluster.deliver(.prePrepare(prePrepare), to: replica2) == nil)
        #expect(cluster.replicas[2].viewChange.future.map(\.requestsUnverified) == [true])
    }
}

private let replica4 = ReplicaID(4)
