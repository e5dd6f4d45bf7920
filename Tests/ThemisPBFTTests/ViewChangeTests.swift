// Proves PBFT's view-change rules (section 4.4 and the mistakes PROTOCOLS.md lists) on pure cores with the
// in-memory TestCluster (n = 4, f = 1, K = 4, L = 8, request timeout 100 ticks): timers, VIEW-CHANGE
// contents, NEW-VIEW computation and checking, de-duplication, certificate checks, joining at f+1,
// exponential backoff, and that committed requests survive a view change exactly once.
import Testing
import ThemisCore
import ThemisPBFTTesting
@testable import ThemisPBFT

/// A valid prepared certificate for `sequence` in `view` over `requests`, prepared by backups `by`.
func certificate(view: UInt64, sequence: UInt64, requests: [Request], by backups: [UInt32], replicas: Int = 4) -> PreparedCertificate {
    let primary = ReplicaID(UInt32(view % UInt64(replicas)))
    let prePrepare = PrePrepare(view: View(view), sequence: SequenceNumber(sequence), requests: requests, sender: primary)
    let prepares = backups.map {
        Authenticated(Prepare(view: View(view), sequence: SequenceNumber(sequence), digest: prePrepare.digest, sender: ReplicaID($0)), authenticator: [])
    }
    return PreparedCertificate(prePrepare: Authenticated(prePrepare.header, authenticator: []), prepares: prepares)
}

func viewChange(to view: UInt64, from sender: UInt32, prepared: [PreparedCertificate] = [],
                stable: UInt64 = 0, stableDigest: Digest = .zero, proof: [Authenticated<Checkpoint>] = []) -> ViewChange {
    ViewChange(newView: View(view), stableCheckpoint: SequenceNumber(stable), stableDigest: stableDigest,
               checkpointProof: proof, prepared: prepared, sender: ReplicaID(sender))
}

func checkpointProof(_ sequence: UInt64, _ digest: Digest, by senders: [UInt32]) -> [Authenticated<Checkpoint>] {
    senders.map { Authenticated(Checkpoint(sequence: SequenceNumber(sequence), stateDigest: digest, sender: ReplicaID($0)), authenticator: []) }
}

