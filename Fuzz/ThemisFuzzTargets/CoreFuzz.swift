import NIOCore
import ThemisCore
import ThemisPBFT
import ThemisWire

/// The configuration every core run uses: n = 4 (f = 1), K = 4, L = 8, a request timeout of 6 ticks and
/// small limits, so checkpoints, view changes and state transfers are a few messages away.
enum CoreSetup {
    static let configuration: ClusterConfiguration = {
        do { return try ClusterConfiguration(replicaCount: 4) } catch { fatalError("\(error)") }
    }()
    static let settings = ProtocolSettings(checkpointInterval: 4, watermarkWindow: 8, requestTimeoutTicks: 6)
    static let limits: Limits = {
        var limits = FuzzLimits.small
        limits.frameBytesMax = 64 * 1024
        return limits
    }()
    /// The replica under test: a backup in view 0 (and the primary of view 1).
    static let target = ReplicaID(1)
}

/// A tiny deterministic application: its state is the number of requests executed (8 bytes).
struct CountingApplication {
    var executed: UInt64 = 0

    mutating func execute(_ batch: ExecutionBatch) -> [[UInt8]] {
        batch.requests.map { request in
            executed &+= 1
            return [UInt8(truncatingIfNeeded: executed), UInt8(truncatingIfNeeded: request.operation.count)]
        }
    }

    var snapshot: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: executed >> (56 - 8 * $0)) } }

    mutating func restore(_ bytes: [UInt8]) {
        executed = bytes.count == 8 ? bytes.reduce(0) { $0 << 8 | UInt64($1) } : 0
    }
}

/// One PBFT core with its application, carrying out its actions the way the driver does (execution is
/// synchronous; sends are handed to `outbox`). Checks the core's own contract on every action: batches
/// execute in sequence-number order, each once; a state transfer only moves forward.
struct HarnessReplica {
    var core: PBFTReplica
    var application = CountingApplication()
    var lastExecuted: UInt64 = 0
    var outbox: [(PBFTMessage, to: ReplicaID?)] = []

    init(id: ReplicaID) {
        core = PBFTReplica(id: id, configuration: CoreSetup.configuration, settings: CoreSetup.settings, limits: CoreSetup.limits)
    }

    mutating func perform(_ actions: [PBFTAction]) throws(FuzzFailure) {
        var pending = actions[...]
        while let action = pending.popFirst() {
            switch action {
            case .send(let message, let target):
                outbox.append((message, to: target))
            case .broadcast(let message):
                outbox.append((message, to: nil))
            case .reply, .observe, .persist, .persistCheckpoint, .stageCheckpoint:
                break
            case .execute(let batch):
                guard batch.sequence.rawValue == lastExecuted + 1 else {
                    throw FuzzFailure("replica \(core.id) executes \(batch.sequence) after \(lastExecuted)")
                }
                lastExecuted = batch.sequence.rawValue
                let results = application.execute(batch)
                var more: [PBFTAction] = []
                core.executed(batch.sequence, results: results, applicationSnapshot: batch.checkpoint ? application.snapshot : nil, into: &more)
                pending.append(contentsOf: more)
            case .installState(let sequence, let snapshot):
                guard sequence.rawValue > lastExecuted else {
                    throw FuzzFailure("replica \(core.id) installs checkpoint \(sequence) after executing \(lastExecuted)")
                }
                lastExecuted = sequence.rawValue
                application.restore(snapshot)
            }
        }
    }

    mutating func receive(_ message: PBFTMessage, requestsUnverified: Bool = false) throws(FuzzFailure) {
        var actions: [PBFTAction] = []
        try? core.receive(Verified(checked: message, authenticator: [], requestsUnverified: requestsUnverified), into: &actions)
        core.flush(into: &actions)
        try perform(actions)
    }

    mutating func submit(_ request: Request) throws(FuzzFailure) {
        var actions: [PBFTAction] = []
        try? core.submit(Verified(checked: request), into: &actions)
        core.flush(into: &actions)
        try perform(actions)
    }

