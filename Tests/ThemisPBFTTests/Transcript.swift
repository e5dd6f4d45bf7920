// Data-driven scenario tests in the style of etcd raft's `testdata/*.txt`: each file under testdata/ is a
// list of commands, each followed by "----" and the output it must print (the messages delivered, the
// events and rejections they caused, replica states). `swift test` compares; with THEMIS_REWRITE=1 the
// files are rewritten with what the commands printed, to be reviewed in the diff. The format, the checking
// and the rewrite are the protocol-neutral harness in ThemisTestSupport (`Transcript`); this file is PBFT's
// command set (`TranscriptRunner`), which a second protocol replaces with its own.
//
// Commands (replicas are numbers; messages are printed as "rA->rB KIND fields"):
//   cluster n=4 k=4 l=8 [timeout=T]             a new cluster of fresh cores (request timeout T ticks)
//   submit client=C ts=T op=TEXT to=R[,R...]    a verified client request at each replica
//   deliver [N]                                 deliver the first N queued messages (default 1)
//   stabilize [brief]                           deliver until nothing is queued (brief: only a count and the
//                                               executions, checkpoints, views, state transfers, and
//                                               rejections other than duplicates and view-changing ones)
//   drop [from=R] [to=R] [kind=KIND]            remove matching queued messages (all when no filter)
//   block [from=R] [to=R] [kind=KIND] / unblock drop matching messages from now on / stop dropping
//   tick N [replicas=R,R] [brief]               N ticks of the clock at every (or the listed) replica,
//                                               each followed by a stabilize (printed: a count, the
//                                               VIEW-CHANGE and NEW-VIEW messages, and every event)
//   crash R / restart R                         silence a replica / bring it back empty
//   inject from=R to=R pre-prepare v=V s=S client=C ts=T op=TEXT
//   inject from=R to=R commit v=V s=S client=C ts=T op=TEXT   (the digest of that one-request batch)
//   state                                       every replica's view, status, low watermark, last executed,
//                                               requests it executed itself, and application state
import Foundation
import Testing
import ThemisCore
import ThemisPBFTTesting
import ThemisTestSupport
@testable import ThemisPBFT

