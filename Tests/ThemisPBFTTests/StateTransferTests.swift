// Proves state transfer on pure cores (TestCluster, n = 4, K = 4, L = 8): a replica restarted empty far
// behind the others (beyond its window) fetches the latest stable checkpoint's state in chunks, checks it
// against the digest f+1 replicas vouch for, installs it, fetches the committed batches after it and ends
// with the same state; a peer serving a wrong state is detected and another peer is asked.
import Testing
import ThemisCore
import ThemisPBFTTesting
import ThemisProtocolKit
@testable import ThemisPBFT

@Suite("PBFT state transfer")
struct StateTransferTests {
    /// Runs `count` requests of client 1 through the primary, one at a time.
    func order(_ cluster: inout TestCluster, from first: UInt64, count: UInt64) {
        for timestamp in first..<(first + count) {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(truncatingIfNeeded: timestamp)]), to: replica0)
            cluster.run()
        }
    }

    /// Replica 3 is down while 30 requests are ordered (far beyond its window), then restarts empty.
    func leaveReplica3Behind(_ cluster: inout TestCluster) {
        cluster.drop = { $0.to == replica3 || $0.from == replica3 }
        order(&cluster, from: 1, count: 30)
        cluster.restart(replica3)
        cluster.drop = { _ in false }
    }

    @Test("A replica restarted empty beyond the window fetches the stable state, then the batches after it, and converges")
    func restartedReplicaCatchesUp() throws {
        var limits = Limits()
        limits.stateChunkBytes = 7  // several chunks even for a small state
        var cluster = try TestCluster(limits: limits)
        leaveReplica3Behind(&cluster)
        order(&cluster, from: 31, count: 6)
        cluster.tick(30)
        #expect(cluster.installed.contains { $0.0 == replica3 }, "replica 3 installed a fetched state")
        #expect(cluster.events.contains { if case .stateTransferFinished = $0.1, $0.0 == replica3 { return true } else { return false } })
        #expect(cluster.replicas[3].lastExecuted == cluster.replicas[0].lastExecuted)
        #expect(cluster.applicationState[3] == cluster.applicationState[0])
        // It orders new requests like everybody else.
        order(&cluster, from: 37, count: 5)
        #expect(cluster.applicationState[3] == cluster.applicationState[0])
        #expect(cluster.replicas[3].lowWatermark == cluster.replicas[0].lowWatermark)
    }

    @Test("A peer serving a state that does not match the agreed digest is detected and another peer is asked")
    func wrongStateDetected() throws {
        var cluster = try TestCluster()
        leaveReplica3Behind(&cluster)
        // Every state chunk replica 0 serves is corrupted.
        cluster.tamper = { envelope in
            guard case .stateChunk(let chunk) = envelope.message, envelope.from == replica0 else { return envelope }
            var bytes = chunk.bytes
            if !bytes.isEmpty { bytes[bytes.count - 1] ^= 0xFF }
            var forged = envelope
            forged.message = .stateChunk(StateChunk(sequence: chunk.sequence, stateDigest: chunk.stateDigest, totalBytes: chunk.totalBytes,
                                                    offset: chunk.offset, bytes: bytes, sender: chunk.sender))
            return forged
        }
        order(&cluster, from: 31, count: 6)
        cluster.tick(300)
        let rejected = cluster.events.filter { if case .stateTransferRejected = $0.1, $0.0 == replica3 { return true } else { return false } }
        #expect(!rejected.isEmpty, "replica 0 is asked first and lies")
        #expect(cluster.applicationState[3] == cluster.applicationState[0])
        #expect(cluster.replicas[3].lastExecuted == cluster.replicas[0].lastExecuted)
    }

    /// What replica 3 asked for: (peer, offset) of every FETCH-STATE, in order.
    final class Requests: @unchecked Sendable {
        var fetches: [(ReplicaID, UInt64)] = []
    }

    @Test("Issue 9 finding 6: a peer that lies is caught at its first bad chunk, and the next peer resumes after the verified chunks")
    func lyingPeerCaughtAtFirstBadChunk() throws {
        var limits = Limits()
        limits.stateChunkBytes = 7
        var cluster = try TestCluster(limits: limits)
        leaveReplica3Behind(&cluster)
        let requests = Requests()
        // Replica 0 serves its first two chunks honestly and corrupts the third (offset 14).
        cluster.tamper = { envelope in
            if case .fetchState(let fetch) = envelope.message, envelope.from == replica3 { requests.fetches.append((envelope.to, fetch.offset)) }
            guard case .stateChunk(let chunk) = envelope.message, envelope.from == replica0, chunk.offset == 14 else { return envelope }
            var forged = envelope
            forged.message = .stateChunk(StateChunk(sequence: chunk.sequence, stateDigest: chunk.stateDigest, totalBytes: chunk.totalBytes,
                                                    offset: chunk.offset, bytes: chunk.bytes.map { $0 ^ 1 }, sender: chunk.sender))
            return forged
        }
        order(&cluster, from: 31, count: 6)
        cluster.tick(300)
        let rejected = cluster.events.filter { if case .stateTransferRejected(_, replica0) = $0.1, $0.0 == replica3 { return true } else { return false } }
        #expect(rejected.count == 1, "caught at the third chunk, once")
        let fromZero = requests.fetches.filter { $0.0 == replica0 }.map(\.1)
        #expect(fromZero.prefix(3) == [0, 7, 14], "\(requests.fetches)")
        let next = requests.fetches.first { $0.0 != replica0 }
        #expect(next?.1 == 14, "the next peer is asked from the first unverified chunk on: \(requests.fetches)")
        #expect(cluster.applicationState[3] == cluster.applicationState[0])
        #expect(cluster.replicas[3].lastExecuted == cluster.replicas[0].lastExecuted)
    }

    @Test("Issue 9 finding 6: a peer claiming a huge state is refused at its first chunk (its chunk list does not match the agreed digest)")
    func hugeClaimRefusedAtOnce() throws {
        var cluster = try TestCluster()
        leaveReplica3Behind(&cluster)
        let limits = cluster.replicas[3].limits
        cluster.tamper = { envelope in
            guard case .stateChunk(let chunk) = envelope.message, envelope.from == replica0 else { return envelope }
            var forged = envelope
            forged.message = .stateChunk(StateChunk(
                sequence: chunk.sequence, stateDigest: chunk.stateDigest, totalBytes: UInt64(limits.stateBytesMax), offset: 0,
                bytes: [UInt8](repeating: 0, count: limits.stateChunkBytes),
                chunkDigests: Array(repeating: Digest.of([0]), count: limits.stateChunksMax), sender: chunk.sender))
            return forged
        }
        order(&cluster, from: 31, count: 6)
        let started = cluster.replicas[3].now
        cluster.tick(300)
        let rejected = cluster.events.filter { if case .stateTransferRejected(_, replica0) = $0.1, $0.0 == replica3 { return true } else { return false } }
        #expect(rejected.count >= 1)
        #expect(cluster.installed.contains { $0.0 == replica3 })
        #expect(cluster.replicas[3].now - started <= 300)
        #expect(cluster.applicationState[3] == cluster.applicationState[0])
    }

    @Test("Review: a first chunk claiming UInt64.max bytes is refused without arithmetic on it (it trapped)")
    func maximalTotalRefused() throws {
        var cluster = try TestCluster()
        leaveReplica3Behind(&cluster)
        cluster.tamper = { envelope in
            guard case .stateChunk(let chunk) = envelope.message, envelope.from == replica0 else { return envelope }
            var forged = envelope
            forged.message = .stateChunk(StateChunk(sequence: chunk.sequence, stateDigest: chunk.stateDigest, totalBytes: UInt64.max,
                                                    offset: 0, bytes: chunk.bytes, chunkDigests: chunk.chunkDigests, sender: chunk.sender))
            return forged
        }
        order(&cluster, from: 31, count: 6)
        cluster.tick(300)
        #expect(cluster.events.contains { if case .stateTransferRejected(_, replica0) = $0.1, $0.0 == replica3 { return true } else { return false } })
        #expect(cluster.applicationState[3] == cluster.applicationState[0])
    }

    @Test("A state chunk nobody asked for is rejected")
    func unexpectedChunkRejected() throws {
        var cluster = try TestCluster()
        let chunk = StateChunk(sequence: SequenceNumber(4), stateDigest: .zero, totalBytes: 3, offset: 0, bytes: [1, 2, 3], sender: replica2)
        #expect(cluster.deliver(.stateChunk(chunk), to: replica1) == .unexpectedStateChunk)
    }

    @Test("Malformed state bytes never trap: they are rejected")
    func malformedStateRejected() {
        var generator = SplitMix(seed: 42)
        for length in 0..<400 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            _ = CheckpointState.decode(bytes, replica: replica1, limits: Limits())
        }
        #expect(CheckpointState.decode([0, 0, 0, 0, 0, 0, 0, 9], replica: replica1, limits: Limits()) == nil)
        let state = CheckpointState(applicationSnapshot: [1, 2, 3], clientTable: ClientTable())
        #expect(CheckpointState.decode(state.encoded(), replica: replica1, limits: Limits())?.applicationSnapshot == [1, 2, 3])
        #expect(CheckpointState.decode(state.encoded() + [0], replica: replica1, limits: Limits()) == nil)
    }

    @Test("A peer flooding FETCH-BATCHES gets a burst of replies, then one per tick for its latest request")
    func fetchRepliesAreBudgeted() throws {
        var limits = Limits()
        limits.fetchRepliesBurst = 3
        var cluster = try TestCluster(limits: limits)
        for timestamp: UInt64 in 1...2 {
            cluster.submit(TestCluster.request(1, timestamp), to: replica0)
            cluster.run()
        }
        final class Count: @unchecked Sendable { var value = 0 }
        let replies = Count()
        cluster.drop = { envelope in
            if case .committedBatches = envelope.message, envelope.from == replica1, envelope.to == replica3 { replies.value += 1 }
            return envelope.to == replica3
        }
        for _ in 0..<10 {
            #expect(cluster.deliver(.fetchBatches(FetchBatches(from: SequenceNumber(1), sender: replica3)), to: replica1) == nil)
        }
        cluster.run()
        #expect(replies.value == 3, "the burst")
        cluster.tick(1, replicas: [replica1])
        #expect(replies.value == 4, "one more after a tick: the latest request over budget, the other six are gone")
        cluster.tick(5, replicas: [replica1])
        #expect(replies.value == 4, "nothing left to answer")
        #expect(cluster.deliver(.fetchBatches(FetchBatches(from: SequenceNumber(1), sender: replica3)), to: replica1) == nil)
        cluster.run()
        #expect(replies.value == 5, "the budget refilled while the peer was quiet")
    }
}