    mutating func tick() throws(FuzzFailure) {
        var actions: [PBFTAction] = []
        core.tick(into: &actions)
        core.flush(into: &actions)
        try perform(actions)
    }
}

/// The input format of the `core` target: a sequence of records.
///
/// - `0x00 | 0x80?`, sender (1 byte, mod n), length (2 bytes), a WireMessage payload: a replica message
///   from that sender, handed over as verified (the fuzzer plays every other replica, all Byzantine, so
///   even forged certificates reach the core: it must not trap on any of them). Bit 0x80 marks a
///   PRE-PREPARE's requests as unverified.
/// - `0x01`, length (2 bytes), a WireMessage payload: a client request.
/// - `0x02`, count: count % 32 + 1 ticks.
/// - `0x03`: a flush.
enum CoreRecord {
    case receive(sender: ReplicaID, payload: [UInt8], requestsUnverified: Bool)
    case submit(payload: [UInt8])
    case tick(count: Int)
    case flush

    static func parse(_ input: [UInt8]) -> [CoreRecord] {
        var records: [CoreRecord] = []
        var index = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count <= input.count - index else { return nil }
            defer { index += count }
            return input[index..<index + count]
        }
        func length() -> Int? { take(2).map { Int($0[$0.startIndex]) << 8 | Int($0[$0.startIndex + 1]) } }
        while let op = take(1)?.first {
            switch op & 3 {
            case 0:
                guard let sender = take(1)?.first, let count = length(), let payload = take(count) else { return records }
                records.append(.receive(sender: ReplicaID(UInt32(sender) % 4), payload: Array(payload), requestsUnverified: op & 0x80 != 0))
            case 1:
                guard let count = length(), let payload = take(count) else { return records }
                records.append(.submit(payload: Array(payload)))
            case 2:
                guard let count = take(1)?.first else { return records }
                records.append(.tick(count: Int(count % 32) + 1))
            default:
                records.append(.flush)
            }
        }
        return records
    }

    var bytes: [UInt8] {
        func length(_ count: Int) -> [UInt8] { [UInt8(count >> 8), UInt8(count & 0xFF)] }
        switch self {
        case .receive(let sender, let payload, let unverified):
            return [unverified ? 0x80 : 0x00, UInt8(sender.rawValue)] + length(payload.count) + payload
        case .submit(let payload):
            return [0x01] + length(payload.count) + payload
        case .tick(let count):
            return [0x02, UInt8(count - 1)]
        case .flush:
            return [0x03]
        }
    }
}

/// Replica 1's core fed the records. The shell's checks stay: the message decodes under the limits, its
/// sender is the (authenticated) link's peer and not replica 1 itself.
enum CoreFuzz {
    static func run(_ input: [UInt8]) throws(FuzzFailure) {
        var replica = HarnessReplica(id: CoreSetup.target)
        for record in CoreRecord.parse(input) {
            switch record {
            case .receive(let sender, let payload, let unverified):
                guard sender != CoreSetup.target, case .replica(let inner)? = decode(payload),
                      let message = try? PBFTCodec.decode(inner, limits: CoreSetup.limits).message, message.sender == sender else { continue }
                try replica.receive(message, requestsUnverified: unverified)
            case .submit(let payload):
                guard case .request(let request)? = decode(payload) else { continue }
                try replica.submit(request)
            case .tick(let count):
                for _ in 0..<count { try replica.tick() }
            case .flush:
                var actions: [PBFTAction] = []
                replica.core.flush(into: &actions)
                try replica.perform(actions)
            }
            replica.outbox.removeAll(keepingCapacity: true)
        }
    }

    static func decode(_ payload: [UInt8]) -> WireMessage? {
        var buffer = ByteBuffer(bytes: payload)
        return try? WireCodec.decode(&buffer, limits: CoreSetup.limits)
    }
}
