import Crypto
import Synchronization
import ThemisCore

/// A trusted subsystem's identity: one per replica and pillar (Hybster's TrInX instance).
public struct TrustedSubsystemID: Hashable, Sendable, CustomStringConvertible {
    public let replica: ReplicaID
    public let pillar: UInt32

    public init(replica: ReplicaID, pillar: UInt32) {
        self.replica = replica
        self.pillar = pillar
    }

    public var description: String { "trusted subsystem \(replica.rawValue)/\(pillar)" }
}

/// A counter value: (view, order number), compared in that order (TrInX's two 64-bit halves).
public struct CounterValue: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let view: UInt64
    public let order: UInt64

    public init(view: UInt64, order: UInt64) {
        self.view = view
        self.order = order
    }

    public static let zero = CounterValue(view: 0, order: 0)

    public static func < (lhs: CounterValue, rhs: CounterValue) -> Bool {
        (lhs.view, lhs.order) < (rhs.view, rhs.order)
    }

    public var description: String { "(\(view), \(order))" }
}

/// What a trusted subsystem certified, and how.
public enum CertificateKind: UInt8, Hashable, Sendable {
    /// Counter `counter` moved to `value` (strictly up); gaps are allowed.
    case independent = 1
    /// Counter `counter` moved from `previous` to `value` (`value >= previous`): nothing was certified on it
    /// in between, which proves a history complete (Hybster's VIEW-CHANGE).
    case continuing = 2
    /// A message authenticated by a trusted subsystem, with no counter (checkpoints, unordered messages).
    case mac = 3
}

/// A certificate made inside a trusted subsystem: a MAC under the key only the subsystems hold, over the
/// kind, the certifying subsystem, the counter, the previous and new values, and the message digest.
public struct TrustedCertificate: Hashable, Sendable {
    public let kind: CertificateKind
    public let subsystem: TrustedSubsystemID
    /// The counter's index within the subsystem (0 for `mac`).
    public let counter: UInt32
    /// The value before (`continuing`; equal to `value` for the others).
    public let previous: CounterValue
    public let value: CounterValue
    /// HMAC-SHA256 over `TrustedCertificate.certifiedBytes`.
    public let tag: [UInt8]

    public init(kind: CertificateKind, subsystem: TrustedSubsystemID, counter: UInt32, previous: CounterValue,
                value: CounterValue, tag: [UInt8]) {
        self.kind = kind
        self.subsystem = subsystem
        self.counter = counter
        self.previous = previous
        self.value = value
        self.tag = tag
    }

    /// The bytes the tag covers: a domain, the kind, the subsystem, the counter, both values and the digest.
    public static func certifiedBytes(kind: CertificateKind, subsystem: TrustedSubsystemID, counter: UInt32,
                                      previous: CounterValue, value: CounterValue, digest: ThemisCore.Digest) -> [UInt8] {
        var bytes = Array("THEMIS/TRINX/1".utf8)
        bytes.reserveCapacity(bytes.count + 1 + 4 + 4 + 4 + 4 * 8 + ThemisCore.Digest.byteCount)
        bytes.append(kind.rawValue)
        for word in [subsystem.replica.rawValue, subsystem.pillar, counter] {
            for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }
        for word in [previous.view, previous.order, value.view, value.order, digest.word0, digest.word1, digest.word2, digest.word3] {
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return bytes
    }
}

/// Why a trusted subsystem refused to certify.
public enum TrustedCounterError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An independent certificate needs a value above the counter's; a continuing one at least the counter's.
    case valueNotAbove(counter: UInt32, requested: CounterValue, current: CounterValue)
    /// The subsystem has no counter with this index.
    case unknownCounter(UInt32)
    /// The counter state could not be made durable: nothing was certified.
    case persistenceFailed(String)
    /// The process has no trusted subsystem, which the protocol needs.
    case unavailable(String)

    public var description: String {
        switch self {
        case .valueNotAbove(let counter, let requested, let current):
            return "counter \(counter) is at \(current); \(requested) would reuse or roll back a value"
        case .unknownCounter(let counter): return "no counter \(counter) in this subsystem"
        case .persistenceFailed(let reason): return "counter state not persisted: \(reason)"
        case .unavailable(let reason): return "no trusted subsystem: \(reason)"
        }
    }
}

