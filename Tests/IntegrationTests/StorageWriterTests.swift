// The storage thread of durable mode: a checkpoint's roll takes the snapshot staged when the checkpoint was taken
// and the segment made ahead, and writes only what it did not stage; records synced on the protocol loop when
// nothing is queued.
#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Logging
import NIOCore
import Testing
@testable import ThemisStorage
@testable import ThemisReplica

@Suite("StorageWriter: staged snapshots, segments made ahead, syncs on the protocol loop")
struct StorageWriterTests {
    @Test("A roll uses the staged snapshot of the same state and the segment made ahead (no directory fsync); a state it did not stage, or another one, is written at the roll")
    func rollsTakeWhatWasStaged() async throws {
        let path = "/tmp/themis-storage-writer-test-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        let (directory, _) = try DataDirectory.open(path: path, identity: "r")
        let writer = StorageWriter(directory: directory, logger: Logger(label: "test"), metrics: ReplicaMetrics()) { _ in }
        let initial = try await writer.figures().get()
        #expect(initial.rolls == 0 && initial.directorySyncs == 1, "the directory's creation")
        #expect(access(path + "/wal-0000000000000002.log", F_OK) == 0, "the next segment, made ahead")

        let state: [UInt8] = Array(repeating: 5, count: 3_000)
        writer.stage(32, state: state)
        writer.submit([.records([[1]]), .snapshot(32, state), .records([[2]])], sync: true, frames: [])
        let first = try await writer.figures().get()
        #expect(first.rolls == 1 && first.writtenAhead == 1 && first.preparedSegments == 1)
        #expect(first.directorySyncs == 1, "the roll opened a segment whose name was synced ahead")
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0 != "themis-data" }.sorted()
        #expect(names == ["snapshot-00000000000000000032.state", "wal-0000000000000002.log", "wal-0000000000000003.log"],
                "the old segment deleted after the frames, the next one made")

        // Not staged (a state fetched by state transfer), then staged with another state: both written at the roll.
        writer.submit([.snapshot(64, [6, 4]), .records([[3]])], sync: true, frames: [])
        writer.stage(96, state: [9, 9])
        writer.submit([.snapshot(96, [9, 6]), .records([[4]])], sync: true, frames: [])
        let second = try await writer.figures().get()
        #expect(second.rolls == 3 && second.writtenAhead == 1)
        await writer.shutdown()

        let (reopened, recovered) = try DataDirectory.open(path: path, identity: "r")
        #expect(recovered.records == [[4]])
        #expect(try reopened.loadSnapshot(96) == [9, 6], "the persisted state, not the staged one")
    }

    @Test("Records synced on the calling thread while nothing is queued are on disk when syncNow returns, after those written before them; lazy records written behind the queue are reported unsynced until a sync")
    func syncNowWhenIdle() async throws {
        let path = "/tmp/themis-storage-writer-now-\(getpid())"
        try? FileManager.default.removeItem(atPath: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (directory, _) = try DataDirectory.open(path: path, identity: "r")
        let writer = StorageWriter(directory: directory, logger: Logger(label: "test"), metrics: ReplicaMetrics()) { _ in }
        let segment = path + "/wal-0000000000000001.log"
        func onDisk() throws -> [[UInt8]] { DataDirectory.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))).records }

        #expect(writer.isIdle && !writer.holdsUnsynced)
        let before = try await writer.figures().get().syncs
        #expect(writer.syncNow([[1], [2, 2]]))
        #expect(try onDisk() == [[1], [2, 2]], "durable when syncNow returns, with no task on the storage thread")
        #expect(try await writer.figures().get().syncs == before + 1, "one fdatasync for both records")

        writer.submit([.records([[3]])], sync: false, frames: [])
        _ = try await writer.figures().get()
        #expect(writer.isIdle && writer.holdsUnsynced, "a lazy record written behind the queue waits for a sync")
        #expect(try onDisk() == [[1], [2, 2]])

        #expect(try await writer.figures().get().syncs == before + 1, "the lazy record was written without a sync")
        #expect(writer.syncNow([[4]]))
        #expect(!writer.holdsUnsynced)
        #expect(try onDisk() == [[1], [2, 2], [3], [4]], "the lazy record first, in order")
        #expect(try await writer.figures().get().syncs == before + 2)

        writer.submit([.records([[5]])], sync: true, frames: [])
        _ = try await writer.figures().get()
        #expect(!writer.holdsUnsynced && writer.isIdle)
        #expect(try onDisk() == [[1], [2, 2], [3], [4], [5]])
        await writer.shutdown()
        #expect(!writer.syncNow([[6]]), "nothing is written once the directory is closed")
        #expect(try onDisk() == [[1], [2, 2], [3], [4], [5]])
    }
}