@Suite("PBFT view change")
struct ViewChangeTests {
    @Test("A backup whose request timer expires sends VIEW-CHANGE and refuses normal-case messages of the old view")
    func timerExpiryStartsViewChange() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica0]
        cluster.submit(TestCluster.request(1, 1), to: replica1)  // relayed to the silent primary
        cluster.tick(99, replicas: [replica1])
        #expect(cluster.replicas[1].status == .normal)
        cluster.silenced = [replica0, replica1]  // keep its VIEW-CHANGE in the network queue for inspection
        cluster.tick(1, replicas: [replica1])
        #expect(cluster.replicas[1].status == .viewChanging(to: View(1)))
        #expect(cluster.events.contains { $0.0 == replica1 && $0.1 == .viewChangeStarted(View(1)) })
        let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1)], sender: replica0)
        #expect(cluster.deliver(.prePrepare(prePrepare), to: replica1) == .viewChanging(to: View(1)))
    }

    @Test("With the primary silent, the backups change view, the new primary sends NEW-VIEW and the request executes once")
    func silentPrimaryIsReplaced() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica0]
        cluster.broadcast(TestCluster.request(1, 1, [5]), to: [replica1, replica2, replica3])
        cluster.tick(250, replicas: [replica1, replica2, replica3])
        // The mute old primary still hears everything: it follows into view 1 as a backup.
        #expect(cluster.views() == [1, 1, 1, 1])
        #expect(cluster.events.contains { $0.0 == replica1 && $0.1 == .newViewSent(View(1)) })
        for replica in [replica1, replica2, replica3] {
            #expect(cluster.executedRequests(replica).map(\.operation) == [[5]])
        }
        #expect(Set(cluster.replies(for: 1, 1).map(\.replica)).isSuperset(of: [replica1, replica2, replica3]))
        #expect(cluster.replies(for: 1, 1).allSatisfy { $0.view == View(1) })
    }

    @Test("A batch committed at some replicas before the view change is re-proposed and executed once everywhere")
    func committedBatchSurvivesViewChange() throws {
        var cluster = try TestCluster()
        // Replica 3 never sees commits in view 0: it prepares but does not commit.
        cluster.drop = { envelope in
            if case .commit = envelope.message, envelope.to == replica3 { return true }
            return false
        }
        cluster.submit(TestCluster.request(1, 1, [7]), to: replica0)
        cluster.run()
        #expect(cluster.executedSequences(replica1) == [1])
        #expect(cluster.executedSequences(replica3) == [])
        // Now the primary falls silent while a second request waits.
        cluster.drop = { _ in false }
        cluster.silenced = [replica0]
        cluster.broadcast(TestCluster.request(2, 1, [8]), to: [replica1, replica2, replica3])
        cluster.tick(250, replicas: [replica1, replica2, replica3])
        #expect(cluster.views() == [1, 1, 1, 1])
        for replica in [replica0, replica1, replica2, replica3] {
            #expect(cluster.executedRequests(replica).map(\.operation) == [[7], [8]], "\(replica)")
        }
        #expect(cluster.executedSequences(replica1) == [1, 2])
        #expect(cluster.executedSequences(replica3) == [1, 2])
    }

    @Test("Certificates and O carry digests: a replica that never received a re-proposed batch votes on its digest, fetches it from one replica and executes it (issue 9, finding 1)")
    func reproposedBatchIsFetchedByDigest() throws {
        var cluster = try TestCluster()
        // Replica 3 never sees the PRE-PREPARE, and no COMMIT of view 0 arrives anywhere: the batch
        // prepares at 0, 1 and 2 and commits nowhere.
        cluster.drop = { envelope in
            switch envelope.message {
            case .prePrepare(let prePrepare): return envelope.to == replica3 && prePrepare.view == View(0)
            case .commit(let commit): return commit.view == View(0)
            default: return false
            }
        }
        let request = TestCluster.request(1, 1, [9])
        cluster.submit(request, to: replica0)
        cluster.run()
        #expect(cluster.replicas.allSatisfy { $0.lastExecuted == .zero })
        cluster.silenced = [replica0]
        cluster.tick(250, replicas: [replica1, replica2, replica3])
        #expect(cluster.views() == [1, 1, 1, 1])
        #expect(cluster.events.contains { $0.0 == replica3 && $0.1 == .batchMissing(SequenceNumber(1)) })
        #expect(cluster.events.contains { $0.0 == replica3 && $0.1 == .batchFetched(SequenceNumber(1)) })
        for replica in [replica1, replica2, replica3] {
            #expect(cluster.executedRequests(replica) == [request], "\(replica)")
            #expect(cluster.executedSequences(replica) == [1], "\(replica)")
        }
        #expect(cluster.unverifiable.isEmpty)
    }

    @Test("A batch fetched for a slot accepted by digest must match that digest; another batch is ignored")
    func fetchedBatchMustMatchTheDigest() throws {
        var cluster = try TestCluster()
        cluster.drop = { envelope in
            switch envelope.message {
            case .prePrepare(let prePrepare): return envelope.to == replica3 && prePrepare.view == View(0)
            case .commit(let commit): return commit.view == View(0)
            case .committedBatches: return envelope.to == replica3
            default: return false
            }
        }
        cluster.submit(TestCluster.request(1, 1, [9]), to: replica0)
        cluster.run()
        cluster.silenced = [replica0]
        cluster.tick(250, replicas: [replica1, replica2, replica3])
        #expect(cluster.replicas[3].view == View(1))
        #expect(cluster.executedSequences(replica3) == [], "no batch reached replica 3")
        // One faulty replica answers with another batch for sequence 1: not taken, nothing executes.
        let wrong = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1, [6])], sender: replica1)
        _ = cluster.deliver(.committedBatches(CommittedBatches(batches: [wrong], sender: replica2)), to: replica3)
        #expect(cluster.executedSequences(replica3) == [])
        // The right one, from a single replica, is enough.
        let right = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: [TestCluster.request(1, 1, [9])], sender: replica1)
        _ = cluster.deliver(.committedBatches(CommittedBatches(batches: [right], sender: replica1)), to: replica3)
        #expect(cluster.executedRequests(replica3).map(\.operation) == [[9]])
    }

    @Test("NEW-VIEW re-proposes, per sequence number, the batch prepared in the highest view, and fills gaps with null requests")
    func reproposalsTakeHighestView() throws {
        let old = [TestCluster.request(1, 1, [1])]
        let newer = [TestCluster.request(2, 1, [2])]
        let other = [TestCluster.request(3, 1, [3])]
        let changes = [
            viewChange(to: 3, from: 1, prepared: [certificate(view: 0, sequence: 1, requests: old, by: [1, 2])]),
            viewChange(to: 3, from: 2, prepared: [certificate(view: 2, sequence: 1, requests: newer, by: [0, 1]),
                                                  certificate(view: 1, sequence: 3, requests: other, by: [2, 3])]),
            viewChange(to: 3, from: 3),
        ]
        let (_, prePrepares) = PBFTReplica.reproposals(from: changes, view: View(3), primary: replica3)
        #expect(prePrepares.map(\.sequence.rawValue) == [1, 2, 3])
        #expect(prePrepares[0].digest == Request.batchDigest(newer), "view 2 beats view 0; taking the first proof found is the known bug")
        #expect(prePrepares[1].requestCount == 0 && prePrepares[1].digest == Request.batchDigest([]), "no certificate at 2: null request")
        #expect(prePrepares[2].digest == Request.batchDigest(other))
        #expect(prePrepares.allSatisfy { $0.view == View(3) && $0.sender == replica3 })
    }

    @Test("The re-proposals start above the latest stable checkpoint in V")
    func reproposalsStartAtLatestCheckpoint() throws {
        let digest = Digest.of([4])
        let changes = [
            viewChange(to: 1, from: 1, prepared: [certificate(view: 0, sequence: 3, requests: [TestCluster.request(1, 1)], by: [1, 2]),
                                                  certificate(view: 0, sequence: 5, requests: [TestCluster.request(1, 2)], by: [1, 2])]),
            viewChange(to: 1, from: 2, stable: 4, stableDigest: digest, proof: checkpointProof(4, digest, by: [0, 1, 2])),
            viewChange(to: 1, from: 3),
        ]
        let (stable, prePrepares) = PBFTReplica.reproposals(from: changes, view: View(1), primary: replica1)
        #expect(stable.stableCheckpoint == SequenceNumber(4))
        #expect(prePrepares.map(\.sequence.rawValue) == [5])
    }

    @Test("A NEW-VIEW that omits a prepared request is rejected")
    func newViewOmittingPreparedRequestRejected() throws {
        var cluster = try TestCluster()
        let prepared = certificate(view: 0, sequence: 1, requests: [TestCluster.request(1, 1)], by: [2, 3])
        let changes = [viewChange(to: 1, from: 1), viewChange(to: 1, from: 2, prepared: [prepared]), viewChange(to: 1, from: 3)]
        let forged = NewView(view: View(1), viewChanges: changes.map { Authenticated($0, authenticator: []) }, prePrepares: [], sender: replica1)
        guard case .newViewMismatch? = cluster.deliver(.newView(forged), to: replica2) else {
            Issue.record("the NEW-VIEW without the prepared batch was accepted")
            return
        }
        #expect(cluster.replicas[2].view == View(0))
        let (_, honest) = PBFTReplica.reproposals(from: changes, view: View(1), primary: replica1)
        let correct = NewView(view: View(1), viewChanges: changes.map { Authenticated($0, authenticator: []) }, prePrepares: honest.map { Authenticated($0, authenticator: []) }, sender: replica1)
        #expect(cluster.deliver(.newView(correct), to: replica2) == nil)
        #expect(cluster.replicas[2].view == View(1))
    }

    @Test("A NEW-VIEW needs a quorum of VIEW-CHANGEs from distinct senders, from the new primary")
    func newViewQuorumChecks() throws {
        var cluster = try TestCluster()
        let twice = [viewChange(to: 1, from: 2), viewChange(to: 1, from: 2), viewChange(to: 1, from: 3)]
        let duplicate = NewView(view: View(1), viewChanges: twice.map { Authenticated($0, authenticator: []) }, prePrepares: [], sender: replica1)
        guard case .invalidCertificate? = cluster.deliver(.newView(duplicate), to: replica2) else {
            Issue.record("a NEW-VIEW counting one sender twice was accepted")
            return
        }
        let few = NewView(view: View(1), viewChanges: [Authenticated(viewChange(to: 1, from: 2), authenticator: [])], prePrepares: [], sender: replica1)
        guard case .invalidCertificate? = cluster.deliver(.newView(few), to: replica2) else {
            Issue.record("a NEW-VIEW with one VIEW-CHANGE was accepted")
            return
        }
        let three = [viewChange(to: 1, from: 1), viewChange(to: 1, from: 2), viewChange(to: 1, from: 3)]
        let wrongSender = NewView(view: View(1), viewChanges: three.map { Authenticated($0, authenticator: []) }, prePrepares: [], sender: replica3)
        #expect(cluster.deliver(.newView(wrongSender), to: replica2) == .notFromPrimary(replica3, primary: replica1))
    }

    @Test("Duplicate VIEW-CHANGEs from one sender count once")
    func duplicateViewChangesCountOnce() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica1]
        let change = viewChange(to: 1, from: 2)
        #expect(cluster.deliver(.viewChange(change), to: replica1) == nil)
        #expect(cluster.deliver(.viewChange(change), to: replica1) == .duplicate)
        #expect(cluster.deliver(.viewChange(change), to: replica1) == .duplicate)
        #expect(cluster.replicas[1].status == .normal, "one sender is not f+1")
        #expect(!cluster.events.contains { $0.1 == .newViewSent(View(1)) })
        let other = viewChange(to: 1, from: 2, prepared: [certificate(view: 0, sequence: 1, requests: [TestCluster.request(1, 1)], by: [2, 3])])
        #expect(cluster.deliver(.viewChange(other), to: replica1) == .equivocation(replica2, SequenceNumber(1)))
    }

    @Test("A replica joins at f+1 VIEW-CHANGEs for later views (the smallest of them), not at f")
    func joinAtFPlusOne() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica0, replica1, replica2, replica3]
        #expect(cluster.deliver(.viewChange(viewChange(to: 3, from: 2)), to: replica0) == nil)
        #expect(cluster.replicas[0].status == .normal, "f = 1 VIEW-CHANGE does not move a replica")
        #expect(cluster.deliver(.viewChange(viewChange(to: 2, from: 3)), to: replica0) == nil)
        #expect(cluster.replicas[0].status == .viewChanging(to: View(2)), "f+1 = 2: join the smallest view, 2")
    }

    @Test("A forged checkpoint certificate in a VIEW-CHANGE is rejected")
    func forgedCheckpointProofRejected() throws {
        var cluster = try TestCluster()
        let digest = Digest.of([9])
        let tooFew = viewChange(to: 1, from: 2, stable: 4, stableDigest: digest, proof: checkpointProof(4, digest, by: [2, 3]))
        let repeated = viewChange(to: 1, from: 2, stable: 4, stableDigest: digest, proof: checkpointProof(4, digest, by: [2, 2, 3]))
        let mismatched = viewChange(to: 1, from: 2, stable: 4, stableDigest: digest,
                                    proof: checkpointProof(4, digest, by: [1, 2]) + checkpointProof(4, Digest.of([1]), by: [3]))
        let wrongSequence = viewChange(to: 1, from: 2, stable: 3, stableDigest: digest, proof: checkpointProof(3, digest, by: [1, 2, 3]))
        for forged in [tooFew, repeated, mismatched, wrongSequence] {
            guard case .invalidCertificate? = cluster.deliver(.viewChange(forged), to: replica1) else {
                Issue.record("forged checkpoint proof accepted: \(forged.checkpointProof.map(\.message))")
                continue
            }
        }
        let genuine = viewChange(to: 1, from: 2, stable: 4, stableDigest: digest, proof: checkpointProof(4, digest, by: [1, 2, 3]))
        #expect(cluster.deliver(.viewChange(genuine), to: replica1) == nil)
    }

    @Test("A prepared certificate needs 2f matching prepares from distinct backups and a pre-prepare from the primary")
    func forgedPreparedCertificatesRejected() throws {
        var cluster = try TestCluster()
        let batch = [TestCluster.request(1, 1)]
        let tooFew = certificate(view: 0, sequence: 1, requests: batch, by: [2])
        let fromPrimary = certificate(view: 0, sequence: 1, requests: batch, by: [0, 2])
        let repeated = certificate(view: 0, sequence: 1, requests: batch, by: [2, 2])
        let good = certificate(view: 0, sequence: 1, requests: batch, by: [2, 3])
        let otherDigest = Prepare(view: View(0), sequence: SequenceNumber(1), digest: Digest.of([0]), sender: replica3)
        let mismatched = PreparedCertificate(prePrepare: good.prePrepare,
                                             prepares: [good.prepares[0], Authenticated(otherDigest, authenticator: [])])
        let notPrimary = PreparedCertificate(
            prePrepare: Authenticated(PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: batch, sender: replica2).header,
                                      authenticator: []),
            prepares: good.prepares)
        let sameOrLaterView = certificate(view: 1, sequence: 1, requests: batch, by: [2, 3])
        // More than 2f PREPAREs would let a faulty replica inflate VIEW-CHANGEs beyond MessageBounds.
        let tooMany = certificate(view: 0, sequence: 1, requests: batch, by: [1, 2, 3])
        for forged in [tooFew, fromPrimary, repeated, mismatched, notPrimary, sameOrLaterView, tooMany] {
            guard case .invalidCertificate? = cluster.deliver(.viewChange(viewChange(to: 1, from: 2, prepared: [forged])), to: replica1) else {
                Issue.record("forged certificate accepted")
                continue
            }
        }
        #expect(cluster.deliver(.viewChange(viewChange(to: 1, from: 2, prepared: [good])), to: replica1) == nil)
    }

    @Test("A VIEW-CHANGE to a view at or below the current one is stale")
    func staleViewChangeRejected() throws {
        var cluster = try TestCluster()
        #expect(cluster.deliver(.viewChange(viewChange(to: 0, from: 2)), to: replica1) == .staleView(View(0), current: View(0)))
    }

    @Test("Two view changes in a row: proofs forwarded in VIEW-CHANGEs stay verifiable by third parties")
    func twoViewChangesInARow() throws {
        var cluster = try TestCluster()
        for timestamp: UInt64 in 1...6 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        // Primary 0 falls mute: view 1 (primary 1) takes over.
        cluster.silenced = [replica0]
        cluster.broadcast(TestCluster.request(2, 1, [20]), to: [replica1, replica2, replica3])
        cluster.tick(150, replicas: [replica1, replica2, replica3])
        #expect(cluster.views() == [1, 1, 1, 1])
        // Primary 1 falls mute too (0 speaks again): view 2 (primary 2) takes over.
        cluster.silenced = [replica1]
        cluster.broadcast(TestCluster.request(3, 1, [30]), to: [replica0, replica2, replica3])
        cluster.tick(400, replicas: [replica0, replica2, replica3])
        #expect(cluster.views() == [2, 2, 2, 2])
        let expected: [[UInt8]] = [[1], [2], [3], [4], [5], [6], [20], [30]]
        for replica in [replica0, replica2, replica3] {
            #expect(cluster.executedRequests(replica).map(\.operation) == expected, "\(replica)")
        }
        #expect(cluster.unverifiable == [], "every forwarded proof carries its sender's authenticator")
    }

    @Test("Each view change without progress doubles the timeout (exponential backoff)")
    func timeoutBackoff() throws {
        // n = 7: replica 6 leads none of views 1-4. Nobody hears anybody, but four others (a quorum with
        // replica 6) ask for every view replica 6 moves to, and no NEW-VIEW ever comes.
        var cluster = try TestCluster(replicaCount: 7)
        let me = ReplicaID(6)
        cluster.silenced = Set((0..<7).map { ReplicaID(UInt32($0)) })
        cluster.submit(TestCluster.request(1, 1), to: me)
        var starts: [(UInt64, View)] = []
        for _ in 0..<1500 {
            var actions: [PBFTAction] = []
            cluster.replicas[6].tick(into: &actions)
            for case .observe(.viewChangeStarted(let target)) in actions {
                starts.append((cluster.replicas[6].now, target))
                for other in ([0, 1, 2, 3, 4, 5] as [UInt32]).filter({ configurationPrimary(target, n: 7) != ReplicaID($0) }).prefix(4) {
                    let support = ViewChange(newView: target, stableCheckpoint: .zero, stableDigest: .zero, checkpointProof: [],
                                             prepared: [], sender: ReplicaID(other))
                    cluster.deliver(.viewChange(support), to: me, authenticator: fakeAuthenticator(ReplicaID(other)))
                }
            }
        }
        #expect(starts.map(\.1) == [View(1), View(2), View(3), View(4)])
        #expect(starts.map(\.0) == [100, 300, 700, 1500], "timeouts of 100, 200, 400 and 800 ticks")
    }

    @Test("A replica does not move past a view that fewer than 2f+1 replicas asked for (PBFT 4.5.2; seed 1566)")
    func noEscalationWithoutQuorum() throws {
        var cluster = try TestCluster()
        cluster.silenced = [replica0, replica1, replica2, replica3]  // nobody hears anybody
        cluster.submit(TestCluster.request(1, 1), to: replica2)
        var starts: [View] = []
        for _ in 0..<1500 {
            var actions: [PBFTAction] = []
            cluster.replicas[2].tick(into: &actions)
            for case .observe(.viewChangeStarted(let target)) in actions { starts.append(target) }
        }
        #expect(starts == [View(1)], "alone in view 1, it waits there for the others")
        // Two others ask for view 1 too (a quorum of 3): the timer runs again and it moves on to view 2.
        for other in [replica0, replica3] {
            let support = ViewChange(newView: View(1), stableCheckpoint: .zero, stableDigest: .zero, checkpointProof: [], prepared: [], sender: other)
            cluster.deliver(.viewChange(support), to: replica2, authenticator: fakeAuthenticator(other))
        }
        for _ in 0..<500 {
            var actions: [PBFTAction] = []
            cluster.replicas[2].tick(into: &actions)
            for case .observe(.viewChangeStarted(let target)) in actions { starts.append(target) }
        }
        #expect(starts == [View(1), View(2)])
    }
}

/// The primary of `view` in a cluster of `n` replicas (v mod n).
private func configurationPrimary(_ view: View, n: UInt64) -> ReplicaID { ReplicaID(UInt32(view.rawValue % n)) }
