#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import ThemisCore

/// The trusted subsystem in its own process (`themis replica --trusted-counter process`): the replica keeps
/// neither the subsystems' key nor the counters; it asks a `themis trusted-counter` process over a Unix
/// socket. Still software, still not tamper-proof (the same user runs both processes), but the key and the
/// counter files sit behind a narrow, separately auditable interface, as they would with a TEE.
///
/// Protocol (integers big-endian): a request is length UInt32 (57), op UInt8 (1 independent, 2 continuing,
/// 3 trusted MAC, 4 value), pillar UInt32, counter UInt32, value (view UInt64, order UInt64), digest (32
/// bytes). A response is length UInt32, status UInt8, then: status 0, a certificate (kind UInt8, replica
/// UInt32, pillar UInt32, counter UInt32, previous and value as two UInt64 each, tag 32 bytes; for op 4 only
/// the value); status 1 value not above (counter UInt32, requested, current); status 2 unknown counter
/// (UInt32); status 3 persistence failed and status 4 unavailable (a UTF-8 reason). One request at a time:
/// a certification costs one round trip (one per batch and replica on the hot path).
public enum TrustedCounterWire {
    static let requestBytes = 1 + 4 + 4 + 16 + 32

    static func request(op: UInt8, pillar: UInt32, counter: UInt32, value: CounterValue, digest: ThemisCore.Digest) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + requestBytes)
        append(UInt64(requestBytes), width: 4, to: &bytes)
        bytes.append(op)
        append(UInt64(pillar), width: 4, to: &bytes)
        append(UInt64(counter), width: 4, to: &bytes)
        append(value.view, width: 8, to: &bytes)
        append(value.order, width: 8, to: &bytes)
        bytes.append(contentsOf: digest.bytes)
        return bytes
    }

    static func append(_ value: UInt64, width: Int, to bytes: inout [UInt8]) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    static func integer(_ bytes: [UInt8], _ index: inout Int, _ width: Int) -> UInt64? {
        guard bytes.count - index >= width else { return nil }
        var value: UInt64 = 0
        for offset in 0..<width { value = value << 8 | UInt64(bytes[index + offset]) }
        index += width
        return value
    }

    static func encode(_ certificate: TrustedCertificate, into bytes: inout [UInt8]) {
        bytes.append(certificate.kind.rawValue)
        append(UInt64(certificate.subsystem.replica.rawValue), width: 4, to: &bytes)
        append(UInt64(certificate.subsystem.pillar), width: 4, to: &bytes)
        append(UInt64(certificate.counter), width: 4, to: &bytes)
        for word in [certificate.previous.view, certificate.previous.order, certificate.value.view, certificate.value.order] {
            append(word, width: 8, to: &bytes)
        }
        bytes.append(contentsOf: certificate.tag)
    }

    static func decodeCertificate(_ bytes: [UInt8], _ index: inout Int) -> TrustedCertificate? {
        guard let rawKind = integer(bytes, &index, 1), let kind = CertificateKind(rawValue: UInt8(rawKind)),
              let replica = integer(bytes, &index, 4), let pillar = integer(bytes, &index, 4), let counter = integer(bytes, &index, 4),
              let previousView = integer(bytes, &index, 8), let previousOrder = integer(bytes, &index, 8),
              let view = integer(bytes, &index, 8), let order = integer(bytes, &index, 8), bytes.count - index >= 32
        else { return nil }
        let tag = Array(bytes[index..<index + 32])
        index += 32
        return TrustedCertificate(kind: kind, subsystem: TrustedSubsystemID(replica: ReplicaID(UInt32(replica)), pillar: UInt32(pillar)),
                                  counter: UInt32(counter), previous: CounterValue(view: previousView, order: previousOrder),
                                  value: CounterValue(view: view, order: order), tag: tag)
    }

    /// Reads exactly `count` bytes; nil at end of stream or on an error.
    static func read(_ descriptor: Int32, count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + done, count - done) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { return nil }
            done += result
        }
        return bytes
    }

    static func write(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, bytes.count - done) }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else { return false }
            done += result
        }
        return true
    }

    static func frame(_ body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        append(UInt64(body.count), width: 4, to: &bytes)
        return bytes + body
    }

    /// Reads one length-prefixed frame of at most `max` bytes.
    static func readFrame(_ descriptor: Int32, max: Int) -> [UInt8]? {
        guard let header = read(descriptor, count: 4) else { return nil }
        var index = 0
        guard let length = integer(header, &index, 4), length <= UInt64(max) else { return nil }
        return read(descriptor, count: Int(length))
    }
}

