#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Testing
@testable import ThemisStorage

@Suite("Data directory: CRC-framed log segments, snapshots, torn tails, corruption")
struct DataDirectoryTests {
    func freshDirectory(_ name: String) -> String {
        let path = "/tmp/themis-storage-test-\(getpid())-\(name)"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    @Test("CRC-32C matches the standard check value")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA, "RFC 3720 B.4: 32 bytes of zeros")
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43, "RFC 3720 B.4: 32 bytes of ones")
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E, "RFC 3720 B.4: incrementing bytes")
    }

    @Test("CRC-32C eight bytes at a time equals the byte-wise definition, at every length and from any seed")
    func crcSlices() {
        func reference(_ bytes: [UInt8], seed: UInt32) -> UInt32 {
            var crc = ~seed
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return ~crc
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes: [UInt8] = (0..<300).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for length in 0...bytes.count {
            let prefix = Array(bytes.prefix(length))
            #expect(CRC32C.checksum(prefix) == reference(prefix, seed: 0), "length \(length)")
            #expect(CRC32C.checksum(prefix, seed: 0xDEAD_BEEF) == reference(prefix, seed: 0xDEAD_BEEF), "length \(length), seeded")
        }
        let split = 77
        #expect(CRC32C.checksum(Array(bytes[split...]), seed: CRC32C.checksum(Array(bytes[..<split]))) == CRC32C.checksum(bytes))
    }

    @Test("records appended and synced are read back in order; unsynced ones are not on disk")
    func roundTrip() throws {
        let path = freshDirectory("roundtrip")
        do {
            let (directory, recovered) = try DataDirectory.open(path: path, identity: "replica 0 of pbft")
            #expect(recovered.records.isEmpty)
            for index in 0..<100 { try directory.append(Array(repeating: UInt8(index), count: index + 1)) }
            try directory.sync()
            try directory.append([9, 9, 9])  // never synced: lost with the process
            #expect(directory.syncs == 2)  // the segment header, then the records
        }
        let (_, recovered) = try DataDirectory.open(path: path, identity: "replica 0 of pbft")
        #expect(recovered.records.count == 100)
        #expect(recovered.records[41] == Array(repeating: 41, count: 42))
        #expect(recovered.tornTail == nil)
    }

    @Test("a record torn at the end of the last segment is cut off and reported; appending continues")
    func tornTail() throws {
        let path = freshDirectory("torn")
        let segment: String
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1, 2, 3])
            try directory.append([4, 5, 6, 7])
            try directory.sync()
            segment = directory.currentSegmentPath
        }
        // A crash in the middle of the last record: its last two bytes never reached the disk.
        let bytes = [UInt8](FileManager.default.contents(atPath: segment)!)
        try DataDirectory.writeFileDurably(Array(bytes.dropLast(2)), path: segment)
        do {
            let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
            #expect(recovered.records == [[1, 2, 3]])
            #expect(recovered.tornTail?.bytes == 10)
            try directory.append([8])
            try directory.sync()
        }
        let (_, recovered) = try DataDirectory.open(path: path, identity: "r")
        #expect(recovered.records == [[1, 2, 3], [8]])
        #expect(recovered.tornTail == nil)
    }

    @Test("a corrupt record in an earlier segment is an error naming the file and offset, never a silent cut")
    func corruptEarlierSegment() throws {
        let path = freshDirectory("corrupt")
        let first: String
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1, 2, 3, 4])
            try directory.append([5, 6])
            first = directory.currentSegmentPath
            try directory.saveSnapshot(32, state: [7, 7, 7])
            try directory.append([9])
            // Not synced: the new segment is an empty file (no spare was made), the old one is still there, and
            // it was synced whole before the roll: a bad record in it is corruption, not a torn tail.
        }
        var bytes = [UInt8](FileManager.default.contents(atPath: first)!)
        bytes[8 + 8 + 1] ^= 0xFF  // a payload byte of the first record
        try DataDirectory.writeFileDurably(bytes, path: first)
        #expect(throws: StorageError.corruptRecord(path: first, offset: 8, reason: "a record's checksum does not match")) {
            _ = try DataDirectory.open(path: path, identity: "r")
        }
    }

    @Test("saveSnapshot starts a new segment; once it is synced (not before) takeObsolete hands out the old segment and snapshot")
    func snapshotRollsTheLog() throws {
        let path = freshDirectory("roll")
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1])
            try directory.saveSnapshot(32, state: Array(repeating: 3, count: 1000))
            #expect(directory.takeObsolete().isEmpty, "the new segment is not synced yet")
            try directory.append([2])
            try directory.sync()
            #expect(directory.takeObsolete() == [path + "/wal-0000000000000001.log"])
            #expect(directory.takeObsolete().isEmpty, "handed out once")
            try directory.saveSnapshot(64, state: Array(repeating: 4, count: 500))
            try directory.append([3])
            try directory.sync()
            DataDirectory.deleteFiles(directory.takeObsolete())
            let names = try directory.files().map(\.name)
            #expect(names == ["snapshot-00000000000000000064.state", "wal-0000000000000003.log"])
            #expect(try directory.loadSnapshot(64) == Array(repeating: 4, count: 500))
        }
        let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
        #expect(recovered.records == [[3]])
        #expect(recovered.snapshots == [64])
        #expect(try directory.loadSnapshot(64).count == 500)
    }

    @Test("the next spare holds the last segment's bytes and a quarter more, in 64 KiB steps, at least spareBytesMin")
    func spareSizes() throws {
        let path = freshDirectory("spare-sizes")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (directory, _) = try DataDirectory.open(path: path, identity: "r")
        #expect(directory.nextSpareBytes == DataDirectory.spareBytesMin)
        // 8 bytes of magic and four records of 8 + 100,000 bytes: 400,040 bytes, a quarter more is 500,050,
        // rounded up to 8 x 64 KiB.
        for _ in 0..<4 { try directory.append([UInt8](repeating: 9, count: 100_000)) }
        try directory.saveSnapshot(32, state: [7])
        #expect(directory.nextSpareBytes == 8 << 16)
        // A small segment: the minimum.
        try directory.append([1])
        try directory.saveSnapshot(64, state: [7])
        #expect(directory.nextSpareBytes == DataDirectory.spareBytesMin)
    }

    @Test("a segment started on a prepared spare is written in place (its size stays the spare's) and read back up to its zeros")
    func preparedSpare() throws {
        let path = freshDirectory("spare")
        let segment: String
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1])
            try directory.sync()
            #expect(directory.nextSegmentIndex == 2)
            #expect(try DataDirectory.prepareSpare(in: path, index: 2, bytes: 1 << 20))
            #expect(try !DataDirectory.prepareSpare(in: path, index: 2, bytes: 1 << 20), "it exists: nothing to do")
            #expect(access(path + "/wal-0000000000000002.log.partial", F_OK) != 0)
            // Opened now, the log goes on in segment 1: a segment of zeros after it is a spare.
            #expect(try DataDirectory.open(path: path, identity: "r").1.records == [[1]])
            try directory.saveSnapshot(32, state: [7], spareSynced: true)
            #expect(directory.preparedSegments == 1)
            try directory.append([2, 2])
            try directory.sync()
            #expect(directory.syncs == 3, "one fdatasync for the new segment's magic and first record")
            #expect(directory.directorySyncs == 1, "only the directory's creation: the spare's name was synced ahead")
            try directory.append([3, 3, 3])
            try directory.sync()
            DataDirectory.deleteFiles(directory.takeObsolete())
            segment = directory.currentSegmentPath
            #expect(directory.nextSpareBytes == DataDirectory.spareBytesMin)
            #expect(try directory.files().map(\.name) == ["snapshot-00000000000000000032.state", "wal-0000000000000002.log"])
        }
        #expect([UInt8](FileManager.default.contents(atPath: segment)!).count == 1 << 20)
        do {
            let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
            #expect(recovered.records == [[2, 2], [3, 3, 3]])
            #expect(recovered.tornTail == nil)
            try directory.append([4])
            try directory.sync()
        }
        let (_, recovered) = try DataDirectory.open(path: path, identity: "r")
        #expect(recovered.records == [[2, 2], [3, 3, 3], [4]], "appending goes on after the records, not after the zeros")
        #expect([UInt8](FileManager.default.contents(atPath: segment)!).count == 1 << 20)
    }

    @Test("in a preallocated segment, a write torn by a crash is cut off; bytes after the zero header of an earlier segment are corruption")
    func preparedSpareTornAndCorrupt() throws {
        let path = freshDirectory("sparetorn")
        let segment: String
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try DataDirectory.prepareSpare(in: path, index: 2, bytes: 1 << 20)
            try directory.saveSnapshot(32, state: [7], spareSynced: true)
            try directory.append([5, 5])
            try directory.sync()
            segment = directory.currentSegmentPath
        }
        // A torn write: part of a record's page reached the disk (a header of length 0, then some of its bytes).
        var bytes = [UInt8](FileManager.default.contents(atPath: segment)!)
        let end = 8 + 8 + 2
        bytes[end + 9] = 0xAB
        try DataDirectory.writeFileDurably(bytes, path: segment)
        do {
            let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
            #expect(recovered.records == [[5, 5]])
            #expect(recovered.tornTail?.offset == end)
            try directory.append([6])
            try directory.sync()
            try directory.saveSnapshot(64, state: [8])  // the segment is no longer the last one
            try directory.append([7])
            try directory.sync()  // (its obsolete files are not deleted: takeObsolete is not called)
        }
        #expect(try DataDirectory.open(path: path, identity: "r").1.records == [[5, 5], [6], [7]])
        // The same bytes after the zero header of a segment that is not the last one: corruption, not a cut.
        bytes = [UInt8](FileManager.default.contents(atPath: segment)!)
        bytes += [UInt8](repeating: 0, count: 64)
        bytes[bytes.count - 9] = 0xAB
        try DataDirectory.writeFileDurably(bytes, path: segment)
        #expect(throws: StorageError.corruptRecord(path: segment, offset: end + 9, reason: "a record claims 0 bytes")) {
            _ = try DataDirectory.open(path: path, identity: "r")
        }
    }

    @Test("the `spare.wal` of earlier versions found at open (possibly a used one, after a crash in their roll) is removed, never reused; fewer than 8 zeros after the last record end the records")
    func leftoverSpareAndShortZeroTail() throws {
        let path = freshDirectory("leftover")
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1])
            try directory.sync()
        }
        var used = DataDirectory.segmentMagic
        DataDirectory.frame([9, 9, 9], into: &used)
        try DataDirectory.writeFileDurably(used + [UInt8](repeating: 0, count: 100), path: path + "/spare.wal")
        do {
            let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
            #expect(recovered.records == [[1]])
            #expect(access(path + "/spare.wal", F_OK) != 0)
            try directory.saveSnapshot(32, state: [7])
            #expect(directory.preparedSegments == 0)
            try directory.append([2])
            try directory.sync()
            DataDirectory.deleteFiles(directory.takeObsolete())
        }
        #expect(try DataDirectory.open(path: path, identity: "r").1.records == [[2]])
        var bytes = DataDirectory.segmentMagic
        DataDirectory.frame([5, 5], into: &bytes)
        #expect(DataDirectory.parse(bytes + [0, 0, 0]).problem == nil)
        #expect(DataDirectory.parse(bytes + [0, 0, 0]).records == [[5, 5]])
        #expect(DataDirectory.parse(bytes + [0, 0, 1]).problem == "a record header is cut short")
    }

    @Test("a record torn at the end of the current segment while the next segment's spare exists is cut off, not corruption; the log goes on there and the next roll takes the spare")
    func tornTailBeforeSpare() throws {
        let path = freshDirectory("tornspare")
        let segment: String
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1, 2, 3])
            try directory.append([4, 5, 6, 7])
            try directory.sync()
            segment = directory.currentSegmentPath
            try DataDirectory.prepareSpare(in: path, index: 2, bytes: 1 << 20)
        }
        let bytes = [UInt8](FileManager.default.contents(atPath: segment)!)
        try DataDirectory.writeFileDurably(Array(bytes.dropLast(2)), path: segment)
        do {
            let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
            #expect(recovered.records == [[1, 2, 3]])
            #expect(recovered.tornTail?.path == segment)
            #expect(directory.currentSegmentPath == segment)
            try directory.append([8])
            try directory.sync()
            try directory.saveSnapshot(32, state: [7])
            #expect(directory.preparedSegments == 1, "the spare left by the crash")
            try directory.append([9])
            try directory.sync()
            #expect(directory.directorySyncs == 1, "a spare found, not known to be synced: its name is synced at the roll")
        }
        #expect(try DataDirectory.open(path: path, identity: "r").1.records == [[1, 2, 3], [8], [9]])
    }

    @Test("a roll onto a spare whose first sync a crash cut short leaves zeros: the log goes on in the segment before it; zeros only before the current segment are corruption")
    func lostRollOntoSpare() throws {
        let path = freshDirectory("lostroll")
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1])
            try directory.sync()
            try DataDirectory.prepareSpare(in: path, index: 2, bytes: 1 << 20)
            try directory.saveSnapshot(32, state: [7], spareSynced: true)
            try directory.append([2])  // never synced: segment 2 still holds zeros only
        }
        do {
            let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
            #expect(recovered.records == [[1]])
            #expect(recovered.tornTail == nil)
            #expect(directory.currentSegmentPath == path + "/wal-0000000000000001.log")
            try directory.append([3])
            try directory.sync()
        }
        #expect(try DataDirectory.open(path: path, identity: "r").1.records == [[1], [3]])
        var third = DataDirectory.segmentMagic
        DataDirectory.frame([4], into: &third)
        try DataDirectory.writeFileDurably(third, path: path + "/wal-0000000000000003.log")
        #expect(throws: StorageError.corruptRecord(path: path + "/wal-0000000000000002.log", offset: 0, reason: "a segment of zeros only before the last one")) {
            _ = try DataDirectory.open(path: path, identity: "r")
        }
    }

    @Test("a snapshot written ahead (another thread) is not rewritten and not obsolete before its checkpoint; half-made files go at open")
    func snapshotWrittenAhead() throws {
        let path = freshDirectory("ahead")
        let (directory, _) = try DataDirectory.open(path: path, identity: "r")
        try DataDirectory.writeSnapshot(in: path, sequence: 32, state: [3, 2])
        try DataDirectory.writeSnapshot(in: path, sequence: 64, state: [6, 4])
        try directory.saveSnapshot(32, state: [9, 9, 9], written: true)
        #expect(try directory.loadSnapshot(32) == [3, 2], "not written again")
        try directory.append([1])
        try directory.sync()
        let obsolete = directory.takeObsolete()
        #expect(obsolete == [path + "/wal-0000000000000001.log"], "the snapshot of 64 is not obsolete")
        DataDirectory.deleteFiles(obsolete)
        try directory.saveSnapshot(64, state: [6, 4], written: true)
        try directory.append([2])
        try directory.sync()
        #expect(Set(directory.takeObsolete()) == [path + "/wal-0000000000000002.log", path + "/snapshot-00000000000000000032.state"])
        try DataDirectory.writeFileDurably([1], path: path + "/snapshot-00000000000000000096.state.tmp")
        try DataDirectory.writeFileDurably([0], path: path + "/wal-0000000000000004.log.partial")
        let (_, recovered) = try DataDirectory.open(path: path, identity: "r")
        #expect(recovered.snapshots == [32, 64], "32 was handed out, not deleted")
        #expect(access(path + "/snapshot-00000000000000000096.state.tmp", F_OK) != 0)
        #expect(access(path + "/wal-0000000000000004.log.partial", F_OK) != 0)
    }

    @Test("a damaged snapshot is reported with its path and reason")
    func corruptSnapshot() throws {
        let path = freshDirectory("snapshot")
        let (directory, _) = try DataDirectory.open(path: path, identity: "r")
        try directory.saveSnapshot(32, state: [1, 2, 3, 4, 5])
        let file = path + "/snapshot-00000000000000000032.state"
        var bytes = [UInt8](FileManager.default.contents(atPath: file)!)
        bytes[bytes.count - 1] ^= 1
        try DataDirectory.writeFileDurably(bytes, path: file)
        #expect(throws: StorageError.corruptSnapshot(path: file, reason: "checksum mismatch")) { _ = try directory.loadSnapshot(32) }
        try DataDirectory.writeFileDurably(Array(bytes.prefix(12)), path: file)
        #expect(throws: StorageError.corruptSnapshot(path: file, reason: "no snapshot header")) { _ = try directory.loadSnapshot(32) }
    }

    @Test("another replica's directory is refused with a message that names both")
    func foreignDirectory() throws {
        let path = freshDirectory("foreign")
        _ = try DataDirectory.open(path: path, identity: "replica 1 of a pbft cluster")
        #expect(throws: StorageError.foreignDirectory(path: path, found: "replica 1 of a pbft cluster", expected: "replica 2 of a pbft cluster")) {
            _ = try DataDirectory.open(path: path, identity: "replica 2 of a pbft cluster")
        }
    }
}
