#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FoundationEssentials

/// Why a data directory cannot be used. Every case names the file, so an operator knows what to look at.
public enum StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// A record other than a crash's torn last one does not check out: the log cannot be trusted.
    case corruptRecord(path: String, offset: Int, reason: String)
    /// A snapshot file does not check out (checksum, header, or the digest its checkpoint record names).
    case corruptSnapshot(path: String, reason: String)
    /// The directory belongs to another replica or protocol (`identity` differs).
    case foreignDirectory(path: String, found: String, expected: String)
    /// A record over `DataDirectory.recordBytesMax`.
    case recordTooLarge(Int)

    public var description: String {
        switch self {
        case .io(let operation, let path, let code): return "\(operation) \(path) failed: errno \(code)"
        case .corruptRecord(let path, let offset, let reason): return "\(path) is corrupt at byte \(offset): \(reason)"
        case .corruptSnapshot(let path, let reason): return "snapshot \(path) is corrupt: \(reason)"
        case .foreignDirectory(let path, let found, let expected):
            return "\(path) holds the data of \"\(found)\", not of \"\(expected)\" (wrong --data-dir?)"
        case .recordTooLarge(let bytes): return "a log record of \(bytes) bytes exceeds \(DataDirectory.recordBytesMax)"
        }
    }
}

/// What a data directory held when it was opened.
public struct RecoveredLog: Sendable {
    /// The records of every segment, oldest first.
    public var records: [[UInt8]] = []
    /// The checkpoint sequence numbers that have a snapshot file.
    public var snapshots: [UInt64] = []
    /// A record a crash left half written at the end of the last segment, cut off at `offset` (`bytes` long).
    public var tornTail: (path: String, offset: Int, bytes: Int)?
}

/// A replica's durable state in one directory: a write-ahead log in segments and the snapshots of
/// stable checkpoints.
///
/// - Records are framed as `length (4 bytes) | CRC-32C of the payload (4) | payload`, after an 8-byte
///   magic per segment (`wal-<index>.log`). `append` only buffers; `sync` writes what was buffered and
///   fdatasyncs once (group commit: one sync for everything a driver step, or several, produced).
/// - `saveSnapshot` writes `snapshot-<sequence>.state` (temporary file, fsync, rename, directory fsync;
///   unless `writeSnapshot` did so beforehand, on another thread) and starts a new segment: the records after
///   it restate what the replica must not forget, so once they are synced the older segments and snapshots
///   may go (`takeObsolete`: the caller deletes them, off its critical path). The directory stays at about one
///   checkpoint interval of log plus one snapshot.
/// - Preallocated segments: the next segment, `wal-<index + 1>.log`, is made ahead by `prepareSpare` (on
///   another thread): zeros, fsynced, linked under its name, directory fsynced. A roll then only opens it: no
///   rename, no file creation, no directory fsync on the way of the frames that wait for the roll. Records
///   overwrite its zeros in place, so an fdatasync flushes data only: no size change, no file-system journal
///   commit (about half the latency of an appending one here). A record header of length 0 ends a segment's
///   records; what follows it must be zeros (else the segment is corrupt, or, in the last segment, a torn
///   write). A segment of zeros only (a spare never used) holds no records. Without a spare, or past its end,
///   the segment grows by appending as before.
/// - Opening reads every segment. A record torn by a crash at the end of the last segment is cut off (and
///   reported in `RecoveredLog.tornTail`); anything else that does not check out is `corruptRecord`.
///
/// One owner (the protocol loop) uses it; it is not thread-safe.
public final class DataDirectory {
    public static let recordBytesMax = 256 << 20
    static let segmentMagic = Array("THMSWAL1".utf8)
    static let snapshotMagic = Array("THMSSNP1".utf8)
    static let identityFile = "themis-data"
    /// The spare of earlier versions (removed at open).
    static let legacySpareName = "spare.wal"
    /// The smallest spare `prepareSpare` makes.
    public static let spareBytesMin = 1 << 18

