// The recovery protocol of a replica that lost its state (Recovery.swift): it asks a quorum how far the
// cluster got, takes no part in agreement until a checkpoint at or above its target is stable here, and an
// idle primary fills the window with null batches so that the target is reached. K = 4, L = 8.
import Testing
import ThemisCore
import ThemisPBFTTesting
@testable import ThemisPBFT

/// Records what one replica sends (the test cluster's `drop` hook sees every envelope).
private final class Outbox: @unchecked Sendable {
    var kinds: [String] = []
}

@Suite("PBFT recovery of a replica that lost its state")
struct RecoveryTests {
    @Test("First start: every replica begins recovering, every answer is blank, and one tick later all vote")
    func firstStart() throws {
        var cluster = try TestCluster()
        for replica in cluster.replicas.map(\.id) { cluster.restartRecovering(replica, nonce: 100 + UInt64(replica.rawValue)) }
        #expect(cluster.replicas.allSatisfy { $0.isRecovering })
        cluster.tick(1)
        #expect(cluster.replicas.allSatisfy { !$0.isRecovering })
        #expect(cluster.events.filter { $0.1 == .recoveryTargetKnown(target: .zero, fromBlankQuorum: true) }.count == 4)
        #expect(cluster.replicas.allSatisfy { !$0.recoveredByEstimate }, "the first-start rule is not the estimate")
        cluster.submit(TestCluster.request(1, 1, [1]), to: replica0)
        cluster.run()
        #expect(cluster.applicationState.allSatisfy { $0 == [1] })
    }

    @Test("A backup restarted empty after 10 batches votes on nothing until checkpoint 20 is stable; the idle primary fills with null batches; then it votes")
    func restartedBackupWaitsForItsTarget() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...10 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        #expect(cluster.replicas[0].lowWatermark == SequenceNumber(8))
        cluster.restartRecovering(replica3, nonce: 7)
        let outbox = Outbox()
        cluster.drop = { envelope in
            if envelope.from == replica3 { outbox.kinds.append(envelope.message.kindName) }
            return false
        }
        cluster.tick(1)
        // It voted within (8, 16] at most: executed 10 <= 8 + L, so the target is 10 + 8 = 18, rounded up to 20.
        #expect(cluster.replicas[3].recoveryTarget == SequenceNumber(20))
        #expect(cluster.replicas[3].isRecovering)
        // Nothing to order: the primary hears the target with the next query and proposes null batches.
        cluster.tick(30)
        #expect(cluster.replicas[0].lastProposed >= SequenceNumber(20))
        #expect(cluster.replicas.allSatisfy { $0.lowWatermark >= SequenceNumber(20) })
        #expect(!cluster.replicas[3].isRecovering)
        #expect(cluster.replicas[3].recoveredByEstimate)
        #expect(cluster.events.contains { $0.0 == replica3 && $0.1 == .recovered(cluster.replicas[3].lowWatermark) })
        let whileRecovering = outbox.kinds
        #expect(!whileRecovering.contains("prepare") && !whileRecovering.contains("commit") && !whileRecovering.contains("view-change"),
                "sent while recovering: \(Set(whileRecovering).sorted())")
        // The application state went through the null batches unchanged, and it is the same everywhere.
        #expect(cluster.applicationState.allSatisfy { $0 == Array(1...10) })
        // Recovered: it votes again.
        outbox.kinds = []
        cluster.submit(TestCluster.request(1, 11, [11]), to: replica0)
        cluster.run()
        #expect(outbox.kinds.contains("prepare") && outbox.kinds.contains("commit"))
        #expect(cluster.applicationState.allSatisfy { $0 == Array(1...11) })
    }

    @Test("Replies are checked: another incarnation's nonce, an unproven stable checkpoint, a reply when not recovering")
    func repliesAreChecked() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...10 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        cluster.restartRecovering(replica3, nonce: 7)
        let stale = RecoveryReply(nonce: 6, view: View(0), lastExecuted: .zero, stableCheckpoint: .zero,
                                  stableDigest: .zero, checkpointProof: [], sender: replica0)
        #expect(cluster.deliver(.recoveryReply(stale), to: replica3) == .unexpectedRecoveryReply)
        // Claims checkpoint 8 with its own CHECKPOINT only.
        let digest = try #require(cluster.replicas[0].stableCheckpointDigest)
        let short = RecoveryReply(nonce: 7, view: View(0), lastExecuted: SequenceNumber(10),
                                  stableCheckpoint: SequenceNumber(8), stableDigest: digest,
                                  checkpointProof: [Authenticated(Checkpoint(sequence: SequenceNumber(8), stateDigest: digest, sender: replica0), authenticator: [])],
                                  sender: replica0)
        guard case .invalidCertificate = cluster.deliver(.recoveryReply(short), to: replica3) else {
            Issue.record("an unproven stable checkpoint was accepted")
            return
        }
        #expect(cluster.deliver(.recoveryReply(stale), to: replica1) == .unexpectedRecoveryReply)
    }

    @Test("A faulty replica's blank answer does not pull the estimate below the restarted replica's old window (n = 7)")
    func blankLieIsOutvoted() throws {
        var cluster = try TestCluster(replicaCount: 7)
        for timestamp: UInt64 in 1...10 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        let faulty = ReplicaID(5)
        cluster.tamper = { envelope in
            guard envelope.from == faulty, case .recoveryReply(let reply) = envelope.message else { return envelope }
            var lie = envelope
            lie.message = .recoveryReply(RecoveryReply(nonce: reply.nonce, view: View(0), lastExecuted: .zero,
                                                       stableCheckpoint: .zero, stableDigest: .zero, checkpointProof: [], sender: faulty))
            return lie
        }
        cluster.restartRecovering(ReplicaID(6), nonce: 9)
        cluster.tick(1)
        #expect(cluster.replicas[6].recoveryTarget == SequenceNumber(20))
    }

    @Test("Durable mode: a replica whose data directory is lost recovers; a crash during the recovery starts it again; after it, a restart restores")
    func lostDataDirectory() throws {
        var cluster = try TestCluster()
        try cluster.makeDurable()
        for timestamp: UInt64 in 1...10 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        cluster.persisted[3] = []
        cluster.savedStates[3] = [:]
        cluster.replicas[3].recoveryNonce = 1
        try cluster.restartFromDisk(replica3)
        #expect(cluster.replicas[3].isRecovering)
        #expect(cluster.persisted[3] == [.recovering], "nothing but the mark while recovering")
        cluster.tick(1)
        #expect(cluster.replicas[3].recoveryTarget == SequenceNumber(20))
        // Crashes before it is over: it recovers again (its log says so), not as a replica that remembers.
        try cluster.restartFromDisk(replica3)
        #expect(cluster.replicas[3].isRecovering)
        cluster.tick(40)
        #expect(!cluster.replicas[3].isRecovering)
        #expect(cluster.persisted[3].last == .recovered)
        try cluster.restartFromDisk(replica3)
        #expect(!cluster.replicas[3].isRecovering)
        #expect(cluster.replicas[3].lowWatermark >= SequenceNumber(20))
        cluster.run()
        #expect(cluster.applicationState[3] == Array(1...10))
    }
}