/// Where a subsystem keeps its counters so that no value is certified twice across a crash or restart: the
/// new value MUST be durable before the certificate leaves the subsystem.
public protocol TrustedCounterStore: Sendable {
    /// The last persisted value of every counter (empty for a fresh subsystem).
    func load() throws(TrustedCounterError) -> [UInt32: CounterValue]
    /// Makes `value` the durable value of `counter`.
    func persist(counter: UInt32, value: CounterValue) throws(TrustedCounterError)
}

/// Hybster's trusted subsystem (TrInX) as a narrow interface: certify on a counter (independent or
/// continuing), make a trusted MAC, and verify the certificates of any subsystem of the cluster.
public protocol TrustedCounter: Sendable {
    var id: TrustedSubsystemID { get }
    /// The counter's current value (a restarted replica learns from it how far it went before).
    func value(of counter: UInt32) -> CounterValue
    mutating func certifyIndependent(_ digest: ThemisCore.Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate
    mutating func certifyContinuing(_ digest: ThemisCore.Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate
    func trustedMAC(_ digest: ThemisCore.Digest) -> TrustedCertificate
    /// Durable mode, once at start-up, before anything is certified: puts `counter` at `value`, the highest
    /// value of the certificates in the replica's write-ahead log. The log holds every certificate the replica
    /// sent (its record is synced before any send of its step), so a value above it, certified just before a
    /// crash, never left the replica: certifying it again cannot equivocate. This may lower the counter below
    /// its store's value (a reservation ceiling, or a certificate of the step the crash cut short). The
    /// software subsystem's persistence is, in durable mode, the replica's log: not tamper-proof either.
    /// - Throws: `.unavailable` if the subsystem cannot be resumed (the separate counter process).
    mutating func resume(counter: UInt32, at value: CounterValue) throws(TrustedCounterError)
    /// True if `certificate` was made by a subsystem of this cluster for `digest`.
    func verify(_ certificate: TrustedCertificate, for digest: ThemisCore.Digest) -> Bool
}

/// The software implementation of the trusted subsystem. It is NOT tamper-proof: the key and the counters
/// live in the replica's memory (or its own process), so whoever controls that process can make any
/// certificate. It keeps the protocol's logic honest (a correct replica cannot equivocate by mistake) and
/// makes the trust assumption explicit; real protection needs a trusted execution environment.
public struct SoftwareTrustedCounter: TrustedCounter {
    public let id: TrustedSubsystemID
    /// HMAC keyed once with the subsystems' key, copied per certificate (keying costs more than the MAC).
    private let keyed: PrekeyedMAC
    private let verifier: TrustedVerifier
    private let store: any TrustedCounterStore
    private var counters: [UInt32: CounterValue]
    private let counterCount: UInt32

    /// - Parameters:
    ///   - key: the key shared by the trusted subsystems of the cluster only (at least 32 bytes).
    ///   - counters: how many counters this subsystem has (indices `0..<counters`).
    ///   - store: where counter values are made durable before a certificate leaves.
    /// - Throws: the store's error if its state cannot be read.
    public init(id: TrustedSubsystemID, key: SymmetricKey, counters: UInt32 = 1, store: any TrustedCounterStore) throws(TrustedCounterError) {
        self.id = id
        self.keyed = PrekeyedMAC(key: key)
        self.verifier = TrustedVerifier(key: key)
        self.store = store
        self.counterCount = counters
        self.counters = try store.load()
    }

    public func value(of counter: UInt32) -> CounterValue { counters[counter] ?? .zero }

    public mutating func certifyIndependent(_ digest: ThemisCore.Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate {
        let current = try self.current(counter)
        guard value > current else { throw .valueNotAbove(counter: counter, requested: value, current: current) }
        try advance(counter, to: value)
        return certificate(.independent, counter: counter, previous: value, value: value, digest: digest)
    }

    public mutating func certifyContinuing(_ digest: ThemisCore.Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate {
        let current = try self.current(counter)
        guard value >= current else { throw .valueNotAbove(counter: counter, requested: value, current: current) }
        try advance(counter, to: value)
        return certificate(.continuing, counter: counter, previous: current, value: value, digest: digest)
    }

    public func trustedMAC(_ digest: ThemisCore.Digest) -> TrustedCertificate {
        certificate(.mac, counter: 0, previous: .zero, value: .zero, digest: digest)
    }

    public mutating func resume(counter: UInt32, at value: CounterValue) throws(TrustedCounterError) {
        _ = try current(counter)
        // The store keeps its own (higher or equal) value: it only ever grows, and a crash before the log
        // moves past it restarts at the log again.
        if value > (try store.load()[counter] ?? .zero) { try store.persist(counter: counter, value: value) }
        counters[counter] = value
    }

    public func verify(_ certificate: TrustedCertificate, for digest: ThemisCore.Digest) -> Bool {
        verifier.verify(certificate, for: digest)
    }

    private func current(_ counter: UInt32) throws(TrustedCounterError) -> CounterValue {
        guard counter < counterCount else { throw .unknownCounter(counter) }
        return counters[counter] ?? .zero
    }

    /// Durable first, then in memory: a crash between the two loses nothing that was certified.
    private mutating func advance(_ counter: UInt32, to value: CounterValue) throws(TrustedCounterError) {
        try store.persist(counter: counter, value: value)
        counters[counter] = value
    }

    private func certificate(_ kind: CertificateKind, counter: UInt32, previous: CounterValue, value: CounterValue,
                             digest: ThemisCore.Digest) -> TrustedCertificate {
        let bytes = TrustedCertificate.certifiedBytes(kind: kind, subsystem: id, counter: counter, previous: previous, value: value, digest: digest)
        let tag = keyed.mac(bytes)
        return TrustedCertificate(kind: kind, subsystem: id, counter: counter, previous: previous, value: value, tag: tag)
    }
}

/// Counter state in memory: for the simulator (its crash model decides what survives) and for tests.
public final class InMemoryCounterStore: TrustedCounterStore {
    private let values = Mutex<[UInt32: CounterValue]>([:])

    public init() {}

    public func load() throws(TrustedCounterError) -> [UInt32: CounterValue] { values.withLock { $0 } }

    public func persist(counter: UInt32, value: CounterValue) throws(TrustedCounterError) {
        values.withLock { $0[counter] = value }
    }
}

/// Checks certificates made by the trusted subsystems of a cluster. In the software implementation it holds
/// the subsystems' key, so the process that holds it could make certificates too: like
/// `SoftwareTrustedCounter`, it is not tamper-proof (with a real TEE, verification runs inside it).
public struct TrustedVerifier: Sendable {
    /// HMAC keyed once, copied per verification.
    private let keyed: PrekeyedMAC

    public init(key: SymmetricKey) {
        self.keyed = PrekeyedMAC(key: key)
    }

    /// True if `certificate` was made by a subsystem holding this key, for `digest`.
    public func verify(_ certificate: TrustedCertificate, for digest: ThemisCore.Digest) -> Bool {
        guard certificate.tag.count == SHA256.byteCount else { return false }
        let bytes = TrustedCertificate.certifiedBytes(kind: certificate.kind, subsystem: certificate.subsystem, counter: certificate.counter,
                                                      previous: certificate.previous, value: certificate.value, digest: digest)
        return keyed.isValid(certificate.tag, for: bytes)  // constant-time comparison
    }
}

/// What a replica process gives a protocol core beyond the cluster's configuration: its trusted subsystems
/// (one per pillar), for hybrid protocols, and a number that differs between incarnations of the replica.
public struct CoreEnvironment: Sendable {
    /// Opens this replica's trusted subsystem for a pillar; nil if the process has none.
    public let trustedSubsystem: (@Sendable (_ pillar: UInt32) throws(TrustedCounterError) -> any TrustedCounter)?
    /// Different for every start of the replica (random in a process, derived from the tick in the simulator):
    /// the recovery protocol's nonce, so that no answer meant for an earlier incarnation counts.
    public var incarnation: UInt64

    public init(trustedSubsystem: (@Sendable (_ pillar: UInt32) throws(TrustedCounterError) -> any TrustedCounter)?,
                incarnation: UInt64 = 0) {
        self.trustedSubsystem = trustedSubsystem
        self.incarnation = incarnation
    }

    /// No trusted subsystem (PBFT).
    public static let none = CoreEnvironment(trustedSubsystem: nil)
}
