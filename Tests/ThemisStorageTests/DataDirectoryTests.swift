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
            // Not synced: the old segment is still there (deleted only after the new one is durable).
        }
        var bytes = [UInt8](FileManager.default.contents(atPath: first)!)
        bytes[8 + 8 + 1] ^= 0xFF  // a payload byte of the first record
        try DataDirectory.writeFileDurably(bytes, path: first)
        #expect(throws: StorageError.corruptRecord(path: first, offset: 8, reason: "a record's checksum does not match")) {
            _ = try DataDirectory.open(path: path, identity: "r")
        }
    }

    @Test("saveSnapshot starts a new segment; after the next sync the old segment and snapshot are gone")
    func snapshotRollsTheLog() throws {
        let path = freshDirectory("roll")
        do {
            let (directory, _) = try DataDirectory.open(path: path, identity: "r")
            try directory.append([1])
            try directory.saveSnapshot(32, state: Array(repeating: 3, count: 1000))
            try directory.append([2])
            try directory.sync()
            try directory.saveSnapshot(64, state: Array(repeating: 4, count: 500))
            try directory.append([3])
            try directory.sync()
            let names = try directory.files().map(\.name)
            #expect(names == ["snapshot-00000000000000000064.state", "wal-0000000000000003.log"])
            #expect(try directory.loadSnapshot(64) == Array(repeating: 4, count: 500))
        }
        let (directory, recovered) = try DataDirectory.open(path: path, identity: "r")
        #expect(recovered.records == [[3]])
        #expect(recovered.snapshots == [64])
        #expect(try directory.loadSnapshot(64).count == 500)
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