    public let path: String
    /// fdatasync calls so far (for the figures: group commit must keep them far below one per request).
    public private(set) var syncs = 0
    /// fsyncs of the directory itself (a roll onto a spare whose name was synced ahead needs none).
    public private(set) var directorySyncs = 0
    public private(set) var recordsWritten = 0
    public private(set) var bytesWritten = 0

    private var segmentIndex: UInt64
    private var descriptor: Int32
    /// Where the next write goes in the current segment (its records end there).
    private var writeOffset: Int
    private var buffered: [UInt8] = []
    /// The bytes of records in the segment before the current one (for the size of the next spare).
    private var previousSegmentBytes = 0
    /// Segments that started on a prepared spare (logged when the directory closes; tests).
    public private(set) var preparedSegments = 0
    /// Rolls (`saveSnapshot`), and those whose snapshot was written ahead (`written`).
    public private(set) var rolls = 0
    public private(set) var snapshotsWrittenAhead = 0
    /// Files of the checkpoint before the last `saveSnapshot`, to delete once the new segment is synced.
    /// (Segments up to this index, snapshots below this sequence number: what the last rolls left behind.)
    private var obsolete: (segmentsThrough: UInt64, snapshotsBelow: UInt64)?
    /// The segment started by the last `saveSnapshot` is synced (its records and its name): `obsolete` may go.
    private var obsoleteDeletable = false
    private var directorySyncNeeded = false

    private init(path: String, segmentIndex: UInt64, descriptor: Int32, writeOffset: Int) {
        self.path = path
        self.segmentIndex = segmentIndex
        self.descriptor = descriptor
        self.writeOffset = writeOffset
    }

    deinit { close(descriptor) }