@Suite("PBFT transcripts (testdata/*.txt)")
struct TranscriptTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testdata")

    static var files: [String] { Transcript.files(in: directory) }

    @Test("Each transcript prints what it recorded", arguments: files)
    func transcript(file: String) throws {
        let url = Self.directory.appendingPathComponent(file)
        let (mismatches, rewritten) = try Self.check(try String(contentsOf: url, encoding: .utf8), file: file)
        for mismatch in mismatches { Issue.record(Comment(rawValue: mismatch)) }
        if Transcript.rewriting {
            try rewritten.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    /// The shared harness (ThemisTestSupport) with PBFT's command set.
    static func check(_ text: String, file: String) throws -> (mismatches: [String], rewritten: String) {
        try Transcript.check(text, file: file, runner: TranscriptRunner.self)
    }

    @Test("There are transcripts, a wrong expectation is reported at its line, and a rewrite makes it pass")
    func transcriptsExistAndCanFail() throws {
        #expect(Self.files.count >= 4, "testdata/ holds \(Self.files)")
        let wrong = "cluster n=4\n----\nok\n\nsubmit client=1 ts=1 op=x to=0\n----\nr0 proposes s2 (1 requests)\nqueued: 3\n"
        let (mismatches, rewritten) = try Self.check(wrong, file: "wrong.txt")
        #expect(mismatches.count == 1 && mismatches[0].hasPrefix("wrong.txt:5: submit"), "\(mismatches)")
        #expect(rewritten.contains("r0 proposes s1 (1 requests)"))
        #expect(try Self.check(rewritten, file: "rewritten.txt").mismatches.isEmpty)
        var runner = TranscriptRunner()
        #expect(runner.run("state").hasPrefix("error: no cluster"))
        _ = runner.run("cluster n=4")
        #expect(runner.run("frobnicate") == "error: unknown command frobnicate\n")
    }
}

/// Runs transcript commands against a `TestCluster` and prints what happened.
struct TranscriptRunner: TranscriptRunning {
    var cluster: TestCluster?
    var eventsSeen = 0
    var rejectionsSeen = 0
    var repliesSeen = 0
    /// Filters of `block`: a queued message matching one is dropped when its turn comes.
    var blocked: [(from: ReplicaID?, to: ReplicaID?, kind: String?)] = []

    mutating func run(_ command: String) -> String {
        let words = command.split(separator: " ").map(String.init)
        guard let name = words.first else { return "error: empty command\n" }
        var arguments: [String: String] = [:]
        var positional: [String] = []
        for word in words.dropFirst() {
            if let equals = word.firstIndex(of: "=") {
                arguments[String(word[..<equals])] = String(word[word.index(after: equals)...])
            } else {
                positional.append(word)
            }
        }
        if name == "cluster" {
            let n = Int(arguments["n"] ?? "4") ?? 4
            let k = UInt64(arguments["k"] ?? "4") ?? 4
            let l = UInt64(arguments["l"] ?? "8") ?? 8
            let timeout = UInt64(arguments["timeout"] ?? "100") ?? 100
            do {
                cluster = try TestCluster(replicaCount: n, settings: ProtocolSettings(checkpointInterval: k, watermarkWindow: l, requestTimeoutTicks: timeout))
            } catch {
                return "error: \(error)\n"
            }
            eventsSeen = 0
            rejectionsSeen = 0
            repliesSeen = 0
            return "ok\n"
        }
        guard cluster != nil else { return "error: no cluster (start with: cluster n=4 k=4 l=8)\n" }
        var lines: [String] = []
        switch name {
        case "submit":
            let request = Self.request(arguments)
            for target in Self.replicas(arguments["to"] ?? "0") { cluster!.submit(request, to: target) }
            lines += news()
            lines.append("queued: \(cluster!.network.count)")
        case "deliver":
            let count = Int(positional.first ?? "1") ?? 1
            for _ in 0..<count where !cluster!.network.isEmpty { lines += deliverOne() }
        case "stabilize":
            var delivered = 0
            var happened: [String] = []
            while !cluster!.network.isEmpty, delivered < 10_000 {
                let printed = deliverOne()
                if positional.contains("brief") {
                    happened += printed.dropFirst().map { String($0.dropFirst(2)) }.filter(Self.isMilestone)
                } else {
                    lines += printed
                }
                delivered += 1
            }
            if positional.contains("brief") { lines = ["\(delivered) messages delivered"] + happened }
        case "drop":
            let before = cluster!.network.count
            cluster!.network.removeAll { envelope in
                (arguments["from"].map { envelope.from == ReplicaID(UInt32($0) ?? 0) } ?? true)
                    && (arguments["to"].map { envelope.to == ReplicaID(UInt32($0) ?? 0) } ?? true)
                    && (arguments["kind"].map { envelope.message.kindName == $0 } ?? true)
            }
            lines.append("dropped \(before - cluster!.network.count)")
        case "block":
            blocked.append((arguments["from"].flatMap(UInt32.init).map(ReplicaID.init), arguments["to"].flatMap(UInt32.init).map(ReplicaID.init),
                            arguments["kind"]))
            lines.append("blocked: \(blocked.count) filters")
        case "unblock":
            blocked = []
            lines.append("blocked: none")
        case "tick":
            let count = Int(positional.first ?? "1") ?? 1
            let only = arguments["replicas"].map(Self.replicas)
            var delivered = 0
            var happened: [String] = []
            for _ in 0..<count {
                for replica in only ?? cluster!.replicas.map(\.id) {
                    var actions: [PBFTAction] = []
                    cluster!.replicas[cluster!.index(replica)].tick(into: &actions)
                    cluster!.replicas[cluster!.index(replica)].flush(into: &actions)
                    cluster!.perform(actions, at: replica)
                }
                happened += news()
                while !cluster!.network.isEmpty, delivered < 100_000 {
                    let printed = deliverOne()
                    // View-change messages are shown with what they carry; other messages only by their effects.
                    if printed[0].contains(" VIEW-CHANGE ") || printed[0].contains(" NEW-VIEW ") { happened.append(printed[0]) }
                    happened += printed.dropFirst().map { String($0.dropFirst(2)) }
                    delivered += 1
                }
            }
            lines.append("\(count) ticks, \(delivered) messages delivered")
            lines += positional.contains("brief") ? happened.filter(Self.isMilestone) : happened
        case "crash":
            for replica in positional.flatMap(Self.replicas) { cluster!.silenced.insert(replica) }
            lines.append("silenced: \(cluster!.silenced.sorted().map { "r\($0.rawValue)" }.joined(separator: ","))")
        case "restart":
            for replica in positional.flatMap(Self.replicas) {
                cluster!.restart(replica)
                cluster!.silenced.remove(replica)
            }
            lines.append("silenced: \(cluster!.silenced.sorted().map { "r\($0.rawValue)" }.joined(separator: ","))")
        case "inject":
            guard let kind = positional.first, let from = arguments["from"].flatMap(UInt32.init), let to = arguments["to"] else {
                return "error: inject needs from=R to=R and a kind\n"
            }
            let view = View(UInt64(arguments["v"] ?? "0") ?? 0)
            let sequence = SequenceNumber(UInt64(arguments["s"] ?? "1") ?? 1)
            let prePrepare = PrePrepare(view: view, sequence: sequence, requests: [Self.request(arguments)], sender: ReplicaID(from))
            let message: PBFTMessage
            switch kind {
            case "pre-prepare": message = .prePrepare(prePrepare)
            case "commit": message = .commit(Commit(view: view, sequence: sequence, digest: prePrepare.digest, sender: ReplicaID(from)))
            default: return "error: cannot inject \(kind)\n"
            }
            for target in Self.replicas(to) {
                cluster!.network.append(Envelope(from: ReplicaID(from), to: target, message: message, authenticator: fakeAuthenticator(ReplicaID(from))))
            }
            lines.append("queued: \(cluster!.network.count)")
        case "state":
            for (index, core) in cluster!.replicas.enumerated() {
                let status: String
                switch core.status {
                case .normal: status = "normal"
                case .viewChanging(let target): status = "changing to v\(target.rawValue)"
                }
                let executed = cluster!.executedRequests(core.id).map { "c\($0.client.rawValue)/\($0.timestamp.rawValue)" }
                lines.append("r\(index): v\(core.view.rawValue) \(status), low \(core.lowWatermark.rawValue), executed \(core.lastExecuted.rawValue) "
                    + "[\(executed.joined(separator: " "))], state \"\(String(decoding: cluster!.applicationState[index], as: UTF8.self))\""
                    + (cluster!.silenced.contains(core.id) ? " (silenced)" : ""))
            }
        default:
            return "error: unknown command \(name)\n"
        }
        return lines.isEmpty ? "nothing\n" : lines.joined(separator: "\n") + "\n"
    }

    /// Delivers the first queued message: the message, then what it caused.
    mutating func deliverOne() -> [String] {
        let envelope = cluster!.network.removeFirst()
        let isBlocked = blocked.contains { filter in
            (filter.from.map { $0 == envelope.from } ?? true) && (filter.to.map { $0 == envelope.to } ?? true)
                && (filter.kind.map { $0 == envelope.message.kindName } ?? true)
        }
        if isBlocked { return ["r\(envelope.from.rawValue)->r\(envelope.to.rawValue) \(Self.describe(envelope.message)) (blocked)"] }
        cluster!.deliver(envelope.message, to: envelope.to, authenticator: envelope.authenticator)
        return ["r\(envelope.from.rawValue)->r\(envelope.to.rawValue) \(Self.describe(envelope.message))"] + news().map { "  " + $0 }
    }

    /// Events, rejections and replies since the last call.
    mutating func news() -> [String] {
        var lines: [String] = []
        for (replica, rejection) in cluster!.rejections.dropFirst(rejectionsSeen) {
            lines.append("r\(replica.rawValue) rejects: \(rejection.kind)")
        }
        rejectionsSeen = cluster!.rejections.count
        for (replica, event) in cluster!.events.dropFirst(eventsSeen) {
            if let text = Self.describe(event) { lines.append("r\(replica.rawValue) \(text)") }
        }
        eventsSeen = cluster!.events.count
        for reply in cluster!.replies.dropFirst(repliesSeen) {
            lines.append("r\(reply.replica.rawValue) replies c\(reply.client.rawValue)/\(reply.timestamp.rawValue) = \(String(decoding: reply.result, as: UTF8.self))")
        }
        repliesSeen = cluster!.replies.count
        return lines
    }

    /// What `brief` keeps: executions, stable checkpoints, views, state transfer, fetched batches, rejections.
    static func isMilestone(_ line: String) -> Bool {
        guard !line.contains("rejects: duplicate"), !line.contains("rejects: viewChanging") else { return false }
        return ["executed", "stable checkpoint", "enters", "starts a view change", "NEW-VIEW", "state", "fetched", "rejects"].contains { line.contains($0) }
    }

    static func request(_ arguments: [String: String]) -> Request {
        TestCluster.request(UInt32(arguments["client"] ?? "1") ?? 1, UInt64(arguments["ts"] ?? "1") ?? 1, Array((arguments["op"] ?? "x").utf8))
    }

    static func replicas(_ list: String) -> [ReplicaID] {
        list.split(separator: ",").compactMap { UInt32($0) }.map(ReplicaID.init)
    }

    static func short(_ digest: Digest) -> String {
        let text = String(digest.word0 >> 48, radix: 16)
        return String(repeating: "0", count: 4 - text.count) + text
    }

    static func requests(_ requests: [Request]) -> String {
        "[" + requests.map { "c\($0.client.rawValue)/\($0.timestamp.rawValue)" }.joined(separator: " ") + "]"
    }

    static func describe(_ message: PBFTMessage) -> String {
        switch message {
        case .request(let request, _):
            return "REQUEST c\(request.client.rawValue)/\(request.timestamp.rawValue)"
        case .prePrepare(let m):
            return "PRE-PREPARE v\(m.view.rawValue) s\(m.sequence.rawValue) d=\(short(m.digest)) \(requests(m.requests))"
        case .prepare(let m):
            return "PREPARE v\(m.view.rawValue) s\(m.sequence.rawValue) d=\(short(m.digest))"
        case .commit(let m):
            return "COMMIT v\(m.view.rawValue) s\(m.sequence.rawValue) d=\(short(m.digest))"
        case .checkpoint(let m):
            return "CHECKPOINT s\(m.sequence.rawValue) d=\(short(m.stateDigest))"
        case .viewChange(let m):
            let prepared = m.prepared.map { "s\($0.sequence.rawValue)@v\($0.prePrepare.message.view.rawValue) d=\(short($0.prePrepare.message.digest))" }
            return "VIEW-CHANGE v\(m.newView.rawValue) stable s\(m.stableCheckpoint.rawValue) prepared [\(prepared.joined(separator: ", "))]"
        case .newView(let m):
            let senders = m.viewChanges.map { "r\($0.message.sender.rawValue)" }.sorted()
            let proposals = m.prePrepares.map { "s\($0.message.sequence.rawValue) d=\(short($0.message.digest))" }
            return "NEW-VIEW v\(m.view.rawValue) from [\(senders.joined(separator: " "))] O [\(proposals.joined(separator: ", "))]"
        case .fetchState(let m):
            return "FETCH-STATE s\(m.sequence.rawValue) offset \(m.offset)"
        case .stateChunk(let m):
            return "STATE-CHUNK s\(m.sequence.rawValue) offset \(m.offset) \(m.bytes.count) of \(m.totalBytes) bytes"
        case .fetchBatches(let m):
            return "FETCH-BATCHES from s\(m.from.rawValue)"
        case .committedBatches(let m):
            return "COMMITTED-BATCHES [" + m.batches.map { "s\($0.sequence.rawValue)" }.joined(separator: " ") + "]"
        case .recoveryQuery(let m):
            return "RECOVERY-QUERY target s\(m.target.rawValue)"
        case .newViewRelay(let m):
            return "NEW-VIEW-RELAY v\(m.newView.message.view.rawValue) of r\(m.newView.message.sender.rawValue)"
        case .recoveryReply(let m):
            return "RECOVERY-REPLY v\(m.view.rawValue) executed s\(m.lastExecuted.rawValue) stable s\(m.stableCheckpoint.rawValue)"
        }
    }

    static func describe(_ event: Event) -> String? {
        switch event {
        case .batchProposed(let s, let count): return "proposes s\(s.rawValue) (\(count) requests)"
        case .awaitingVouchers(let s): return "awaits vouchers for s\(s.rawValue)"
        case .vouchedFor(let s): return "vouched for s\(s.rawValue)"
        case .prepared(let s): return "prepared s\(s.rawValue)"
        case .committed(let s): return "committed s\(s.rawValue)"
        case .executed(let s, let count): return "executed s\(s.rawValue) (\(count) requests)"
        case .tentativeCommitted(let s): return "tentative s\(s.rawValue) committed"
        case .tentativeUndone(let s): return "undoes tentative s\(s.rawValue)"
        case .checkpointTaken(let s, let d): return "checkpoint s\(s.rawValue) d=\(short(d))"
        case .checkpointStable(let s, _): return "stable checkpoint s\(s.rawValue)"
        case .checkpointMismatch(let s, let replica): return "checkpoint mismatch s\(s.rawValue) with r\(replica.rawValue)"
        case .requestRelayed(let client, let timestamp, let to): return "relays c\(client.rawValue)/\(timestamp.rawValue) to r\(to.rawValue)"
        case .cachedReplyResent(let client, let timestamp): return "resends the reply to c\(client.rawValue)/\(timestamp.rawValue)"
        case .viewChangeStarted(let view): return "starts a view change to v\(view.rawValue)"
        case .newViewSent(let view): return "sends NEW-VIEW for v\(view.rawValue)"
        case .viewChanged(let view, let primary): return "enters v\(view.rawValue) (primary r\(primary.rawValue))"
        case .stateTransferNeeded(let s, _): return "needs state transfer to s\(s.rawValue)"
        case .stateTransferStarted(let s, let from): return "fetches the state of s\(s.rawValue) from r\(from.rawValue)"
        case .stateTransferRejected(let s, let from): return "rejects the state of s\(s.rawValue) from r\(from.rawValue)"
        case .stateTransferFinished(let s): return "installed the state of s\(s.rawValue)"
        case .batchFetched(let s): return "fetched the batch of s\(s.rawValue)"
        case .batchMissing(let s): return "misses the batch of s\(s.rawValue)"
        case .restored(let view, let stable, let slots): return "restored v\(view.rawValue) stable s\(stable.rawValue) (\(slots) slots)"
        case .restoredAsPrimary(let view): return "restored as the primary of v\(view.rawValue): proposes no more in it"
        case .recoveryStarted: return "starts recovering"
        case .recoveryTargetKnown(let target, let blank): return "recovery target s\(target.rawValue)\(blank ? " (first start)" : "")"
        case .recovered(let s): return "recovered at s\(s.rawValue)"
        }
    }
}