/// A seeded generator for test inputs (no global randomness).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("PBFT after a missed view change")
struct MissedViewChangeTests {
    @Test("A replica that missed a view change does not enter the later view without its NEW-VIEW, yet its state converges")
    func catchesUpWithoutFollowing() throws {
        var cluster = try TestCluster()
        // Replica 3 is cut off while primary 0 stops ordering (it still takes part in the view change)
        // and view 1 takes over among replicas 0, 1 and 2.
        cluster.drop = { envelope in
            if envelope.to == replica3 || envelope.from == replica3 { return true }
            return envelope.from == replica0 && envelope.message.normalCaseView == View(0)
        }
        cluster.broadcast(TestCluster.request(1, 1, [1]), to: [replica1, replica2])
        cluster.tick(150, replicas: [replica0, replica1, replica2, replica3])
        #expect(cluster.views() == [1, 1, 1, 0])
        #expect(cluster.executedRequests(replica1).map(\.operation) == [[1]])
        // Replica 3 is reachable again; new requests are ordered in view 1 and cross checkpoints.
        cluster.drop = { _ in false }
        for timestamp: UInt64 in 2...13 {
            cluster.submit(TestCluster.request(1, timestamp, [UInt8(timestamp)]), to: replica1)
            cluster.run()
        }
        cluster.tick(700, replicas: [replica0, replica1, replica2, replica3])
        #expect(cluster.replicas[3].view == View(0), "seeing f+1 replicas in view 1 is no NEW-VIEW")
        #expect(cluster.applicationState[3] == cluster.applicationState[1])
        #expect(cluster.replicas[3].lastExecuted == cluster.replicas[1].lastExecuted)
    }
}
