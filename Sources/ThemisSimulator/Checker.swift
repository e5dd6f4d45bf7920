import ThemisApps
import ThemisCore

/// A safety or liveness property that failed.
public struct Violation: Sendable, CustomStringConvertible {
    public let checker: String
    public let tick: UInt64
    public let detail: String
    public var description: String { "\(checker) violated at tick \(tick): \(detail)" }
}

/// The safety checkers, fed on every step by the world with what correct replicas and clients did.
package struct Checker {
    struct Completion {
        let request: Digest
        let result: [UInt8]
        let start: UInt64
        let end: UInt64
        /// A read-only request's operation (answered without ordering; `request` is then in no history).
        var readOnlyOperation: [UInt8]? = nil
    }

    /// Digests of every request a client issued (validity).
    var issued: Set<Digest> = []
    /// Per sequence number, the digest of the batch the first correct replica executed (agreement).
    var agreed: [SequenceNumber: Digest] = [:]
    /// The agreed batches (the canonical history).
    var history: [SequenceNumber: [Request]] = [:]
    /// Where each request was executed in the total order (exactly-once).
    var position: [Digest: SequenceNumber] = [:]
    /// Per client and timestamp, the request executed (a client's timestamp executes once, whatever
    /// other operation a Byzantine client sends with it).
    var byTimestamp: [ClientID: [Timestamp: Digest]] = [:]
    /// Per correct replica, the requests it executed since it last started empty or installed a state.
    var executedBy: [Int: Set<Digest>] = [:]
    var checkpointDigests: [SequenceNumber: Digest] = [:]
    /// Per correct replica, the batches it executed tentatively (PBFT), in order: each is checked as executed
    /// once the replica reports it committed.
    var tentativeBy: [Int: [ExecutionBatch]] = [:]
    var completions: [Completion] = []
    var violation: Violation?

    package mutating func fail(_ checker: String, _ tick: UInt64, _ detail: String) {
        if violation == nil { violation = Violation(checker: checker, tick: tick, detail: detail) }
    }

    mutating func executed(_ batch: ExecutionBatch, by replica: Int, at tick: UInt64) {
        if batch.tentative {
            // Only a committed batch is part of the history; an undone one was never agreed.
            if let last = tentativeBy[replica]?.last, batch.sequence != last.sequence.next {
                fail("tentative execution", tick, "replica \(replica) executed \(batch.sequence) tentatively after \(last.sequence)")
            }
            tentativeBy[replica, default: []].append(batch)
            return
        }
        if let pending = tentativeBy[replica], !pending.isEmpty {
            fail("tentative execution", tick, "replica \(replica) executed \(batch.sequence) as committed with \(pending.count) batches still tentative")
        }
        agree(batch, by: replica, at: tick)
    }

    /// The agreement, validity and exactly-once checks of a batch a correct replica executed and committed.
    private mutating func agree(_ batch: ExecutionBatch, by replica: Int, at tick: UInt64) {
        var builder = DigestBuilder(domain: "sim.batch")
        for request in batch.requests { builder.append(request.digest) }
        let digest = builder.finish()
        if let earlier = agreed[batch.sequence], earlier != digest {
            fail("agreement", tick, "replica \(replica) executed another batch at \(batch.sequence)")
        }
        agreed[batch.sequence] = digest
        history[batch.sequence] = batch.requests
        for request in batch.requests {
            if !issued.contains(request.digest) {
                fail("validity", tick, "replica \(replica) executed a request no client issued at \(batch.sequence)")
            }
            if let first = position[request.digest], first != batch.sequence {
                fail("exactly-once", tick, "\(request.client) \(request.timestamp) executed at \(first) and \(batch.sequence)")
            }
            position[request.digest] = batch.sequence
            if let other = byTimestamp[request.client]?[request.timestamp], other != request.digest {
                fail("exactly-once", tick, "two requests of \(request.client) with timestamp \(request.timestamp) executed")
            }
            byTimestamp[request.client, default: [:]][request.timestamp] = request.digest
            if !executedBy[replica, default: []].insert(request.digest).inserted {
                fail("exactly-once", tick, "replica \(replica) executed \(request.client) \(request.timestamp) twice")
            }
        }
    }

    mutating func tentativeCommitted(_ sequence: SequenceNumber, by replica: Int, at tick: UInt64) {
        guard let batch = tentativeBy[replica]?.first, batch.sequence == sequence else {
            return fail("tentative execution", tick, "replica \(replica) reported batch \(sequence) committed, which it did not execute tentatively")
        }
        tentativeBy[replica]?.removeFirst()
        agree(batch, by: replica, at: tick)
    }

    mutating func tentativeUndone(_ sequence: SequenceNumber, by replica: Int) {
        tentativeBy[replica] = nil
    }

    mutating func checkpoint(_ sequence: SequenceNumber, _ digest: Digest, by replica: Int, at tick: UInt64) {
        if let earlier = checkpointDigests[sequence], earlier != digest {
            fail("checkpoint digests", tick, "replica \(replica) has another state digest at \(sequence)")
        }
        checkpointDigests[sequence] = digest
    }

    /// Client-observed results must equal a replay of the agreed history on a model store, and the
    /// history must respect real time (an operation that ended before another began is ordered first).
    mutating func checkLinearizability(at tick: UInt64) {
        var model = KeyValueStore()
        var results: [Digest: [UInt8]] = [:]
        var order: [Digest: Int] = [:]
        // The store after each prefix of the history (states[p]: after p requests), for read-only results.
        var states = [model]
        for sequence in history.keys.sorted() {
            for request in history[sequence] ?? [] {
                results[request.digest] = model.executeNow(request.operation).encoded()
                order[request.digest] = order.count
                states.append(model)
            }
        }
        let ordered = completions.filter { $0.readOnlyOperation == nil }
        // A read-only result must be what the store answered after some prefix p of the history, with p after
        // every operation that ended before the read began and before every one that began after it ended.
        var reads: [(completion: Completion, feasible: [Int])] = []
        for read in completions {
            guard let operation = read.readOnlyOperation else { continue }
            var low = 0
            var high = states.count - 1
            for other in ordered {
                guard let position = order[other.request] else { continue }
                if other.end < read.start { low = max(low, position + 1) }
                if other.start > read.end { high = min(high, position) }
            }
            let feasible = low <= high ? (low...high).filter { states[$0].executeReadOnlyNow(operation)?.encoded() == read.result } : []
            if feasible.isEmpty {
                fail("linearizability", tick, "a read-only result matches no state between the operations that ended before it began (\(low)) and those that began after it ended (\(high))")
                return
            }
            reads.append((read, feasible))
        }
        for a in reads {
            for b in reads where a.completion.end < b.completion.start {
                if let first = a.feasible.first, let last = b.feasible.last, first > last {
                    fail("linearizability", tick, "a read-only result that ended first saw a later state than a later read")
                    return
                }
            }
        }
        for completion in ordered {
            guard let expected = results[completion.request] else {
                fail("linearizability", tick, "a client accepted a result for a request no correct replica executed")
                return
            }
            if expected != completion.result {
                fail("linearizability", tick, "a client accepted a result that differs from the agreed history")
                return
            }
        }
        for a in ordered {
            for b in ordered where a.end < b.start {
                if let first = order[a.request], let second = order[b.request], first > second {
                    fail("linearizability", tick, "an operation that ended first is ordered after a later one")
                    return
                }
            }
        }
    }
}
