// Proves the client's rules on the pure ClientCore: a result needs f+1 matching replies from distinct
// replicas, f lying replicas cannot complete a request, retransmission goes to every replica with backoff,
// the deadline fails the request, and timestamps only grow even if the wall clock goes back.
import Testing
import ThemisClientCore
import ThemisCore

@Suite("Client core")
struct ClientCoreTests {
    func makeCore(retransmitTicks: UInt64 = 5, deadlineTicks: UInt64 = 100) throws -> ClientCore {
        ClientCore(id: ClientID(7), configuration: try ClusterConfiguration(replicaCount: 4),
                   options: ClientCore.Options(retransmitTicks: retransmitTicks, deadlineTicks: deadlineTicks))
    }

    func reply(_ core: ClientCore, from replica: UInt32, result: [UInt8], view: UInt64 = 0, tentative: Bool = false) -> Reply {
        Reply(view: View(view), timestamp: core.lastTimestamp, client: ClientID(7), replica: ReplicaID(replica), result: result,
              tentative: tentative)
    }

    /// Starts a request of one operation byte at wall-clock `micros`; returns its timestamp.
    func start(_ core: inout ClientCore, at micros: UInt64, operation: UInt8 = 1) -> Timestamp {
        let timestamp = core.nextTimestamp(wallClockMicroseconds: micros)
        _ = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [operation]))
        return timestamp
    }

    @Test("Tentative replies complete a request only as a quorum (2f + 1) of matching ones; committed ones count in it")
    func tentativeReplyQuorum() throws {
        var core = try makeCore()
        let timestamp = start(&core, at: 1000, operation: 1)
        #expect(core.receive(reply(core, from: 0, result: [42], tentative: true)) == nil)
        #expect(core.receive(reply(core, from: 1, result: [42], tentative: true)) == nil, "f + 1 tentative replies are not enough")
        #expect(core.receive(reply(core, from: 3, result: [6], tentative: true)) == nil, "a different result does not count")
        #expect(core.receive(reply(core, from: 2, result: [42], tentative: true)) == .completed(timestamp, result: [42]))

        let second = start(&core, at: 2000, operation: 2)
        #expect(core.receive(reply(core, from: 0, result: [43], tentative: true)) == nil)
        #expect(core.receive(reply(core, from: 1, result: [43])) == nil, "one committed and one tentative: not f + 1 committed")
        // A retransmission answered from replica 0's cache after the commit: its committed reply replaces its tentative one.
        #expect(core.awaits(reply(core, from: 0, result: [43])))
        #expect(!core.awaits(reply(core, from: 1, result: [43], tentative: true)), "a tentative reply never replaces a committed one")
        #expect(core.receive(reply(core, from: 0, result: [43])) == .completed(second, result: [43]))

        let third = start(&core, at: 3000, operation: 3)
        #expect(core.receive(reply(core, from: 3, result: [44])) == nil)
        #expect(core.receive(reply(core, from: 1, result: [44], tentative: true)) == nil)
        #expect(core.receive(reply(core, from: 2, result: [44], tentative: true)) == .completed(third, result: [44]),
                "2f + 1 matching, one of them committed")
    }

    @Test("Tentative replies of different views do not add up to a quorum; committed ones count with any view")
    func tentativeRepliesOfOneView() throws {
        var core = try makeCore()
        let timestamp = start(&core, at: 1000, operation: 1)
        #expect(core.receive(reply(core, from: 0, result: [42], view: 0, tentative: true)) == nil)
        #expect(core.receive(reply(core, from: 1, result: [42], view: 1, tentative: true)) == nil)
        #expect(core.receive(reply(core, from: 2, result: [42], view: 1, tentative: true)) == nil, "two of view 1, one of view 0")
        #expect(core.receive(reply(core, from: 3, result: [42], view: 0)) == .completed(timestamp, result: [42]),
                "one committed and two tentative of view 1")
    }

    @Test("f lying replicas claiming a committed result and f + 1 tentative ones for another: nothing completes without 2f + 1")
    func tentativeRepliesWithLiars() throws {
        var core = try makeCore()
        let timestamp = start(&core, at: 1000, operation: 1)
        #expect(core.receive(reply(core, from: 3, result: [6])) == nil)
        #expect(core.receive(reply(core, from: 0, result: [42], tentative: true)) == nil)
        #expect(core.receive(reply(core, from: 1, result: [42], tentative: true)) == nil)
        #expect(core.receive(reply(core, from: 2, result: [42], tentative: true)) == .completed(timestamp, result: [42]))
    }

    @Test("A new request goes to the primary of the last known view")
    func firstSendGoesToPrimary() throws {
        var core = try makeCore()
        let timestamp = core.nextTimestamp(wallClockMicroseconds: 1000)
        let output = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [1]))
        #expect(output == .send(Request(client: ClientID(7), timestamp: timestamp, operation: [1]), to: [ReplicaID(0)]))
    }

    @Test("f + 1 matching replies from distinct replicas complete the request; a repeated reply counts once")
    func replyQuorum() throws {
        var core = try makeCore()
        let timestamp = core.nextTimestamp(wallClockMicroseconds: 1000)
        _ = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [1]))
        #expect(core.receive(reply(core, from: 1, result: [42])) == nil)
        #expect(core.receive(reply(core, from: 1, result: [42])) == nil, "the same replica twice is one vote")
        #expect(core.receive(reply(core, from: 2, result: [42])) == .completed(timestamp, result: [42]))
        #expect(!core.isBusy)
    }

    @Test("f replicas agreeing on a wrong result cannot complete the request")
    func faultyRepliesDoNotComplete() throws {
        var core = try makeCore()
        let timestamp = core.nextTimestamp(wallClockMicroseconds: 1000)
        _ = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [1]))
        #expect(core.receive(reply(core, from: 3, result: [6, 6, 6])) == nil)
        #expect(core.receive(reply(core, from: 0, result: [42])) == nil)
        #expect(core.receive(reply(core, from: 1, result: [42])) == .completed(timestamp, result: [42]))
    }

    @Test("Replies for another timestamp or another client are ignored")
    func unrelatedRepliesIgnored() throws {
        var core = try makeCore()
        let timestamp = core.nextTimestamp(wallClockMicroseconds: 1000)
        _ = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [1]))
        let old = Reply(view: View(0), timestamp: Timestamp(1), client: ClientID(7), replica: ReplicaID(1), result: [1])
        let other = Reply(view: View(0), timestamp: timestamp, client: ClientID(8), replica: ReplicaID(2), result: [1])
        let unknown = Reply(view: View(0), timestamp: timestamp, client: ClientID(7), replica: ReplicaID(9), result: [1])
        #expect(core.receive(old) == nil)
        #expect(core.receive(other) == nil)
        #expect(core.receive(unknown) == nil)
        #expect(core.receive(reply(core, from: 1, result: [1])) == nil, "only one valid vote so far")
    }

    @Test("Only replies that can still count are awaited (checked before the driver verifies a MAC)")
    func awaitsOnlyUsefulReplies() throws {
        var core = try makeCore()
        #expect(!core.awaits(Reply(view: View(0), timestamp: Timestamp(1), client: ClientID(7), replica: ReplicaID(1), result: [])))
        let timestamp = core.nextTimestamp(wallClockMicroseconds: 1000)
        _ = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [1]))
        #expect(core.awaits(reply(core, from: 1, result: [42])))
        #expect(!core.awaits(Reply(view: View(0), timestamp: Timestamp(1), client: ClientID(7), replica: ReplicaID(1), result: [])))
        #expect(!core.awaits(Reply(view: View(0), timestamp: timestamp, client: ClientID(8), replica: ReplicaID(1), result: [])))
        _ = core.receive(reply(core, from: 1, result: [42]))
        #expect(!core.awaits(reply(core, from: 1, result: [42])), "replica 1 was heard already")
        _ = core.receive(reply(core, from: 2, result: [42]))
        #expect(!core.awaits(reply(core, from: 3, result: [42])), "completed: the late replies are not needed")
    }

    @Test("Without replies the request is retransmitted to every replica with doubling intervals, then fails at the deadline")
    func retransmissionAndDeadline() throws {
        var core = try makeCore(retransmitTicks: 5, deadlineTicks: 40)
        let timestamp = core.nextTimestamp(wallClockMicroseconds: 1000)
        let request = Request(client: ClientID(7), timestamp: timestamp, operation: [1])
        _ = core.start(request)
        var sends: [UInt64] = []
        var failure: UInt64?
        for tick in 1...60 {
            switch core.tick() {
            case .send(let sent, let replicas)?:
                #expect(sent == request)
                #expect(replicas.count == 4)
                sends.append(UInt64(tick))
            case .deadlineExceeded(let failed)?:
                #expect(failed == timestamp)
                failure = UInt64(tick)
            case .completed?, .sendReadOnly?, .fallBack?, nil:
                break
            }
        }
        #expect(sends == [5, 15, 35])
        #expect(failure == 40)
        #expect(!core.isBusy)
    }

    @Test("Timestamps grow even when the wall clock goes back (a later process reusing the id is also ahead)")
    func timestampsOnlyGrow() throws {
        var core = try makeCore()
        #expect(core.nextTimestamp(wallClockMicroseconds: 5000) == Timestamp(5000))
        #expect(core.nextTimestamp(wallClockMicroseconds: 4000) == Timestamp(5001))
        #expect(core.nextTimestamp(wallClockMicroseconds: 9000) == Timestamp(9000))
    }

    @Test("A quorum-confirmed reply from a later view moves new requests to that view's primary")
    func followsTheView() throws {
        var core = try makeCore()
        var timestamp = core.nextTimestamp(wallClockMicroseconds: 1000)
        _ = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [1]))
        _ = core.receive(reply(core, from: 1, result: [1], view: 2))
        _ = core.receive(reply(core, from: 3, result: [1], view: 2))
        timestamp = core.nextTimestamp(wallClockMicroseconds: 2000)
        let output = core.start(Request(client: ClientID(7), timestamp: timestamp, operation: [2]))
        #expect(output == .send(Request(client: ClientID(7), timestamp: timestamp, operation: [2]), to: [ReplicaID(2)]))
    }
}
