// Proves Hybster's core rules on a loss-free cluster of pure cores: f + 1 votes commit (n = 3 runs with a
// replica down), a PREPARE whose certificate is not the primary's for (view, order) is refused, a silent
// primary is replaced through REQ-VIEW-CHANGE, VIEW-CHANGE and NEW-VIEW with every committed batch kept,
// a VIEW-CHANGE that leaves out a certified PREPARE is refused, a restarted replica (counters ahead of its
// state) stays silent until a NEW-VIEW brings it into a later view, and pillars interleave in order.
import Crypto
import Testing
import ThemisCore
import ThemisCrypto
@testable import ThemisHybster

@Suite("Hybster core")
struct HybsterCoreTests {
    @Test("Tentative execution is a PBFT setting: Hybster refuses a cluster file that turns it on")
    func refusesTentativeExecution() {
        var settings = ProtocolSettings()
        #expect(Hybster.settingsProblem(settings) == nil)
        settings.tentativeExecution = true
        #expect(Hybster.settingsProblem(settings)?.contains("tentative execution") == true)
    }

    @Test("Normal case: the primary's PREPARE and one backup's COMMIT (f + 1 = 2) commit a batch; every live replica executes it")
    func normalCaseWithOneReplicaDown() throws {
        let cluster = try MiniHybster()
        cluster.down = [2]
        cluster.submit(MiniHybster.request(1, 1, "put a 1"), to: [0, 1])
        cluster.deliverAll()
        #expect(cluster.executed[0][SequenceNumber(1)]?.count == 1)
        #expect(cluster.executed[1][SequenceNumber(1)] == cluster.executed[0][SequenceNumber(1)])
        #expect(cluster.replies[0].count == 1 && cluster.replies[1].count == 1)
    }

    @Test("Checkpoints every K: f + 1 matching trusted-MAC'd CHECKPOINTs make one stable and truncate the log")
    func checkpointsBecomeStable() throws {
        let cluster = try MiniHybster()
        for timestamp in UInt64(1)...9 {
            cluster.submit(MiniHybster.request(1, timestamp, "op \(timestamp)"), to: [0, 1, 2])
            cluster.deliverAll()
        }
        for node in cluster.nodes {
            #expect(node.lastExecuted == SequenceNumber(9))
            #expect(node.stableCheckpoint == SequenceNumber(8))
            #expect(node.log.keys.allSatisfy { $0 > SequenceNumber(8) })
        }
        #expect(cluster.staged.allSatisfy { $0.isEmpty }, "in-memory mode stages nothing")
    }

