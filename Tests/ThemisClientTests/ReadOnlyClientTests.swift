// The client's read-only rules on the pure ClientCore: a read goes to every replica and completes only when
// all n replies match; a mismatch that leaves no result able to gather n falls back to ordering at once; a
// timeout falls back and pauses reads for `readOnlyPauseTicks`; the fallback keeps the read's deadline.
import Testing
import ThemisClientCore
import ThemisCore

@Suite("Client core: read-only requests")
struct ReadOnlyClientTests {
    func makeCore(replicas: Int = 4, faultModel: ClusterConfiguration.FaultModel = .byzantine) throws -> ClientCore {
        ClientCore(id: ClientID(7), configuration: try ClusterConfiguration(replicaCount: replicas, faultModel: faultModel),
                   options: ClientCore.Options(retransmitTicks: 5, deadlineTicks: 100, readOnlyPauseTicks: 20))
    }

    func read(_ core: inout ClientCore, at wallClock: UInt64 = 1000) -> (Request, ClientCore.Output) {
        let request = Request(client: ClientID(7), timestamp: core.nextTimestamp(wallClockMicroseconds: wallClock), operation: [0x47])
        return (request, core.startReadOnly(request))
    }

    func reply(_ request: Request, from replica: UInt32, result: [UInt8]) -> Reply {
        Reply(view: View(0), timestamp: request.timestamp, client: ClientID(7), replica: ReplicaID(replica), result: result)
    }

    @Test("A read goes to every replica and needs all n matching replies; f + 1 or 2f + 1 are not enough")
    func everyReplicaMustMatch() throws {
        var core = try makeCore()
        let (request, output) = read(&core)
        #expect(output == .sendReadOnly(request, to: (0..<4).map { ReplicaID($0) }))
        #expect(core.outstandingIsReadOnly)
        for replica in 0..<3 {
            #expect(core.receive(reply(request, from: UInt32(replica), result: [1])) == nil, "\(replica + 1) of 4 matching")
        }
        #expect(core.receive(reply(request, from: 3, result: [1])) == .completed(request.timestamp, result: [1]))
        #expect(!core.isBusy)
    }

    @Test("One differing reply (a concurrent write, a lagging or lying replica) falls back to ordering at once, with the read's deadline")
    func mismatchFallsBack() throws {
        var core = try makeCore()
        let (request, _) = read(&core)
        #expect(core.receive(reply(request, from: 0, result: [1])) == nil)
        #expect(core.receive(reply(request, from: 2, result: [2])) == .fallBack(operation: [0x47], deadlineTick: 100))
        #expect(!core.isBusy)
        // The ordered request that replaces it: f + 1 replies complete it; late read replies do not count.
        let ordered = Request(client: ClientID(7), timestamp: core.nextTimestamp(wallClockMicroseconds: 0), operation: [0x47])
        #expect(ordered.timestamp > request.timestamp)
        #expect(core.start(ordered, deadlineTick: 100) == .send(ordered, to: [ReplicaID(0)]))
        #expect(core.receive(reply(request, from: 1, result: [1])) == nil)
        #expect(core.receive(reply(ordered, from: 1, result: [2])) == nil)
        #expect(core.receive(reply(ordered, from: 3, result: [2])) == .completed(ordered.timestamp, result: [2]))
        // Reads are not paused by a mismatch.
        let (next, output) = read(&core)
        #expect(output == .sendReadOnly(next, to: (0..<4).map { ReplicaID($0) }))
    }

    @Test("A read not answered by every replica within the retransmission interval falls back, and reads are ordered for the pause")
    func timeoutFallsBackAndPauses() throws {
        var core = try makeCore()
        let (request, _) = read(&core)
        for replica in 0..<3 { _ = core.receive(reply(request, from: UInt32(replica), result: [1])) }
        var outputs: [ClientCore.Output] = []
        for _ in 0..<5 { if let output = core.tick() { outputs.append(output) } }
        #expect(outputs == [.fallBack(operation: [0x47], deadlineTick: 100)], "no retransmission of a read")
        #expect(core.readOnlyPausedUntil == 25)
        // While paused, a read comes straight back as a fallback (nothing outstanding, nothing sent).
        let (_, paused) = read(&core)
        #expect(paused == .fallBack(operation: [0x47], deadlineTick: 105))
        #expect(!core.isBusy)
        for _ in 0..<20 { _ = core.tick() }
        let (again, output) = read(&core)
        #expect(output == .sendReadOnly(again, to: (0..<4).map { ReplicaID($0) }))
    }

    @Test("With n = 3 (hybrid), two replicas agreeing cannot complete a read: the third differs, so it is ordered")
    func liarsCannotComplete() throws {
        var core = try makeCore(replicas: 3, faultModel: .hybrid)
        let (request, _) = read(&core)
        #expect(core.receive(reply(request, from: 0, result: [9])) == nil)
        #expect(core.receive(reply(request, from: 1, result: [9])) == nil)
        #expect(core.receive(reply(request, from: 2, result: [1])) == .fallBack(operation: [0x47], deadlineTick: 100))
    }
}
