// Proves PBFT's checkpoint rules (section 4.3): a checkpoint every K sequence numbers becomes stable with
// 2f+1 matching digests, advances the low watermark and truncates the log; a lying replica cannot make
// a wrong digest stable. Uses the in-memory TestCluster with K = 4, L = 8.
import Testing
import ThemisCore
import ThemisPBFTTesting
@testable import ThemisPBFT

@Suite("PBFT checkpoints")
struct CheckpointTests {
    @Test("A checkpoint with 2f+1 matching digests becomes stable, advances h and truncates the log")
    func checkpointBecomesStable() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...4 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        for replica in cluster.replicas {
            #expect(replica.lowWatermark == SequenceNumber(4))
            #expect(replica.log.isEmpty)
            #expect(replica.stableCheckpointDigest != nil)
        }
        #expect(Set(cluster.replicas.map(\.stableCheckpointDigest)).count == 1)
    }

    @Test("Ordering continues past the first window once checkpoints become stable")
    func orderingContinuesAcrossWindows() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...30 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        for replica in cluster.replicas {
            #expect(cluster.executedSequences(replica.id) == Array(1...30))
            #expect(replica.lowWatermark == SequenceNumber(28))
        }
    }

    @Test("The primary stops at the high watermark until a checkpoint is stable")
    func primaryWaitsAtHighWatermark() throws {
        var cluster = try TestCluster()
        // Checkpoint messages are lost: nothing becomes stable.
        cluster.drop = { envelope in if case .checkpoint = envelope.message { return true } else { return false } }
        for timestamp: UInt64 in 1...12 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        #expect(cluster.replicas[0].lastProposed == SequenceNumber(8), "L = 8 bounds the primary")
        #expect(cluster.executedSequences(replica1) == Array(1...8))
    }

    @Test("A checkpoint for a sequence number that is not a multiple of K is rejected")
    func checkpointSequenceMustBeMultipleOfInterval() throws {
        var cluster = try TestCluster()
        let checkpoint = Checkpoint(sequence: SequenceNumber(3), stateDigest: .zero, sender: replica2)
        #expect(cluster.deliver(.checkpoint(checkpoint), to: replica1) == .notACheckpointSequence(SequenceNumber(3)))
    }

    @Test("A forged checkpoint digest from f replicas never becomes stable, and a second vote is equivocation")
    func forgedCheckpointNotStable() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica3]
        let forged = Checkpoint(sequence: SequenceNumber(4), stateDigest: Digest.of([6, 6, 6]), sender: replica3)
        for replica in [replica0, replica1, replica2] { cluster.deliver(.checkpoint(forged), to: replica) }
        #expect(cluster.deliver(.checkpoint(Checkpoint(sequence: SequenceNumber(4), stateDigest: .zero, sender: replica3)), to: replica1)
            == .equivocation(replica3, SequenceNumber(4)))
        for timestamp: UInt64 in 1...4 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        // Replicas 0-2 agree among themselves (3 = 2f+1 matching) and ignore replica 3's digest.
        for replica in cluster.replicas.prefix(3) {
            #expect(replica.lowWatermark == SequenceNumber(4))
            #expect(replica.stableCheckpointDigest != Digest.of([6, 6, 6]))
        }
    }

    @Test("Checkpoints at or below the stable one are rejected; beyond the window one per sender is kept as evidence")
    func staleAndFarCheckpointsRejected() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...4 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        #expect(cluster.deliver(.checkpoint(Checkpoint(sequence: SequenceNumber(4), stateDigest: .zero, sender: replica2)), to: replica1)
            == .staleCheckpoint(SequenceNumber(4)))
        #expect(cluster.deliver(.checkpoint(Checkpoint(sequence: SequenceNumber(400), stateDigest: .zero, sender: replica2)), to: replica1) == nil)
        #expect(cluster.deliver(.checkpoint(Checkpoint(sequence: SequenceNumber(200), stateDigest: .zero, sender: replica2)), to: replica1)
            == .staleCheckpoint(SequenceNumber(200)), "only the latest far checkpoint per sender is kept")
        #expect(cluster.replicas[1].stateTransfer.farVotes.count == 1)
        #expect(cluster.replicas[1].stateTransfer.fetch == nil, "one replica (f) is no evidence")
    }

    @Test("A stable proof short of a quorum is completed by the others' repeated CHECKPOINTs (seed 1862)")
    func shortStableProofIsCompleted() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...4 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        let digest = try #require(cluster.replicas[1].stableCheckpointDigest)
        let full = cluster.replicas[1].checkpoints.stableProof
        #expect(full.count >= 3)
        // As if adopted from a NEW-VIEW whose implied entries could not be forwarded: one entry short.
        let short = Array(full.filter { $0.message.sender != replica3 }.prefix(2))
        cluster.replicas[1].checkpoints.markStable(SequenceNumber(4), digest: digest, proof: short)
        var actions: [PBFTAction] = []
        cluster.replicas[1].startViewChange(to: View(1), into: &actions)
        let weak = try #require(cluster.replicas[1].viewChange.received[replica1]?.message)
        #expect(throws: Rejection.self) { try cluster.replicas[2].validate(weak) }

        // A wrong digest does not complete it; the matching repeat from replica 3 does, once.
        let wrong = Checkpoint(sequence: SequenceNumber(4), stateDigest: Digest.of([9]), sender: replica3)
        #expect(cluster.deliver(.checkpoint(wrong), to: replica1) == .staleCheckpoint(SequenceNumber(4)))
        let repeated = Checkpoint(sequence: SequenceNumber(4), stateDigest: digest, sender: replica3)
        // (A peer's message always carries its authenticator; one without could not be forwarded.)
        #expect(cluster.deliver(.checkpoint(repeated), to: replica1) == .staleCheckpoint(SequenceNumber(4)))
        #expect(cluster.deliver(.checkpoint(repeated), to: replica1, authenticator: fakeAuthenticator(replica3)) == nil)
        #expect(cluster.replicas[1].checkpoints.stableProof.count == 3)
        #expect(cluster.deliver(.checkpoint(repeated), to: replica1, authenticator: fakeAuthenticator(replica3)) == .staleCheckpoint(SequenceNumber(4)))

        actions = []
        cluster.replicas[1].startViewChange(to: View(2), into: &actions)
        let repaired = try #require(cluster.replicas[1].viewChange.received[replica1]?.message)
        try cluster.replicas[2].validate(repaired)
    }
}