    /// Opens (or creates) the data directory of `identity` (for example "replica 2 of a pbft cluster"),
    /// reads its log and cuts off a torn last record.
    public static func open(path: String, identity: String) throws(StorageError) -> (DataDirectory, RecoveredLog) {
        try createDirectory(path)
        try checkIdentity(directory: path, identity: identity)
        // The spare of earlier versions may be a used one (a crash after a roll's rename reached the disk only in
        // part could leave a segment's records in `spare.wal`): removed, never reused. Half-made spares and
        // snapshots (`.partial`, `.tmp`) go too.
        unlink(path + "/" + legacySpareName)
        unlink(path + "/" + legacySpareName + ".partial")
        for name in try listing(path) where name.hasSuffix(".log.partial") || (name.hasPrefix("snapshot-") && name.hasSuffix(".tmp")) {
            unlink(path + "/" + name)
        }
        var recovered = RecoveredLog()
        let names = try listing(path)
        let segments = names.compactMap(segmentIndex(of:)).sorted()
        recovered.snapshots = names.compactMap(snapshotSequence(of:)).sorted()
        // The log goes on in the last segment that holds anything, or that is empty (a roll without a spare
        // creates an empty file: the segment before it was synced whole); segments of zeros only after it are
        // spares made ahead (`prepareSpare`), left for the next roll. (A crash that tears the current segment's
        // last record while its spare exists tears the last segment that counts. A roll onto a spare whose first
        // sync a crash cut short leaves zeros: the log goes on in the segment before it, which was synced whole.)
        var contents: [(index: UInt64, bytes: [UInt8])] = []
        for index in segments { contents.append((index, try readFile(path + "/" + segmentName(index)))) }
        let current = contents.lastIndex { $0.bytes.isEmpty || $0.bytes.contains { $0 != 0 } } ?? (contents.count - 1)
        var lastValidBytes = 0
        for (position, (index, bytes)) in contents.enumerated() where position <= current {
            let file = path + "/" + segmentName(index)
            // Zeros only before the current segment: a spare is only ever made after it.
            if position < current, !bytes.isEmpty, !bytes.contains(where: { $0 != 0 }) {
                throw .corruptRecord(path: file, offset: 0, reason: "a segment of zeros only before the last one")
            }
            let (records, validBytes, problem) = parse(bytes)
            if let problem {
                guard position == current else { throw .corruptRecord(path: file, offset: validBytes, reason: problem) }
                recovered.tornTail = (file, validBytes, bytes.count - validBytes)
                try truncate(file, to: validBytes)
            }
            recovered.records.append(contentsOf: records)
            lastValidBytes = validBytes
        }
        let index = segments.isEmpty ? 1 : segments[current]
        let file = path + "/" + segmentName(index)
        let descriptor = Glibc.open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io(operation: "open", path: file, errno: errno) }
        let directory = DataDirectory(path: path, segmentIndex: index, descriptor: descriptor, writeOffset: lastValidBytes)
        if segments.isEmpty {
            directory.buffered = segmentMagic
            directory.directorySyncNeeded = true
            try directory.sync()
        } else if lastValidBytes < segmentMagic.count {
            // Even the magic was torn (the segment was being created), or a prepared spare was never used.
            directory.writeOffset = 0
            directory.buffered = segmentMagic
            try directory.sync()
        }
        return (directory, recovered)
    }

    /// Buffers one record; it is durable after the next `sync`. (Which records must be durable before which
    /// frames is the caller's business: the replica's `StorageWriter` syncs before frames that need it.)
    public func append(_ record: [UInt8]) throws(StorageError) {
        // Framed, an empty record would read as the end of a segment's records (length 0, CRC-32C 0); the
        // protocols' records always start with a kind byte.
        precondition(!record.isEmpty, "an empty log record")
        guard record.count <= Self.recordBytesMax else { throw .recordTooLarge(record.count) }
        Self.frame(record, into: &buffered)
        recordsWritten += 1
    }

    /// Makes every appended record durable (one write, one fdatasync, and a directory fsync after a roll that
    /// found no synced spare).
    public func sync() throws(StorageError) {
        if !buffered.isEmpty {
            try Self.writeAll(buffered, to: descriptor, at: writeOffset, path: currentSegmentPath)
            writeOffset += buffered.count
            bytesWritten += buffered.count
            buffered.removeAll(keepingCapacity: true)
            guard fdatasync(descriptor) == 0 else { throw .io(operation: "fdatasync", path: currentSegmentPath, errno: errno) }
            syncs += 1
        }
        if directorySyncNeeded {
            try Self.syncDirectory(path)
            directorySyncNeeded = false
            directorySyncs += 1
        }
        if obsolete != nil && buffered.isEmpty { obsoleteDeletable = true }
    }

    /// The files the last `saveSnapshot` made obsolete (older segments and snapshots), once the segment it
    /// started is synced: the caller deletes them (`deleteFiles`), on any thread. Empty before, and after the
    /// first call. (Left in place by a crash, they are read again at the next open, before the newer segment
    /// that restates what they hold.)
    /// Lists the directory (not at the roll: frames wait for the roll, not for this).
    public func takeObsolete() -> [String] {
        guard obsoleteDeletable, let (segmentsThrough, snapshotsBelow) = obsolete, let names = try? Self.listing(path) else { return [] }
        obsolete = nil
        obsoleteDeletable = false
        return names.filter { name in
            if let index = Self.segmentIndex(of: name) { return index <= segmentsThrough }
            // Not a later one: `writeSnapshot` may have written the next checkpoint's ahead.
            if let other = Self.snapshotSequence(of: name) { return other < snapshotsBelow }
            return false
        }.map { path + "/" + $0 }
    }

    public static func deleteFiles(_ files: [String]) {
        for file in files { unlink(file) }
    }

    /// Writes the snapshot of checkpoint `sequence` (unless `written`: `writeSnapshot` already made it durable)
    /// and starts a new segment; the records appended after this call MUST restate everything the replica must
    /// not forget. `spareSynced`: `prepareSpare` finished for `nextSegmentIndex` (its name is durable); a spare
    /// found otherwise is used too, with a directory fsync at the next `sync`.
    public func saveSnapshot(_ sequence: UInt64, state: [UInt8], written: Bool = false, spareSynced: Bool = false) throws(StorageError) {
        // The records before the snapshot stay in the old segment, durable before it is left.
        try sync()
        if written { snapshotsWrittenAhead += 1 } else { try Self.writeSnapshot(in: path, sequence: sequence, state: state) }
        rolls += 1
        // Not deleted yet (a crash before the new segment is synced needs them); `takeObsolete` hands them out.
        obsolete = (segmentIndex, max(sequence, obsolete?.snapshotsBelow ?? 0))
        obsoleteDeletable = false
        close(descriptor)
        previousSegmentBytes = writeOffset
        segmentIndex += 1
        // The prepared spare if there is one, otherwise a new, empty file. (Never truncated: a spare linked by
        // `prepareSpare` between a check and the open holds zeros only.)
        let prepared = access(currentSegmentPath, F_OK) == 0
        descriptor = Glibc.open(currentSegmentPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io(operation: "open", path: currentSegmentPath, errno: errno) }
        if prepared { preparedSegments += 1 }
        writeOffset = 0
        buffered = Self.segmentMagic
        directorySyncNeeded = !(prepared && spareSynced)
    }

    /// The index of the segment the next `saveSnapshot` starts (the one `prepareSpare` should make).
    public var nextSegmentIndex: UInt64 { segmentIndex + 1 }

    /// Writes the snapshot of checkpoint `sequence` durably: header, state, checksum into a temporary file, fsync,
    /// rename, directory fsync. Static, so that it may run on another thread than the directory's owner, ahead
    /// of `saveSnapshot(written: true)`: a snapshot no `stable` record names yet is ignored at open.
    public static func writeSnapshot(in path: String, sequence: UInt64, state: [UInt8]) throws(StorageError) {
        var bytes = snapshotMagic
        appendInteger(sequence, width: 8, to: &bytes)
        appendInteger(UInt64(state.count), width: 8, to: &bytes)
        appendInteger(UInt64(CRC32C.checksum(state)), width: 4, to: &bytes)
        bytes.append(contentsOf: state)
        try writeFileDurably(bytes, path: path + "/" + snapshotName(sequence))
    }

    /// Makes segment `index` ahead of its use, unless it exists: `bytes` zeros in `wal-<index>.log.partial`,
    /// fsynced, linked as `wal-<index>.log` (never replacing a file of that name: the owner may have created
    /// the segment meanwhile), then the directory fsynced. Touches no other file, so it may run on another
    /// thread than the directory's owner (one such thread per directory). Returns true if it made the segment.
    /// A spare left in a crash is a segment of zeros: the log goes on in it at the next open.
    @discardableResult
    public static func prepareSpare(in path: String, index: UInt64, bytes: Int) throws(StorageError) -> Bool {
        let segment = path + "/" + segmentName(index)
        if access(segment, F_OK) == 0 { return false }
        let partial = segment + ".partial"
        let descriptor = Glibc.open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io(operation: "create", path: partial, errno: errno) }
        defer {
            close(descriptor)
            unlink(partial)
        }
        let chunk = [UInt8](repeating: 0, count: 64 << 10)
        var offset = 0
        while offset < bytes {
            let part = min(chunk.count, bytes - offset)
            try writeAll(part == chunk.count ? chunk : Array(chunk.prefix(part)), to: descriptor, at: offset, path: partial)
            offset += part
        }
        guard fsync(descriptor) == 0 else { throw .io(operation: "fsync", path: partial, errno: errno) }
        if link(partial, segment) != 0 {
            if errno == EEXIST { return false }
            throw .io(operation: "link", path: segment, errno: errno)
        }
        try syncDirectory(path)
        return true
    }

    /// The size of the next spare: the last segment's records and a quarter more, at least `spareBytesMin`, in
    /// whole 64 KiB, at most 64 MiB (a larger segment grows by appending past its spare's end). Every byte of a
    /// spare is written and synced once more than the log needs (zeros), on the same disk as the log's syncs.
    public var nextSpareBytes: Int {
        let wanted = previousSegmentBytes + previousSegmentBytes / 4
        return min(64 << 20, max(Self.spareBytesMin, (wanted + (1 << 16) - 1) & ~((1 << 16) - 1)))
    }

    /// The snapshot of checkpoint `sequence`, its header and checksum checked.
    public func loadSnapshot(_ sequence: UInt64) throws(StorageError) -> [UInt8] {
        let file = path + "/" + Self.snapshotName(sequence)
        let bytes = try Self.readFile(file)
        let headerBytes = Self.snapshotMagic.count + 20
        guard bytes.count >= headerBytes, Array(bytes.prefix(8)) == Self.snapshotMagic else {
            throw .corruptSnapshot(path: file, reason: "no snapshot header")
        }
        let stored = Self.integer(bytes, at: 8, width: 8)
        let length = Self.integer(bytes, at: 16, width: 8)
        let checksum = UInt32(Self.integer(bytes, at: 24, width: 4))
        guard stored == sequence else { throw .corruptSnapshot(path: file, reason: "it holds checkpoint \(stored)") }
        guard length == UInt64(bytes.count - headerBytes) else {
            throw .corruptSnapshot(path: file, reason: "\(bytes.count - headerBytes) bytes of state, the header says \(length)")
        }
        let state = Array(bytes[headerBytes...])
        guard CRC32C.checksum(state) == checksum else { throw .corruptSnapshot(path: file, reason: "checksum mismatch") }
        return state
    }

    /// Removes a snapshot that did not check out (a replica recovering from its peers instead).
    public func discardSnapshot(_ sequence: UInt64) {
        unlink(path + "/" + Self.snapshotName(sequence))
    }

    /// The segment files and snapshots now in the directory, for figures and tests.
    public func files() throws(StorageError) -> [(name: String, bytes: Int)] {
        var result: [(String, Int)] = []
        for name in try Self.listing(path) where Self.segmentIndex(of: name) != nil || Self.snapshotSequence(of: name) != nil {
            var info = stat()
            let size = stat(path + "/" + name, &info) == 0 ? Int(info.st_size) : 0
            result.append((name, size))
        }
        return result.sorted { $0.0 < $1.0 }
    }

    var currentSegmentPath: String { path + "/" + Self.segmentName(segmentIndex) }

    // MARK: Format

    static func frame(_ record: [UInt8], into bytes: inout [UInt8]) {
        appendInteger(UInt64(record.count), width: 4, to: &bytes)
        appendInteger(UInt64(CRC32C.checksum(record)), width: 4, to: &bytes)
        bytes.append(contentsOf: record)
    }

    /// The records of one segment, the length of its valid prefix, and what is wrong after it (nil if nothing).
    static func parse(_ bytes: [UInt8]) -> (records: [[UInt8]], validBytes: Int, problem: String?) {
        // A prepared spare never used (zeros only): no records.
        if bytes.allSatisfy({ $0 == 0 }) { return ([], 0, nil) }
        guard bytes.count >= segmentMagic.count else { return ([], 0, bytes.isEmpty ? nil : "the segment header is cut short") }
        guard Array(bytes.prefix(segmentMagic.count)) == segmentMagic else { return ([], 0, "not a log segment (bad magic)") }
        var records: [[UInt8]] = []
        var offset = segmentMagic.count
        while offset < bytes.count {
            // The end of the records of a preallocated segment (also when fewer than 8 zeros are left).
            if bytes[offset...].allSatisfy({ $0 == 0 }) { return (records, offset, nil) }
            guard bytes.count - offset >= 8 else { return (records, offset, "a record header is cut short") }
            let length = Int(integer(bytes, at: offset, width: 4))
            let checksum = UInt32(integer(bytes, at: offset + 4, width: 4))
            // A header of length 0 not followed by zeros only (checked above).
            guard length > 0 else { return (records, offset, "a record claims 0 bytes") }
            guard length <= recordBytesMax else { return (records, offset, "a record claims \(length) bytes") }
            guard bytes.count - offset - 8 >= length else { return (records, offset, "a record of \(length) bytes is cut short") }
            let record = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            guard CRC32C.checksum(record) == checksum else { return (records, offset, "a record's checksum does not match") }
            records.append(record)
            offset += 8 + length
        }
        return (records, offset, nil)
    }

    static func segmentName(_ index: UInt64) -> String { numberedName("wal-", index, digits: 16, ".log") }

    static func segmentIndex(of name: String) -> UInt64? { number(in: name, "wal-", ".log") }

    static func snapshotName(_ sequence: UInt64) -> String { numberedName("snapshot-", sequence, digits: 20, ".state") }

    static func snapshotSequence(of name: String) -> UInt64? { number(in: name, "snapshot-", ".state") }

    /// `prefix`, `number` padded with zeros to `digits` (names sort in numeric order), `suffix`.
    static func numberedName(_ prefix: String, _ number: UInt64, digits: Int, _ suffix: String) -> String {
        let text = String(number)
        return prefix + String(repeating: "0", count: max(0, digits - text.count)) + text + suffix
    }

    /// The number in a name `numberedName` made, or nil for any other name.
    static func number(in name: String, _ prefix: String, _ suffix: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        return UInt64(name.dropFirst(prefix.count).dropLast(suffix.count))
    }

    static func appendInteger(_ value: UInt64, width: Int, to bytes: inout [UInt8]) {
        for shift in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(shift)))) }
    }

    static func integer(_ bytes: [UInt8], at offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<width { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        return value
    }

    // MARK: Files

    static func createDirectory(_ path: String) throws(StorageError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw .io(operation: "mkdir", path: path, errno: errno) }
    }

    static func checkIdentity(directory: String, identity: String) throws(StorageError) {
        let file = directory + "/" + identityFile
        if let data = FileManager.default.contents(atPath: file) {
            let found = String(String(decoding: data, as: UTF8.self).split(separator: "\n").first ?? "")
            guard found == identity else { throw .foreignDirectory(path: directory, found: found, expected: identity) }
            return
        }
        try writeFileDurably(Array((identity + "\n").utf8), path: file)
    }

    static func listing(_ path: String) throws(StorageError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw .io(operation: "list", path: path, errno: errno)
        }
    }

    static func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw .io(operation: "read", path: path, errno: errno) }
        return [UInt8](data)
    }

    /// Writes all of `bytes` at `position` of the file (or, without a position, at its current offset).
    static func writeAll(_ bytes: [UInt8], to descriptor: Int32, at position: Int? = nil, path: String) throws(StorageError) {
        var offset = 0
        while offset < bytes.count {
            let rest = offset == 0 ? bytes : Array(bytes[offset...])
            let written = if let position { pwrite(descriptor, rest, rest.count, off_t(position + offset)) } else { Glibc.write(descriptor, rest, rest.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", path: path, errno: errno)
            }
            offset += written
        }
    }

    /// Temporary file, fsync, rename, fsync of the directory.
    static func writeFileDurably(_ bytes: [UInt8], path: String) throws(StorageError) {
        let temporary = path + ".tmp"
        let descriptor = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io(operation: "create", path: temporary, errno: errno) }
        do {
            try writeAll(bytes, to: descriptor, path: temporary)
        } catch {
            close(descriptor)
            throw error
        }
        guard fsync(descriptor) == 0 else {
            let code = errno
            close(descriptor)
            throw .io(operation: "fsync", path: temporary, errno: code)
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw .io(operation: "rename", path: temporary, errno: errno) }
        try syncDirectory(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]))
    }

    static func syncDirectory(_ path: String) throws(StorageError) {
        let directory = path.isEmpty ? "." : path
        let descriptor = Glibc.open(directory, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(operation: "open", path: directory, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .io(operation: "fsync", path: directory, errno: errno) }
    }

    static func truncate(_ path: String, to length: Int) throws(StorageError) {
        let descriptor = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(descriptor) }
        guard ftruncate(descriptor, off_t(length)) == 0, fsync(descriptor) == 0 else {
            throw .io(operation: "truncate", path: path, errno: errno)
        }
    }
}