/// The `themis trusted-counter` process's side: answers its replica's one connection, one request at a time,
/// and exits when that connection closes.
public enum TrustedCounterServer {
    /// Serves `subsystems` (index = pillar) on a Unix socket at `path` to the first connection, then exits.
    /// - Throws: `.unavailable` if the socket cannot be bound.
    public static func serve(path: String, subsystems: [SoftwareTrustedCounter]) throws(TrustedCounterError) -> Never {
        var subsystems = subsystems
        unlink(path)
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw .unavailable("socket(): errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw .unavailable("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
            raw[pathBytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 4) == 0 else { throw .unavailable("cannot listen on \(path): errno \(errno)") }
        // One replica, one connection: when it closes (the replica stopped or was killed), so does this process.
        var connection: Int32 = -1
        while connection < 0 { connection = accept(listener, nil, nil) }
        close(listener)
        unlink(path)
        while let request = TrustedCounterWire.readFrame(connection, max: TrustedCounterWire.requestBytes),
              let response = answer(request, &subsystems),
              TrustedCounterWire.write(connection, TrustedCounterWire.frame(response)) {}
        close(connection)
        exit(0)
    }

    static func answer(_ request: [UInt8], _ subsystems: inout [SoftwareTrustedCounter]) -> [UInt8]? {
        var index = 0
        guard request.count == TrustedCounterWire.requestBytes,
              let op = TrustedCounterWire.integer(request, &index, 1), let pillar = TrustedCounterWire.integer(request, &index, 4),
              let counter = TrustedCounterWire.integer(request, &index, 4), let view = TrustedCounterWire.integer(request, &index, 8),
              let order = TrustedCounterWire.integer(request, &index, 8),
              let digest = ThemisCore.Digest(bytes: request[index..<index + 32])
        else { return nil }
        guard Int(pillar) < subsystems.count else { return failure(.unavailable("no pillar \(pillar)")) }
        let value = CounterValue(view: view, order: order)
        var bytes: [UInt8] = [0]
        do {
            switch op {
            case 1: TrustedCounterWire.encode(try subsystems[Int(pillar)].certifyIndependent(digest, counter: UInt32(counter), value: value), into: &bytes)
            case 2: TrustedCounterWire.encode(try subsystems[Int(pillar)].certifyContinuing(digest, counter: UInt32(counter), value: value), into: &bytes)
            case 3: TrustedCounterWire.encode(subsystems[Int(pillar)].trustedMAC(digest), into: &bytes)
            case 4:
                let current = subsystems[Int(pillar)].value(of: UInt32(counter))
                TrustedCounterWire.append(current.view, width: 8, to: &bytes)
                TrustedCounterWire.append(current.order, width: 8, to: &bytes)
            default: return nil
            }
        } catch {
            return failure(error)
        }
        return bytes
    }

    static func failure(_ error: TrustedCounterError) -> [UInt8] {
        var bytes: [UInt8] = []
        switch error {
        case .valueNotAbove(let counter, let requested, let current):
            bytes.append(1)
            TrustedCounterWire.append(UInt64(counter), width: 4, to: &bytes)
            for word in [requested.view, requested.order, current.view, current.order] { TrustedCounterWire.append(word, width: 8, to: &bytes) }
        case .unknownCounter(let counter):
            bytes.append(2)
            TrustedCounterWire.append(UInt64(counter), width: 4, to: &bytes)
        case .persistenceFailed(let reason):
            bytes.append(3)
            bytes.append(contentsOf: Array(reason.utf8.prefix(1024)))
        case .unavailable(let reason):
            bytes.append(4)
            bytes.append(contentsOf: Array(reason.utf8.prefix(1024)))
        }
        return bytes
    }
}

/// The replica's side: a connection to the `themis trusted-counter` process, shared by the pillars.
public final class TrustedCounterConnection: Sendable {
    private let descriptor: Mutex<Int32>

