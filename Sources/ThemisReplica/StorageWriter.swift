import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization
import ThemisStorage

/// Durable mode's disk work, in order: records and snapshots for the data directory, and what may leave
/// once they are durable.
enum StorageCommand: Sendable {
    case records([[UInt8]])
    case snapshot(UInt64, [UInt8])

    /// The records of `commands` if they hold no snapshot.
    static func onlyRecords(_ commands: [StorageCommand]) -> [[UInt8]]? {
        var records: [[UInt8]] = []
        for command in commands {
            switch command {
            case .records(let more): records.append(contentsOf: more)
            case .snapshot: return nil
            }
        }
        return records
    }
}

/// Writes each frame to its channel and flushes it. A peer that does not read (its write buffer passed the high
/// watermark) gets none: its frames are dropped rather than buffered without bound, and it gets them again by
/// retransmission.
func writeFrames(_ frames: some Sequence<(channel: any Channel, buffer: ByteBuffer)>, metrics: ReplicaMetrics) {
    var dropped = 0
    for (channel, buffer) in frames {
        guard channel.isWritable else {
            dropped += 1
            continue
        }
        channel.writeAndFlush(buffer, promise: nil)
    }
    metrics.framesDroppedUnwritable.add(dropped)
}

/// Durable mode: the thread that writes and syncs the data directory while the protocol loop goes on. Work
/// arrives in one FIFO queue: the records and snapshots of some steps, then the frames those steps sent, which
/// leave only after one fdatasync made everything before them durable. While a sync runs the protocol loop goes
/// on, and the records of the steps it runs meanwhile share the next sync (group commit). While anything is
/// queued, every frame of a durable replica goes through this queue, so none overtakes the records of an
/// earlier step.
///
/// When nothing is queued, the protocol loop writes and syncs a step's records itself (`syncNow`) and then
/// writes the frames: the same one sync, without the two thread wake-ups (to this thread and back to the event
/// loop) that cost about 40 us each at the median and 200 us at the 90th percentile here, on the path of every
/// batch. Checkpoint rolls (snapshots) always go through the queue.
final class StorageWriter: Sendable {
    private let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    /// Used by the storage thread for queued work and by the protocol loop (`syncNow`) only while nothing is
    /// queued: the lock is never contended on the way of a frame.
    private let directory: Mutex<DataDirectory>
    private let failed = Atomic<Bool>(false)
    /// Submissions not yet carried out: while any is, later frames must queue behind it.
    private let inFlight = Atomic<Int>(0)
    private let onFailure: @Sendable (String) -> Void
    private let logger: Logger
    private let metrics: ReplicaMetrics
    /// Off the storage thread: makes the next segment ahead (zeros, synced: `DataDirectory.prepareSpare`) and
    /// deletes what a roll made obsolete (after the new segment was synced and its frames left).
    private let spares = DispatchQueue(label: "themis.storage.spare")
    /// The index of the last segment `prepareSpare` made and synced (its name is durable).
    private let spareReady = Atomic<UInt64>(0)
    /// Writes the states of checkpoints taken but not yet stable (`stage`), so that the roll at a stable
    /// checkpoint finds its snapshot on disk instead of writing and syncing it while frames wait.
    private let stagingQueue = DispatchQueue(label: "themis.storage.staging")
    /// The staged states on disk, by sequence number (the same buffers the core holds: no copy), and the
    /// writes queued or running (a roll waits for its own only).
    private let staged = Mutex<(written: [UInt64: [UInt8]], pending: [UInt64: ConditionLock<Bool>])>(([:], [:]))
    /// Records were written without a sync after them (lazy ones, behind a queue): the next tick may sync them.
    private let unsynced = Atomic<Bool>(false)
    /// Syncs the protocol loop made itself (`syncNow`), for the closing figures.
    private let inlineSyncs = Atomic<Int>(0)
    /// `shutdown` began: nothing more is staged.
    private let closed = Atomic<Bool>(false)
    private let path: String

