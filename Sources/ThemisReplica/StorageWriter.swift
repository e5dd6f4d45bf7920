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
}

/// Durable mode: the one thread that writes and syncs the data directory, so the protocol loop never waits
/// for the disk. Work arrives in one FIFO queue: the records and snapshots of some steps, then the frames
/// those steps sent, which leave only after one fdatasync made everything before them durable. While a sync
/// runs the protocol loop goes on, and the records of the steps it runs meanwhile share the next sync
/// (group commit). Every frame of a durable replica goes through this queue, so none overtakes the records
/// of an earlier step.
final class StorageWriter: Sendable {
    private let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    private let directory: NIOLoopBoundBox<DataDirectory>
    private let failed = Atomic<Bool>(false)
    /// Submissions not yet carried out: while any is, later frames must queue behind it.
    private let inFlight = Atomic<Int>(0)
    private let onFailure: @Sendable (String) -> Void
    private let logger: Logger
    private let metrics: ReplicaMetrics
    /// Makes the next segment's spare (zeros, synced) off the storage thread: `DataDirectory.prepareSpare`.
    private let spares = DispatchQueue(label: "themis.storage.spare")
    private let path: String

    init(directory: sending DataDirectory, logger: Logger, metrics: ReplicaMetrics,
         onFailure: @escaping @Sendable (String) -> Void) {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        path = directory.path
        self.directory = NIOLoopBoundBox.makeBoxSendingValue(directory, eventLoop: loop)
        self.logger = logger
        self.metrics = metrics
        self.onFailure = onFailure
        prepareSpare(bytes: DataDirectory.spareBytesMin)
    }

    /// Queues the making of the next segment's spare. A failure only means the next segment starts as an
    /// empty file (appending); the storage thread reports real disk failures.
    private func prepareSpare(bytes: Int) {
        let path = self.path
        let logger = self.logger
        spares.async {
            do throws(StorageError) {
                try DataDirectory.prepareSpare(in: path, bytes: bytes)
            } catch {
                logger.warning("could not prepare the next log segment (\(error)); it will grow by appending")
            }
        }
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
            do throws(StorageError) {
                let directory = self.directory.value
                for command in commands {
                    switch command {
                    case .records(let records):
                        for record in records { try directory.append(record) }
                    case .snapshot(let sequence, let state):
                        try directory.saveSnapshot(sequence, state: state)
                    }
                }
                // Records that need not precede the frames (not urgent) wait in the buffer for the next sync.
                if sync { try directory.sync() }
                // A snapshot started a segment (on the spare, if it was ready): make the next one.
                if commands.contains(where: { if case .snapshot = $0 { true } else { false } }) {
                    self.prepareSpare(bytes: directory.nextSpareBytes)
                }
            } catch {
                self.failed.store(true, ordering: .relaxed)
                let message = "the data directory failed (\(error)); a replica that cannot persist its votes stops"
                self.logger.critical("\(message)")
                self.onFailure(message)
                return
            }
            var dropped = 0
            for (channel, buffer) in frames {
                // A peer that does not read: its write buffer passed the high watermark. Its frames are
                // dropped rather than buffered without bound; it gets them again by retransmission.
                guard channel.isWritable else {
                    dropped += 1
                    continue
                }
                channel.writeAndFlush(buffer, promise: nil)
            }
            self.metrics.framesDroppedUnwritable.add(dropped)
        }
    }

    var hasFailed: Bool { failed.load(ordering: .relaxed) }

    /// Makes what is queued durable, logs the directory's figures and stops the thread.
    func shutdown() async {
        let summary = try? await loop.submit { () -> String in
            let directory = self.directory.value
            try? directory.sync()
            return "\(directory.syncs) syncs, \(directory.recordsWritten) records, \(directory.bytesWritten) bytes written, "
                + "\(directory.preparedSegments) segments started on a prepared spare"
        }.get()
        if let summary { logger.notice("data directory closed", metadata: ["io": "\(summary)"]) }
        // A spare being made finishes first (nothing else may write in the directory after this returns).
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in spares.async { done.resume() } }
        try? await group.shutdownGracefully()
    }
}