    /// Connects to the socket at `path`, retrying for up to `seconds` (the process may still be starting).
    public init(path: String, seconds: Double = 5) throws(TrustedCounterError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw .unavailable("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in pathBytes.enumerated() { raw[index] = byte }
            raw[pathBytes.count] = 0
        }
        var attempts = Int(seconds * 20)
        while true {
            let candidate = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard candidate >= 0 else { throw .unavailable("socket(): errno \(errno)") }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(candidate, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if connected == 0 {
                descriptor = Mutex(candidate)
                return
            }
            close(candidate)
            attempts -= 1
            guard attempts > 0 else { throw .unavailable("the trusted-counter process does not answer on \(path)") }
            usleep(50_000)
        }
    }

    deinit { descriptor.withLock { _ = close($0) } }

    /// One request, one response. A broken connection is `.unavailable`: the replica cannot certify.
    func call(op: UInt8, pillar: UInt32, counter: UInt32, value: CounterValue, digest: ThemisCore.Digest) throws(TrustedCounterError) -> [UInt8] {
        let response: [UInt8]? = descriptor.withLock { descriptor in
            guard TrustedCounterWire.write(descriptor, TrustedCounterWire.request(op: op, pillar: pillar, counter: counter, value: value, digest: digest))
            else { return nil }
            return TrustedCounterWire.readFrame(descriptor, max: 4096)
        }
        guard let response, let status = response.first else { throw .unavailable("the trusted-counter process closed the connection") }
        var index = 1
        switch status {
        case 0: return Array(response.dropFirst())
        case 1:
            guard let counter = TrustedCounterWire.integer(response, &index, 4), let a = TrustedCounterWire.integer(response, &index, 8),
                  let b = TrustedCounterWire.integer(response, &index, 8), let c = TrustedCounterWire.integer(response, &index, 8),
                  let d = TrustedCounterWire.integer(response, &index, 8)
            else { throw .unavailable("malformed answer from the trusted-counter process") }
            throw .valueNotAbove(counter: UInt32(counter), requested: CounterValue(view: a, order: b), current: CounterValue(view: c, order: d))
        case 2:
            throw .unknownCounter(UInt32(TrustedCounterWire.integer(response, &index, 4) ?? 0))
        case 3: throw .persistenceFailed(String(decoding: response.dropFirst(), as: UTF8.self))
        default: throw .unavailable(String(decoding: response.dropFirst(), as: UTF8.self))
        }
    }
}

/// A trusted subsystem served by the `themis trusted-counter` process (one per pillar, one connection).
public struct ProcessTrustedCounter: TrustedCounter {
    public let id: TrustedSubsystemID
    let connection: TrustedCounterConnection
    /// The last value certified through this handle, per counter (the process holds the truth).
    private var values: [UInt32: CounterValue]

    public init(id: TrustedSubsystemID, connection: TrustedCounterConnection) throws(TrustedCounterError) {
        self.id = id
        self.connection = connection
        let reply = try connection.call(op: 4, pillar: id.pillar, counter: 0, value: .zero, digest: .zero)
        var index = 0
        guard let view = TrustedCounterWire.integer(reply, &index, 8), let order = TrustedCounterWire.integer(reply, &index, 8) else {
            throw .unavailable("malformed answer from the trusted-counter process")
        }
        values = [0: CounterValue(view: view, order: order)]
    }

    public func value(of counter: UInt32) -> CounterValue { values[counter] ?? .zero }

    public mutating func certifyIndependent(_ digest: ThemisCore.Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate {
        let certificate = try certificate(op: 1, digest, counter: counter, value: value)
        values[counter] = certificate.value
        return certificate
    }

    public mutating func certifyContinuing(_ digest: ThemisCore.Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate {
        let certificate = try certificate(op: 2, digest, counter: counter, value: value)
        values[counter] = certificate.value
        return certificate
    }

    public func trustedMAC(_ digest: ThemisCore.Digest) -> TrustedCertificate {
        // A MAC cannot fail in the subsystem; a broken connection yields a certificate nobody accepts.
        (try? certificate(op: 3, digest, counter: 0, value: .zero))
            ?? TrustedCertificate(kind: .mac, subsystem: id, counter: 0, previous: .zero, value: .zero, tag: [UInt8](repeating: 0, count: 32))
    }

    /// The process keeps its counters across the replica's restarts; it is not resumed from a replica's log.
    public mutating func resume(counter: UInt32, at value: CounterValue) throws(TrustedCounterError) {
        throw .unavailable("the trusted-counter process cannot resume from a replica's write-ahead log; durable mode needs --trusted-counter in-process")
    }

    /// Verification needs the key, which this process does not hold: use `TrustedVerifier` (the cluster's
    /// verifier) instead. Always false here.
    public func verify(_ certificate: TrustedCertificate, for digest: ThemisCore.Digest) -> Bool { false }

    private func certificate(op: UInt8, _ digest: ThemisCore.Digest, counter: UInt32, value: CounterValue) throws(TrustedCounterError) -> TrustedCertificate {
        let reply = try connection.call(op: op, pillar: id.pillar, counter: counter, value: value, digest: digest)
        var index = 0
        guard let certificate = TrustedCounterWire.decodeCertificate(reply, &index) else {
            throw .unavailable("malformed certificate from the trusted-counter process")
        }
        return certificate
    }
}