    init(directory: sending DataDirectory, logger: Logger, metrics: ReplicaMetrics,
         onFailure: @escaping @Sendable (String) -> Void) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        path = directory.path
        let next = directory.nextSegmentIndex
        self.directory = Mutex(directory)
        self.logger = logger
        self.metrics = metrics
        self.onFailure = onFailure
        prepareSpare(index: next, bytes: DataDirectory.spareBytesMin)
    }

    /// Queues the deletion of `obsolete` files and the making of segment `index` ahead. A failure only means
    /// the next segment starts as an empty file (appending); the storage thread reports real disk failures.
    private func prepareSpare(index: UInt64, bytes: Int, deleting obsolete: [String] = []) {
        let path = self.path
        let logger = self.logger
        spares.async {
            DataDirectory.deleteFiles(obsolete)
            do throws(StorageError) {
                if try DataDirectory.prepareSpare(in: path, index: index, bytes: bytes) {
                    self.spareReady.store(index, ordering: .releasing)
                }
            } catch {
                logger.warning("could not prepare the next log segment (\(error)); it will grow by appending")
            }
        }
    }

    /// Writes the state of checkpoint `sequence` ahead, off the storage thread (`stageCheckpoint`). A failure
    /// only means the roll writes it itself.
    func stage(_ sequence: UInt64, state: [UInt8]) {
        guard !failed.load(ordering: .relaxed), !closed.load(ordering: .relaxed) else { return }
        let path = self.path
        let logger = self.logger
        let done = ConditionLock(value: false)
        staged.withLock { $0.pending[sequence] = done }
        stagingQueue.async {
            // Not "written" while the file may hold something else (a failure after the rename).
            self.staged.withLock { _ = $0.written.removeValue(forKey: sequence) }
            do throws(StorageError) {
                try DataDirectory.writeSnapshot(in: path, sequence: sequence, state: state)
                self.staged.withLock { staged in
                    staged.written[sequence] = state
                    // At most a few (a replica executes at most a window, two checkpoints, past its stable one;
                    // `unstage` drops those below a stable one): the oldest goes first.
                    while staged.written.count > 4, let oldest = staged.written.keys.min() { staged.written[oldest] = nil }
                }
            } catch {
                logger.warning("could not write the state of checkpoint \(sequence) ahead (\(error)); it is written when stable")
            }
            self.staged.withLock { staged in
                if staged.pending[sequence] === done { staged.pending[sequence] = nil }
            }
            done.lock()
            done.unlock(withValue: true)
        }
    }

    /// Checkpoint `sequence` is stable: the staged states below it will never be saved (the core dropped them).
    func unstage(below sequence: UInt64) {
        staged.withLock { staged in staged.written = staged.written.filter { $0.key >= sequence } }
    }

    /// True if frames may be written at once, without going through the queue: nothing is queued that they
    /// could overtake.
    var isIdle: Bool { inFlight.load(ordering: .acquiring) == 0 && !failed.load(ordering: .relaxed) }

    /// Writes `commands`, syncs if `sync` (or a snapshot asks), then writes `frames`.
    func submit(_ commands: [StorageCommand], sync: Bool, frames: [(channel: any Channel, buffer: ByteBuffer)]) {
        inFlight.wrappingAdd(1, ordering: .relaxed)
        loop.execute {
            defer { self.inFlight.wrappingSubtract(1, ordering: .releasing) }
            guard !self.failed.load(ordering: .relaxed) else { return }
            let rolled: Bool
            do throws(StorageError) {
                rolled = try self.directory.withLock { directory throws(StorageError) -> Bool in
                    var rolled = false
                    for command in commands {
                        switch command {
                        case .records(let records):
                            for record in records { try directory.append(record) }
                        case .snapshot(let sequence, let state):
                            // Staged: written ahead if the staging thread is done with it (its write waited for if not,
                            // and only its own), and only if it is this very state.
                            if let done = self.staged.withLock({ $0.pending[sequence] }) {
                                done.lock(whenValue: true)
                                done.unlock()
                            }
                            let written = self.staged.withLock { staged in
                                defer { staged.written = staged.written.filter { $0.key > sequence } }
                                return staged.written[sequence] == state
                            }
                            let spareSynced = self.spareReady.load(ordering: .acquiring) == directory.nextSegmentIndex
                            try directory.saveSnapshot(sequence, state: state, written: written, spareSynced: spareSynced)
                            rolled = true
                        }
                    }
                    // Records that need not precede the frames (not urgent) wait in the buffer for the next sync.
                    if sync || rolled {
                        try directory.sync()
                        self.unsynced.store(false, ordering: .relaxed)
                    } else if !commands.isEmpty {
                        self.unsynced.store(true, ordering: .relaxed)
                    }
                    return rolled
                }
            } catch {
                self.fail(error)
                return
            }
            // One task per event loop writes its channels' frames (a writeAndFlush from this thread would queue a
            // task, and may wake the loop, per frame).
            var byLoop: [ObjectIdentifier: (loop: any EventLoop, frames: [(channel: any Channel, buffer: ByteBuffer)])] = [:]
            for frame in frames {
                let loop = frame.channel.eventLoop
                byLoop[ObjectIdentifier(loop), default: (loop, [])].frames.append(frame)
            }
            let metrics = self.metrics
            for (_, group) in byLoop {
                let frames = group.frames
                group.loop.execute { writeFrames(frames, metrics: metrics) }
            }
            // After the frames: the files a roll made obsolete (once its segment is synced) and, after a roll, the
            // next segment, both off this thread.
            let (obsolete, next, spareBytes) = self.directory.withLock { ($0.takeObsolete(), $0.nextSegmentIndex, $0.nextSpareBytes) }
            if rolled {
                self.prepareSpare(index: next, bytes: spareBytes, deleting: obsolete)
            } else if !obsolete.isEmpty {
                self.spares.async { DataDirectory.deleteFiles(obsolete) }
            }
        }
    }

    /// Appends `records` and syncs them here, on the calling thread (the protocol loop), so that the frames of
    /// the same steps may then leave at once. Only while `isIdle`: no submission queued or running whose frames
    /// these records could overtake (frames it posted to an event loop may still wait there and leave after
    /// these: both are durable, and frames may leave in any order). The directory's lock covers the storage
    /// thread's other tasks (`figures`, `shutdown`). Returns false if the directory failed (the failure is
    /// reported as by the storage thread; nothing may be sent) or is closed (after `shutdown` began nothing
    /// more is written).
    func syncNow(_ records: [[UInt8]]) -> Bool {
        guard !failed.load(ordering: .relaxed), !closed.load(ordering: .relaxed) else { return false }
        let obsolete: [String]
        do throws(StorageError) {
            obsolete = try directory.withLock { directory throws(StorageError) -> [String] in
                for record in records { try directory.append(record) }
                try directory.sync()
                self.unsynced.store(false, ordering: .relaxed)
                return directory.takeObsolete()
            }
        } catch {
            fail(error)
            return false
        }
        inlineSyncs.wrappingAdd(1, ordering: .relaxed)
        if !obsolete.isEmpty { spares.async { DataDirectory.deleteFiles(obsolete) } }
        return true
    }

    private func fail(_ error: StorageError) {
        failed.store(true, ordering: .relaxed)
        let message = "the data directory failed (\(error)); a replica that cannot persist its votes stops"
        logger.critical("\(message)")
        onFailure(message)
    }

    var hasFailed: Bool { failed.load(ordering: .relaxed) }

    /// Lazy records written but not synced yet (read by the tick; a stale answer only delays them a tick).
    var holdsUnsynced: Bool { unsynced.load(ordering: .relaxed) }

    /// Tests: the directory's counters once the work queued so far (storage thread, spares, staging) is done.
    func figures() -> EventLoopFuture<(rolls: Int, writtenAhead: Int, preparedSegments: Int, directorySyncs: Int, syncs: Int)> {
        spares.sync {}
        stagingQueue.sync {}
        return loop.submit {
            self.directory.withLock { directory in
                (directory.rolls, directory.snapshotsWrittenAhead, directory.preparedSegments, directory.directorySyncs, directory.syncs)
            }
        }.flatMap { figures in
            // The deletions and the next spare the last submission queued.
            self.spares.sync {}
            return self.loop.makeSucceededFuture(figures)
        }
    }

    /// Makes what is queued durable, logs the directory's figures and stops the thread.
    func shutdown() async {
        closed.store(true, ordering: .relaxed)
        let summary = try? await loop.submit { () -> String in
            let inline = self.inlineSyncs.load(ordering: .relaxed)
            return self.directory.withLock { directory in
                try? directory.sync()
                DataDirectory.deleteFiles(directory.takeObsolete())
                return "\(directory.syncs) syncs (\(inline) on the protocol loop), \(directory.directorySyncs) directory syncs, "
                    + "\(directory.recordsWritten) records, \(directory.bytesWritten) bytes written, \(directory.rolls) checkpoint rolls "
                    + "(\(directory.snapshotsWrittenAhead) snapshots written ahead, \(directory.preparedSegments) segments prepared ahead)"
            }
        }.get()
        if let summary { logger.notice("data directory closed", metadata: ["io": "\(summary)"]) }
        // A spare or a staged state being written finishes first (nothing else may write in the directory after
        // this returns).
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in spares.async { done.resume() } }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in stagingQueue.async { done.resume() } }
        try? await group.shutdownGracefully()
    }
}