    @Test("A PREPARE certified for another order number, or by a backup, is refused")
    func prepareCertificateMustMatch() throws {
        let cluster = try MiniHybster()
        var primary = try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: ReplicaID(0), pillar: 0), key: cluster.key, store: cluster.stores[0][0])
        let requests = [MiniHybster.request(1, 1, "x")]
        let digest = Request.batchDigest(requests)
        let certified = HybsterDigests.prepare(view: View(0), order: SequenceNumber(1), digest: digest, sender: ReplicaID(0))
        let wrongValue = try primary.certifyIndependent(certified, counter: 0, value: CounterValue(view: 0, order: 2))
        let header = PrepareHeader(view: View(0), order: SequenceNumber(1), digest: digest, sender: ReplicaID(0), certificate: wrongValue)
        cluster.deliver(1, .prepare(HybsterPrepare(header: header, requests: requests)))
        guard case .certificateMismatch? = cluster.rejections[1].last else {
            Issue.record("expected a certificate mismatch, got \(cluster.rejections[1])")
            return
        }
        #expect(cluster.nodes[1].log.isEmpty)
    }

    @Test("A silent primary is replaced: REQ-VIEW-CHANGE from f + 1, VIEW-CHANGEs, NEW-VIEW from replica 1; committed batches survive")
    func viewChangeKeepsCommittedBatches() throws {
        let cluster = try MiniHybster()
        cluster.submit(MiniHybster.request(1, 1, "first"), to: [0, 1, 2])
        cluster.deliverAll()
        #expect(cluster.nodes.allSatisfy { $0.lastExecuted == SequenceNumber(1) })
        cluster.down = [0]
        cluster.submit(MiniHybster.request(1, 2, "second"), to: [1, 2])
        cluster.tick(80)
        for index in [1, 2] {
            #expect(cluster.nodes[index].view == View(1), "\(cluster.nodes[index].debugDescription)")
            #expect(cluster.executed[index][SequenceNumber(1)]?.first?.operation == Array("first".utf8))
            #expect(cluster.executed[index].values.contains { $0.first?.operation == Array("second".utf8) })
        }
        #expect(cluster.events[1].contains(.newViewSent(View(1))))
    }

    @Test("A VIEW-CHANGE that leaves out a PREPARE its sender certified a COMMIT for is refused (the chain's first link proves it)")
    func incompleteViewChangeIsRefused() throws {
        let cluster = try MiniHybster()
        cluster.submit(MiniHybster.request(1, 1, "first"), to: [0, 1, 2])
        cluster.deliverAll()
        // Replica 2 committed order 1 in view 0 (its counter is at (0, 1)); it claims an empty history.
        var subsystem = try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: ReplicaID(2), pillar: 0), key: cluster.key, store: cluster.stores[2][0])
        let content = HybsterViewChange(sender: ReplicaID(2), fromView: View(0), toView: View(1), checkpoint: .zero,
                                        checkpointDigest: cluster.nodes[2].checkpoints.stableDigest, checkpointProof: [], entries: [], chains: [[]])
        let link = try subsystem.certifyContinuing(content.certifiedDigest, counter: 0, value: CounterValue(view: 1, order: 0))
        #expect(link.previous == CounterValue(view: 0, order: 1))
        let lying = HybsterViewChange(sender: ReplicaID(2), fromView: View(0), toView: View(1), checkpoint: .zero,
                                      checkpointDigest: content.checkpointDigest, checkpointProof: [], entries: [], chains: [[link]])
        #expect(throws: HybsterRejection.invalidViewChange("pillar 0: order 1 certified but not listed")) {
            try cluster.nodes[1].validate(lying)
        }
    }

    @Test("A replica restarted empty keeps its counters: it certifies nothing until a NEW-VIEW of a later view, then takes part again")
    func restartedReplicaRecovers() throws {
        let cluster = try MiniHybster()
        cluster.submit(MiniHybster.request(1, 1, "first"), to: [0, 1, 2])
        cluster.deliverAll()
        try cluster.restart(2)
        #expect(cluster.nodes[2].recoveringBelow == View(0))
        for timestamp in UInt64(2)...3 {
            cluster.submit(MiniHybster.request(1, timestamp, "op \(timestamp)"), to: [0, 1, 2])
            cluster.deliverAll()
        }
        // Passive: it fetches order 1 (which it missed), executes what the others commit, and certifies nothing.
        cluster.tick(10)
        #expect(cluster.nodes[2].log.values.allSatisfy { $0.ownCommit == nil && $0.commits[ReplicaID(2)] == nil })
        #expect(cluster.nodes[0].lastExecuted == SequenceNumber(3) && cluster.nodes[1].lastExecuted == SequenceNumber(3))
        #expect(cluster.nodes[2].lastExecuted == SequenceNumber(3))
        // It cannot help change views (its VIEW-CHANGE could not prove its history): replicas 0 and 1 move to
        // view 1, and replica 2 follows their NEW-VIEW and takes part again.
        for index in [0, 1] {
            var actions: [HybsterAction] = []
            cluster.nodes[index].requestViewChange(to: View(1), into: &actions)
            cluster.perform(index, actions)
        }
        cluster.tick(80)
        #expect(cluster.nodes[2].recoveringBelow == nil, "\(cluster.nodes.map(\.debugDescription))")
        #expect(cluster.nodes[2].view == View(1))
        #expect(cluster.nodes.allSatisfy { $0.lastExecuted >= SequenceNumber(3) }, "\(cluster.nodes.map(\.debugDescription))")
    }

    @Test("Durable mode: every replica restarts from its log, its counters ahead of it (certified in a step a crash cut short) and resumed at it; the cluster goes on in its view, executes the committed batches again, and changes views with valid VIEW-CHANGEs", arguments: [UInt32(1), 2])
    func restartFromTheLog(pillars: UInt32) throws {
        let cluster = try MiniHybster(pillars: pillars, durable: true)
        for timestamp in UInt64(1)...6 {
            cluster.submit(MiniHybster.request(1, timestamp, "op \(timestamp)"), to: [0, 1, 2])
            cluster.deliverAll()
        }
        #expect(cluster.nodes.allSatisfy { $0.lastExecuted == SequenceNumber(6) && $0.stableCheckpoint == SequenceNumber(4) })
        #expect(cluster.staged.allSatisfy { $0 == [SequenceNumber(4)] }, "checkpoint 4 staged when taken")
        let before = cluster.nodes.map { node in (0..<Int(pillars)).map { node.subsystems[$0].value(of: 0) } }
        for stores in cluster.stores {
            for store in stores {
                let value = try #require(try store.load()[0])
                try store.persist(counter: 0, value: CounterValue(view: value.view, order: value.order + 3))
            }
        }
        for index in 0..<3 { try cluster.restartFromDisk(index) }
        for (index, node) in cluster.nodes.enumerated() {
            #expect(node.persistsRecords && node.view == View(0) && node.participates, "\(node.debugDescription)")
            #expect((0..<Int(pillars)).map { node.subsystems[$0].value(of: 0) } == before[index], "counters resumed at the log")
            // The snapshot of checkpoint 4, then batches 5 and 6 again.
            #expect(node.lastExecuted == SequenceNumber(6), "\(node.debugDescription)")
            #expect(cluster.executed[index].keys.sorted() == [SequenceNumber(5), SequenceNumber(6)])
            #expect(cluster.events[index].contains { if case .restored = $0 { return true }; return false })
        }
        cluster.submit(MiniHybster.request(1, 7, "op 7"), to: [0, 1, 2])
        cluster.deliverAll()
        #expect(cluster.nodes.allSatisfy { $0.lastExecuted == SequenceNumber(7) })
        // The primary goes silent: the backups' VIEW-CHANGEs (chains from their resumed counters) must be valid.
        cluster.down = [0]
        cluster.submit(MiniHybster.request(1, 8, "op 8"), to: [1, 2])
        cluster.tick(80)
        for index in [1, 2] {
            #expect(cluster.nodes[index].view == View(1), "\(cluster.nodes[index].debugDescription)")
            #expect(cluster.executed[index].values.contains { $0.first?.operation == Array("op 8".utf8) })
        }
        #expect(!cluster.rejections[1].contains { if case .invalidViewChange = $0 { return true }; return false }, "\(cluster.rejections[1])")
        // Restarted again from the logs of the new view: the view, its NEW-VIEW and the acknowledgement come back.
        cluster.down = []
        for index in [1, 2] { try cluster.restartFromDisk(index) }
        #expect(cluster.nodes[1].view == View(1) && cluster.nodes[2].view == View(1))
        #expect(cluster.nodes[2].viewChange.newView?.view == View(1))
        cluster.submit(MiniHybster.request(1, 9, "op 9"), to: [1, 2])
        cluster.deliverAll()
        #expect(cluster.executed[2].values.contains { $0.first?.operation == Array("op 9".utf8) }, "\(cluster.nodes[2].debugDescription)")
    }

    @Test("Durable mode: a replica whose log is empty but whose counters went somewhere (a lost data directory) stays silent until a view above them")
    func lostDataDirectory() throws {
        let cluster = try MiniHybster(durable: true)
        cluster.submit(MiniHybster.request(1, 1, "first"), to: [0, 1, 2])
        cluster.deliverAll()
        cluster.disks[2] = ([], nil)
        try cluster.restartFromDisk(2)
        #expect(!cluster.nodes[2].participates)
        #expect(cluster.events[2].contains(.recovering(View(0))))
        // While recovering it accepts the others' PREPAREs but logs nothing: a log of them would let the next
        // restart resume its counters below what it sent before (and take part again).
        cluster.submit(MiniHybster.request(1, 2, "second"), to: [0, 1, 2])
        cluster.deliverAll()
        cluster.tick(12)
        #expect(cluster.disks[2].records.isEmpty, "\(cluster.disks[2].records)")
        try cluster.restartFromDisk(2)
        #expect(!cluster.nodes[2].participates)
    }

    @Test("Durable mode: a crash that tears the new segment restating everything at a stable checkpoint (the old segment read first, then the restatement's first records) leaves the view's state as the old records rebuilt it")
    func tornRestatement() throws {
        let cluster = try MiniHybster(durable: true)
        for timestamp in UInt64(1)...2 {
            cluster.submit(MiniHybster.request(1, timestamp, "op \(timestamp)"), to: [0, 1, 2])
            cluster.deliverAll()
        }
        // View 1 (replica 0 silent); its batches take the cluster past checkpoint 4, which the two live replicas
        // make stable: each saves its state and restates everything above it in a new segment.
        cluster.down = [0]
        cluster.submit(MiniHybster.request(1, 3, "op 3"), to: [1, 2])
        cluster.tick(80)
        cluster.submit(MiniHybster.request(1, 4, "op 4"), to: [1, 2])
        cluster.deliverAll()
        let node = cluster.nodes[2]
        #expect(node.view == View(1) && node.stableCheckpoint == SequenceNumber(4), "\(node.debugDescription)")
        let restatement = cluster.disks[2].records
        let entered = try #require(restatement.firstIndex { if case .enteredView = $0 { return true }; return false })
        #expect(!cluster.retired[2].isEmpty)
        // The crash, during the sync of the restatement (nothing sent after it has left): the old segment is whole,
        // the new one holds the restatement up to its enteredView.
        cluster.disks[2].records = cluster.retired[2] + restatement[...entered]
        try cluster.restartFromDisk(2)
        let restored = cluster.nodes[2]
        #expect(restored.view == View(1) && restored.participates, "\(restored.debugDescription)")
        #expect(restored.viewChange.ownAck != nil, "its NEW-VIEW-ACK (in the old segment) is still known")
        #expect(restored.certified == node.certified, "what it certified in view 1 is still known")
        #expect(restored.certified != [SequenceNumber.zero])
        cluster.submit(MiniHybster.request(1, 5, "op 5"), to: [1, 2])
        cluster.deliverAll()
        #expect(cluster.executed[2].values.contains { $0.first?.operation == Array("op 5".utf8) }, "\(cluster.nodes[2].debugDescription)")
    }

    @Test("Pillars: P = 2 orders on two counters, execution interleaves them in order-number order")
    func pillarsInterleave() throws {
        let cluster = try MiniHybster(pillars: 2)
        for timestamp in UInt64(1)...6 {
            cluster.submit(MiniHybster.request(UInt32(timestamp), 1, "op \(timestamp)"), to: [0, 1, 2])
        }
        cluster.deliverAll()
        for index in 0..<3 {
            #expect(cluster.nodes[index].lastExecuted == SequenceNumber(6))
            #expect(cluster.nodes[index].certified.map(\.rawValue).sorted() == (index == 0 ? [5, 6] : [5, 6]))
        }
        let values = try (0..<2).map { pillar in
            try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: ReplicaID(1), pillar: UInt32(pillar)), key: cluster.key,
                                       store: cluster.stores[1][pillar]).value(of: 0)
        }
        #expect(values == [CounterValue(view: 0, order: 6), CounterValue(view: 0, order: 5)])
    }
}
