#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Synchronization
import ThemisCore
import ThemisWire

/// Counter state in a file, made durable before a certificate leaves: the software subsystem's store.
///
/// Batched by reservation: the file holds a ceiling, not the last value. Certifying at or below the ceiling
/// needs no I/O; a value above it first writes a new ceiling (that value's view, its order number plus
/// `reservation`): write a temporary file, fsync it, rename it over the old one, fsync the directory. So
/// one fsync covers `reservation` order numbers of a view (and one more per view change), and after a crash,
/// a kill -9 or a power cut the subsystem restarts at the ceiling: above every value it certified, never
/// reusing one (values in between are skipped; gaps are allowed). A missing file is a fresh subsystem; a
/// file that does not parse is an error, never a silent reset to zero (that would allow reuse).
public final class FileCounterStore: TrustedCounterStore {
    public let path: String
    public let reservation: UInt64
    private let state: Mutex<[UInt32: CounterValue]>
    /// Files written so far (each one fsync of the file and one of the directory): for tests and figures.
    public var syncs: Int { syncCount.withLock { $0 } }
    private let syncCount = Mutex(0)

    static let magic = Array("THEMIS-TRINX/1\n".utf8)

    /// - Parameters:
    ///   - path: the state file (created on the first certificate).
    ///   - reservation: order numbers certified per write (at least 1).
    /// - Throws: `.persistenceFailed` if the file exists and cannot be read or does not parse.
    public init(path: String, reservation: UInt64 = 4096) throws(TrustedCounterError) {
        self.path = path
        self.reservation = max(1, reservation)
        self.state = Mutex(try Self.read(path: path))
    }

    public func load() throws(TrustedCounterError) -> [UInt32: CounterValue] { state.withLock { $0 } }

    public func persist(counter: UInt32, value: CounterValue) throws(TrustedCounterError) {
        let snapshot: [UInt32: CounterValue]? = state.withLock { ceilings in
            if let ceiling = ceilings[counter], value <= ceiling { return nil }
            ceilings[counter] = CounterValue(view: value.view, order: value.order &+ reservation)
            return ceilings
        }
        guard let snapshot else { return }
        try Self.write(snapshot, path: path)
        syncCount.withLock { $0 += 1 }
    }

    /// magic, count UInt32, count × (counter UInt32, view UInt64, order UInt64), SHA-256 of the above.
    static func encode(_ ceilings: [UInt32: CounterValue]) -> [UInt8] {
        var bytes = magic
        bytes.appendBigEndian(UInt32(ceilings.count))
        for counter in ceilings.keys.sorted() {
            guard let value = ceilings[counter] else { continue }
            bytes.appendBigEndian(counter)
            bytes.appendBigEndian(value.view)
            bytes.appendBigEndian(value.order)
        }
        bytes.append(contentsOf: SHA256.hash(data: bytes))
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> [UInt32: CounterValue]? {
        guard bytes.count >= magic.count + 4 + 32, Array(bytes.prefix(magic.count)) == magic else { return nil }
        let body = Array(bytes.dropLast(32))
        guard Array(SHA256.hash(data: body)) == Array(bytes.suffix(32)) else { return nil }
        var index = magic.count
        func integer(_ width: Int) -> UInt64 {
            var value: UInt64 = 0
            for offset in 0..<width { value = value << 8 | UInt64(body[index + offset]) }
            index += width
            return value
        }
        let count = Int(integer(4))
        guard body.count == magic.count + 4 + count * 20 else { return nil }
        var ceilings: [UInt32: CounterValue] = [:]
        for _ in 0..<count {
            let counter = UInt32(integer(4))
            ceilings[counter] = CounterValue(view: integer(8), order: integer(8))
        }
        return ceilings
    }

    /// Read without Foundation (`JSONFile.contents`), as `cluster.json` is: FileManager would run FoundationEssentials'
    /// file code in every Hybster replica for this one read at start.
    static func read(path: String) throws(TrustedCounterError) -> [UInt32: CounterValue] {
        let bytes: [UInt8]
        do {
            bytes = try JSONFile.contents(path: path)
        } catch .fileNotFound {
            return [:]
        } catch {
            throw .persistenceFailed("\(path) exists but cannot be read: \(error)")
        }
        guard let ceilings = decode(bytes) else {
            throw .persistenceFailed("\(path) is corrupt (bad magic, length or checksum); refusing to start from 0, which could reuse counter values")
        }
        return ceilings
    }

    /// Temporary file, fsync, rename, fsync of the directory.
    static func write(_ ceilings: [UInt32: CounterValue], path: String) throws(TrustedCounterError) {
        let bytes = encode(ceilings)
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw .persistenceFailed("cannot create \(temporary): errno \(errno)") }
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            let code = errno
            close(descriptor)
            throw .persistenceFailed("cannot write \(temporary): errno \(code)")
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw .persistenceFailed("cannot rename \(temporary) to \(path): errno \(errno)") }
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}

/// The key of a cluster's trusted subsystems, in its own file (`trusted-subsystem.key`, mode 0600), given to
/// the replicas' trusted subsystems only. With the software subsystem it lives in the replica process, so
/// whoever controls a replica's host can certify anything in its name: not tamper-proof.
public struct TrustedSubsystemKeyFile: Codable, Sendable, Hashable {
    public var kind = "trusted-subsystem"
    /// Base64, 32 bytes.
    public var key: String

    public init(key: [UInt8]) {
        self.key = Base64.encode(key)
    }

    /// A fresh random key.
    public static func generate() -> TrustedSubsystemKeyFile {
        TrustedSubsystemKeyFile(key: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    public func symmetricKey(source: String) throws(ConfigurationError) -> SymmetricKey {
        guard kind == "trusted-subsystem", let bytes = try? Base64.decode(key), bytes.count == 32 else {
            throw .invalidField(file: source, field: "key", problem: .invalidKey("a trusted-subsystem key is 32 bytes of base64"))
        }
        return SymmetricKey(data: bytes)
    }

    public static func load(path: String) throws(ConfigurationError) -> SymmetricKey {
        let file: TrustedSubsystemKeyFile = try JSONFile.read(path: path)
        return try file.symmetricKey(source: path)
    }

    public func write(to path: String) throws(ConfigurationError) {
        try JSONFile.write(self, path: path, ownerOnly: true)
    }
}
