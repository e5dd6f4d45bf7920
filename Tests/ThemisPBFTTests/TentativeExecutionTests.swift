// PBFT's tentative execution (Castro and Liskov 5.1.2, `ProtocolSettings.tentativeExecution`) on pure cores:
// a batch executes once it prepared (replies marked tentative) and stays executed when it commits; a view
// change before it committed undoes it (the stable checkpoint's state again, then re-execution); nothing is
// tentative before a stable checkpoint or at a checkpoint; an undo while the application still runs the
// batch drops its results; reads wait until execution is back.
import Testing
import ThemisCore
import ThemisPBFTTesting
@testable import ThemisPBFT

@Suite("PBFT tentative execution")
struct TentativeExecutionTests {
    static func cluster() throws -> TestCluster {
        var settings = ProtocolSettings(checkpointInterval: 4, watermarkWindow: 8)
        settings.tentativeExecution = true
        return try TestCluster(settings: settings)
    }

    /// Orders requests 1...4 of client 1 one by one: checkpoint 4 becomes stable everywhere.
    static func reachStableCheckpoint(_ cluster: inout TestCluster) {
        for timestamp in 1...4 {
            cluster.submit(TestCluster.request(1, UInt64(timestamp), [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        #expect(cluster.replicas.allSatisfy { $0.stableCheckpoint == SequenceNumber(4) })
    }

    static func isCommit(_ envelope: Envelope, inView view: UInt64) -> Bool {
        if case .commit(let commit) = envelope.message { return commit.view == View(view) }
        return false
    }

    @Test("Before a stable checkpoint nothing is tentative; after it a prepared batch executes at once, replies tentatively, and stays")
    func preparedBatchExecutesAndCommits() throws {
        var cluster = try Self.cluster()
        Self.reachStableCheckpoint(&cluster)
        #expect(cluster.replies.allSatisfy { !$0.tentative }, "no stable checkpoint state to undo to before s4")
        #expect(!cluster.events.contains { if case .tentativeCommitted = $0.1 { return true } else { return false } })

        cluster.submit(TestCluster.request(1, 5, [5]), to: replica0)
        cluster.run()
        let replies = cluster.replies(for: 1, 5)
        #expect(replies.count == 4 && replies.allSatisfy { $0.tentative }, "\(replies)")
        for replica in cluster.replicas {
            #expect(cluster.events.contains { $0.0 == replica.id && $0.1 == .tentativeCommitted(SequenceNumber(5)) })
            #expect(replica.lastScheduled == SequenceNumber(5) && replica.lastExecuted == SequenceNumber(5))
            #expect(cluster.executedSequences(replica.id) == [1, 2, 3, 4, 5], "executed once")
            #expect(cluster.applicationState[cluster.index(replica.id)] == [1, 2, 3, 4, 5])
        }
        // A retransmission after the commit gets the cached reply as final.
        cluster.replies = []
        cluster.submit(TestCluster.request(1, 5, [5]), to: replica2)
        #expect(cluster.replies.count == 1 && cluster.replies[0].tentative == false && cluster.replies[0].result == [5])
    }

    @Test("A checkpoint batch is never tentative: it executes after it committed")
    func checkpointBatchWaitsForCommit() throws {
        var cluster = try Self.cluster()
        Self.reachStableCheckpoint(&cluster)
        for timestamp in 5...8 {
            cluster.submit(TestCluster.request(1, UInt64(timestamp), [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        #expect(cluster.replies(for: 1, 7).allSatisfy { $0.tentative })
        #expect(cluster.replies(for: 1, 8).allSatisfy { !$0.tentative }, "s8 is a checkpoint")
        #expect(cluster.replicas.allSatisfy { $0.stableCheckpoint == SequenceNumber(8) })
    }

    @Test("A view change before the commit undoes the batch; the new view re-proposes it and it executes once more, committed")
    func viewChangeUndoesUncommittedBatch() throws {
        var cluster = try Self.cluster()
        Self.reachStableCheckpoint(&cluster)
        cluster.drop = { Self.isCommit($0, inView: 0) }
        cluster.submit(TestCluster.request(1, 5, [5]), to: replica0)
        cluster.run()
        #expect(cluster.replies(for: 1, 5).count == 4 && cluster.replies(for: 1, 5).allSatisfy { $0.tentative })
        #expect(cluster.replicas.allSatisfy { $0.lastExecuted == SequenceNumber(5) && $0.lastScheduled == SequenceNumber(4) })
        #expect(cluster.replicas.allSatisfy { !$0.servesReadOnlyRequests && $0.defersReadOnlyRequests },
                "reads wait while a tentative batch has not committed (Castro and Liskov 5.1.3)")

        // The backups' request timers still run (a tentative execution does not stop them): the view changes.
        cluster.tick(250)
        #expect(cluster.views() == [1, 1, 1, 1])
        for replica in cluster.replicas {
            #expect(cluster.events.contains { $0.0 == replica.id && $0.1 == .tentativeUndone(SequenceNumber(5)) })
            #expect(cluster.installed.contains { $0.0 == replica.id && $0.1 == SequenceNumber(4) }, "undone to the stable checkpoint's state")
            // Executed tentatively in view 0, undone, executed again once it committed in view 1.
            #expect(cluster.executedSequences(replica.id) == [1, 2, 3, 4, 5, 5])
            #expect(cluster.applicationState[cluster.index(replica.id)] == [1, 2, 3, 4, 5], "the undone execution left no trace")
            #expect(replica.lastExecuted == SequenceNumber(5) && replica.lastScheduled == SequenceNumber(5))
            #expect(replica.servesReadOnlyRequests)
        }
        // In view 1 the re-proposed batch prepares and executes tentatively again, then commits.
        let final = cluster.replies(for: 1, 5).filter { $0.view == View(1) }
        #expect(final.count == 4 && final.allSatisfy { $0.result == [5] }, "\(final)")
        #expect(cluster.events.filter { $0.1 == .tentativeCommitted(SequenceNumber(5)) }.count == 4)
    }

    @Test("An undo while the application still runs the batch drops its results; reads wait until execution is back")
    func undoWhileExecuting() throws {
        var cluster = try Self.cluster()
        Self.reachStableCheckpoint(&cluster)
        cluster.drop = { Self.isCommit($0, inView: 0) }
        cluster.executionDeferred = [replica1]
        cluster.submit(TestCluster.request(1, 5, [5]), to: replica0)
        cluster.run()
        #expect(cluster.deferredExecution[replica1]?.count == 1, "the tentative batch is with replica 1's application")
        #expect(!cluster.replies(for: 1, 5).contains { $0.replica == replica1 })

        // Replica 1 leaves view 0 while its application still runs s5.
        var actions: [PBFTAction] = []
        cluster.replicas[1].startViewChange(to: View(1), into: &actions)
        #expect(actions.contains { if case .observe(.tentativeUndone(SequenceNumber(5))) = $0 { return true } else { return false } })
        #expect(!actions.contains { if case .installState = $0 { return true } else { return false } }, "not before the application is idle")
        #expect(!cluster.replicas[1].servesReadOnlyRequests)
        cluster.perform(actions, at: replica1)

        cluster.executeDeferred(replica1)
        #expect(!cluster.replies(for: 1, 5).contains { $0.replica == replica1 }, "no reply from an undone execution")
        #expect(cluster.installed.contains { $0.0 == replica1 && $0.1 == SequenceNumber(4) })
        #expect(cluster.replicas[1].lastExecuted == SequenceNumber(4))
        #expect(!cluster.replicas[1].servesReadOnlyRequests, "back at s4, below the s5 it had executed")
        cluster.executionDeferred = []
        cluster.executeDeferred(replica1)
        cluster.tick(250)
        #expect(cluster.views() == [1, 1, 1, 1])
        #expect(cluster.applicationState[1] == [1, 2, 3, 4, 5])
        #expect(cluster.replicas[1].servesReadOnlyRequests)
        #expect(cluster.replies(for: 1, 5).contains { $0.replica == replica1 && $0.view == View(1) && $0.result == [5] })
        #expect(cluster.events.contains { $0.0 == replica1 && $0.1 == .tentativeCommitted(SequenceNumber(5)) })
    }

    @Test("Off by default: replies are never tentative")
    func offByDefault() throws {
        var cluster = try TestCluster()
        for timestamp in 1...6 {
            cluster.submit(TestCluster.request(1, UInt64(timestamp), [UInt8(timestamp)]), to: replica0)
            cluster.run()
        }
        #expect(cluster.replies.count == 24 && cluster.replies.allSatisfy { !$0.tentative })
    }
}
