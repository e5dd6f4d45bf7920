import Logging
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import Synchronization
import ThemisCore
import ThemisCrypto
import ThemisDriver
import ThemisHybster
import ThemisPBFT
import ThemisStorage
import ThemisTransport
import ThemisWire

/// The NIO shell around the one `ReplicaDriver`: it owns the driver on one event loop (the protocol loop),
/// hands it the verified inputs of each read burst, and implements its effects (`NIOEffects`): frames for
/// one peer are gathered in one buffer and written with one flush once the steps already queued on the loop
/// have run (one syscall per peer per burst of steps); `execute` batches go to the application executor,
/// which reports back through `executed`. It also bounds what waits for the loop (read backpressure) and
/// answers status queries.
/// The shell's bounds on what waits for the protocol loop and on what a link buffers.
enum ProtocolDriverLimits {
    /// Status queries that may wait at once; more are dropped (the client asks again).
    static let statusQueriesPendingMax = 256
    /// Read backpressure: once this many verified inputs, or this many bytes of them, wait for the
    /// protocol loop, the connection that delivered the last burst stops reading; paused connections read
    /// again below both low marks. Each connection can add one read burst past the high marks before
    /// it is paused (at most a frame and the 4 reads of 64 KiB NIO makes per read event).
    static let inputsQueuedHigh = 16_384
    static let inputsQueuedLow = 4_096
    static let inputBytesQueuedHigh = 64 << 20
    static let inputBytesQueuedLow = 16 << 20
    /// Read-only requests handed to the application and not yet answered; more are dropped (the client
    /// falls back to an ordered request). Each holds at most an operation (`Limits.operationBytesMax`).
    static let readOnlyInFlightMax = 1_024


    /// The write-buffer high watermark of a link: a few frames for a replica, a few replies for a client.
    static func writeHighWatermark(for peer: Principal, limits: Limits) -> Int {
        switch peer {
        case .replica: 2 * limits.frameBytesMax + (1 << 20)
        case .client: max(64 * 1024, 4 * (limits.resultBytesMax + 1024))
        }
    }
}

/// What `ReplicaServer` needs of its driver, whatever the protocol.
protocol ShellDriver: Sendable {
    var loop: any EventLoop { get }
    var metrics: ReplicaMetrics { get }
    func tick()
    func executed(_ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?)
    func closeAllLinks() -> EventLoopFuture<Void>
    func connectedReplicaCount() -> EventLoopFuture<Int>
    /// Adds the handshake and the replica's inbound handler to a new connection's pipeline.
    func configure(_ channel: any Channel, keyring: Keyring, cluster: ClusterFile, admit: @escaping @Sendable (Principal) -> Bool) throws
    /// Durable mode, before any link is up: opens the data directory on the protocol loop, restores the core
    /// from it and keeps it for the records to come.
    func openDataDirectory(_ path: String, identity: String, recoverFromPeers: Bool) -> EventLoopFuture<RestoreSummary>
    /// Durable mode: makes what is queued durable and stops the storage thread.
    func closeDataDirectory() async
    /// What `/status` shows, read on the protocol loop (no application snapshot: cheap to ask often).
    func liveStatus() -> EventLoopFuture<LiveStatus>
}

/// The replica's state for `/status`.
struct LiveStatus: Sendable {
    var id: UInt32
    var view: UInt64
    var primary: UInt32
    var lastExecuted: UInt64
    var stableCheckpoint: UInt64
    var recovering: Bool
    var replicasLinked: [UInt32]
    var clientsConnected: Int
    var inputsQueued: Int
    var inputBytesQueued: Int
    var readOnlyWaiting: Int
    var statusQueriesWaiting: Int
}

/// What a replica found in its data directory at start-up.
struct RestoreSummary: Sendable {
    var records = 0
    var snapshots: [UInt64] = []
    /// A record torn by a crash, cut off: where, and how many bytes.
    var tornTail: String?
    /// A snapshot that did not check out and was discarded (`--recover-from-peers`).
    var discardedSnapshot: String?
}

/// Why a data directory cannot be used at start-up (printed as one line).
struct DataDirectoryError: Error, CustomStringConvertible {
    let description: String
}

/// Generic over the protocol; the hot methods are also compiled specialized for each plug-in of
/// `ProtocolCatalog` (`@_specialize`): NIO and `ReplicaServer` reach them through protocol witnesses, which
/// would otherwise run the generic code (witness-table calls for every core and codec call, measured about 10 %
/// of throughput).
final class ProtocolDriver<Plugin: ProtocolPlugin>: ShellDriver {
    typealias Message = Plugin.Core.Message

    struct State {
        var driver: ReplicaDriver<Plugin>
        var effects: NIOEffects<Plugin>
        /// Status queries waiting for the one status job in flight (all are answered by it).
        var statusWaiters: [(nonce: UInt64, channel: any Channel)] = []
        /// Read-only requests in the one job with the application now, and those waiting for it to end
        /// (`readOnlyInFlightMax` for both together).
        var readsInFlight = 0
        var readsWaiting: [Request] = []
    }

    let loop: any EventLoop
    let keyring: Keyring
    /// The largest frame a client may send after its handshake (`MessageBounds.clientFrameBytesMax`),
    /// computed once for every connection's frame decoder.
    let clientFrameBytesMax: Int
    let limits: Limits
    let executor: ApplicationExecutor
    let logger: Logger
    let metrics: ReplicaMetrics
    private let state: NIOLoopBoundBox<State>
    /// Verified inputs handed to the protocol loop and not yet fed to the core, over all connections.
    private let inputsQueued = Atomic<Int>(0)
    /// Their bytes (`DriverInput.estimatedBytes`).
    private let inputBytesQueued = Atomic<Int>(0)
    /// Durable mode: the thread that writes the data directory (for shutdown).
    private let storageWriter = NIOLockedValueBox<StorageWriter?>(nil)
    /// Connections that stopped reading because the protocol loop fell behind.
    private let paused = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    /// Inputs delivered and not yet stepped (`deliver`), in arrival order.
    private let inbox = NIOLockedValueBox(Inbox())

    struct Inbox {
        var inputs: [DriverInput<Message>] = []
        var bytes = 0
        /// Links that came up (`register`) or went down (`unregister`), in that order. They go through the
        /// inbox so that a connection is registered before its first input is stepped, as when every burst
        /// was a task of its own queued behind the connection's `register`.
        var links: [(peer: Principal, channel: any Channel, up: Bool)] = []
        /// A task that steps the inbox is queued on the protocol loop.
        var stepQueued = false
    }

    init(core: Plugin.Core, loop: any EventLoop, keyring: Keyring, executor: ApplicationExecutor, logger: Logger,
         metrics: ReplicaMetrics, onFailure: @escaping @Sendable (String) -> Void = { _ in }) {
        self.loop = loop
        self.keyring = keyring
        self.limits = core.limits
        self.clientFrameBytesMax = MessageBounds(
            limits: core.limits, authenticators: keyring.scheme.authenticatorSizes(replicaCount: core.configuration.replicaCount)
        ).clientFrameBytesMax
        self.executor = executor
        self.logger = logger
        self.metrics = metrics
        var effects = NIOEffects<Plugin>(executor: executor, logger: logger, metrics: metrics)
        effects.onFailure = onFailure
        self.state = NIOLoopBoundBox.makeBoxSendingValue(
            State(driver: ReplicaDriver(core: core, keyring: keyring), effects: effects), eventLoop: loop)
    }

    func closeDataDirectory() async {
        guard let writer = storageWriter.withLockedValue({ $0 }) else { return }
        // What the last steps queued, then the thread stops.
        try? await loop.submit {
            self.state.withValue { state in
                let (commands, _) = state.effects.takeStorageWork()
                writer.submit(commands, sync: true, frames: [])
            }
        }.get()
        await writer.shutdown()
    }

    func openDataDirectory(_ path: String, identity: String, recoverFromPeers: Bool) -> EventLoopFuture<RestoreSummary> {
        loop.submit {
            guard Plugin.supportsDurability else {
                throw DataDirectoryError(description: "\(Plugin.name) has no durable mode yet: run it without --data-dir")
            }
            let (directory, recovered) = try DataDirectory.open(path: path, identity: identity)
            var summary = RestoreSummary(records: recovered.records.count, snapshots: recovered.snapshots)
            if let torn = recovered.tornTail {
                summary.tornTail = "\(torn.path) at byte \(torn.offset) (\(torn.bytes) bytes cut off)"
            }
            var records: [Plugin.Core.Record] = []
            records.reserveCapacity(recovered.records.count)
            for (index, bytes) in recovered.records.enumerated() {
                do {
                    records.append(try Plugin.decodeRecord(bytes, limits: self.limits))
                } catch {
                    throw DataDirectoryError(description: "record \(index) of the log in \(path) cannot be decoded (\(error)); the log cannot be trusted")
                }
            }
            var snapshotProblem: StorageError?
            let available = Set(recovered.snapshots)
            let load: (SequenceNumber) -> [UInt8]? = { sequence in
                guard available.contains(sequence.rawValue) else { return nil }
                do throws(StorageError) {
                    return try directory.loadSnapshot(sequence.rawValue)
                } catch {
                    snapshotProblem = error
                    return nil
                }
            }
            try self.state.withValue { state throws(RestoreError) in
                state.effects.durable = true
                try state.driver.restore(records, snapshot: load, effects: &state.effects)
            }
            if let snapshotProblem {
                guard recoverFromPeers else {
                    throw DataDirectoryError(description: "\(snapshotProblem); start with --recover-from-peers to discard it and fetch the state from the other replicas")
                }
                summary.discardedSnapshot = "\(snapshotProblem)"
            }
            let writer = StorageWriter(directory: directory, logger: self.logger, metrics: self.metrics, onFailure: self.state.value.effects.onFailure)
            self.state.value.effects.storage = writer
            self.storageWriter.withLockedValue { $0 = writer }
            return summary
        }
    }

    var id: ReplicaID { keyring.me.replicaID ?? ReplicaID(0) }

    // MARK: Inputs (callable from any event loop)

    /// Hands one read burst of verified inputs to the protocol loop.
    ///
    /// Bursts are gathered: the inputs go to the inbox, and one task queued on the protocol loop feeds the core
    /// everything the inbox holds when it runs, in one step. So the inputs that every connection read in one
    /// pass of the loop (say forty clients' requests on forty connections, or PREPAREs from three replicas)
    /// make one step: one batch proposed at its end instead of a batch of one for the first request and a
    /// wait for the others, and one write per peer.
    /// - Returns: true if the loop is behind (`inputsQueuedHigh` inputs wait): the caller SHOULD `pause`
    ///   its connection, so that a flood of valid messages queues in the peer's socket, not in our memory.
    @discardableResult
    @_specialize(where Plugin == PBFT)
    @_specialize(where Plugin == Hybster)
    func deliver(_ inputs: [DriverInput<Message>]) -> Bool {
        let bytes = inputs.reduce(0) { $0 + Self.estimatedBytes($1) }
        let queued = inputsQueued.wrappingAdd(inputs.count, ordering: .relaxed).newValue
        let queuedBytes = inputBytesQueued.wrappingAdd(bytes, ordering: .relaxed).newValue
        let queueStep = inbox.withLockedValue { inbox in
            inbox.inputs.append(contentsOf: inputs)
            inbox.bytes += bytes
            defer { inbox.stepQueued = true }
            return !inbox.stepQueued
        }
        if queueStep { loop.execute { self.stepInbox() } }
        return queued > ProtocolDriverLimits.inputsQueuedHigh || queuedBytes > ProtocolDriverLimits.inputBytesQueuedHigh
    }

    /// Puts a link change in the inbox (applied before the inputs that the same task steps).
    private func queueLink(_ peer: Principal, channel: any Channel, up: Bool) {
        let queueStep = inbox.withLockedValue { inbox in
            inbox.links.append((peer, channel, up))
            defer { inbox.stepQueued = true }
            return !inbox.stepQueued
        }
        if queueStep { loop.execute { self.stepInbox() } }
    }

    /// Applies the inbox's link changes, in order, then feeds the core every input in the inbox in one step
    /// (on the protocol loop). A connection's `register` is in the inbox before its first input, so it is
    /// applied first; an `unregister` applied before inputs read earlier on the same connection only drops
    /// their answers, which that closed connection could not carry anyway.
    @_specialize(where Plugin == PBFT)
    @_specialize(where Plugin == Hybster)
    private func stepInbox() {
        let (inputs, bytes, links) = inbox.withLockedValue { inbox in
            defer {
                inbox.inputs = []
                inbox.bytes = 0
                inbox.links = []
                inbox.stepQueued = false
            }
            return (inbox.inputs, inbox.bytes, inbox.links)
        }
        for link in links {
            if link.up { applyRegister(link.peer, channel: link.channel) } else { applyUnregister(link.peer, channel: link.channel) }
        }
        guard !inputs.isEmpty else { return }
        step { driver, effects in
            if effects.metrics.exporting {
                let now = ContinuousClock.now
                for case .request(let verified) in inputs { effects.admitted(verified.message, at: now) }
            }
            driver.deliver(inputs, effects: &effects)
        }
        let left = inputsQueued.wrappingSubtract(inputs.count, ordering: .relaxed).newValue
        let leftBytes = inputBytesQueued.wrappingSubtract(bytes, ordering: .relaxed).newValue
        if left < ProtocolDriverLimits.inputsQueuedLow && leftBytes < ProtocolDriverLimits.inputBytesQueuedLow { resumePaused() }
    }

    /// Stops reading from `channel` until the protocol loop catches up.
    func pause(_ channel: any Channel) {
        paused.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        channel.setOption(.autoRead, value: false).whenFailure { _ in }
        metrics.readPauses.add()
        // The loop may have caught up before the channel was registered: check again.
        if inputsQueued.load(ordering: .relaxed) < ProtocolDriverLimits.inputsQueuedLow && inputBytesQueued.load(ordering: .relaxed) < ProtocolDriverLimits.inputBytesQueuedLow {
            resumePaused()
        }
    }

    private func resumePaused() {
        let channels = paused.withLockedValue { paused in
            defer { paused.removeAll() }
            return Array(paused.values)
        }
        for channel in channels { channel.setOption(.autoRead, value: true).whenFailure { _ in } }
    }

    /// What an input holds, by the protocol's size model (for the queue's byte bound).
    static func estimatedBytes(_ input: DriverInput<Message>) -> Int {
        switch input {
        case .message(let verified): Plugin.estimatedBytes(of: verified.message) + verified.authenticator.count
        case .request(let verified), .readOnly(let verified): 64 + verified.message.operation.count + verified.message.authenticator.count
        }
    }

    @_specialize(where Plugin == PBFT)
    @_specialize(where Plugin == Hybster)
    func tick() {
        loop.execute {
            self.step { driver, effects in driver.tick(effects: &effects) }
            // Lazy records (safe to lose in a crash) ride along with the next urgent sync. A tick syncs them only
            // if no sync was asked for during the whole tick before: none waits more than two ticks, and a busy
            // replica makes no extra sync for them (at 40 clients: 1.06 syncs per batch, 1.26 when every tick made one).
            self.state.withValue { state in
                guard let storage = state.effects.storage else { return }
                let synced = state.effects.syncsRequested != state.effects.syncsRequestedAtTick
                defer { state.effects.syncsRequestedAtTick = state.effects.syncsRequested }
                guard !synced, state.effects.hasStorageWork || storage.holdsUnsynced else { return }
                let (commands, _) = state.effects.takeStorageWork()
                state.effects.syncsRequested &+= 1
                storage.submit(commands, sync: true, frames: [])
            }
        }
    }

    @_specialize(where Plugin == PBFT)
    @_specialize(where Plugin == Hybster)
    /// Always hops through `loop.execute`, never steps at once: an inline executor (`SynchronousApplication`)
    /// calls this from inside a step, under its lock.
    func executed(_ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?) {
        metrics.batchesExecuted.add()
        metrics.requestsExecuted.add(results.count)
        metrics.batchSize?.record(Double(results.count))
        metrics.lastExecuted?.set(Double(sequence.rawValue))
        loop.execute { self.step { driver, effects in
            if let start = effects.executionStarted.removeValue(forKey: sequence.rawValue) {
                effects.metrics.executionSeconds?.record(ContinuousClock.now - start)
            }
            driver.executed(sequence, results: results, applicationSnapshot: applicationSnapshot, effects: &effects)
        } }
    }

    func register(_ peer: Principal, channel: any Channel) {
        queueLink(peer, channel: channel, up: true)
    }

    func unregister(_ peer: Principal, channel: any Channel) {
        queueLink(peer, channel: channel, up: false)
    }

    private func applyRegister(_ peer: Principal, channel: any Channel) {
        switch peer {
        case .replica(let replica):
            if let old = state.value.effects.replicas[replica], old !== channel { old.close(promise: nil) }
            state.value.effects.replicas[replica] = channel
        case .client(let client):
            if let old = state.value.effects.clients[client], old !== channel { old.close(promise: nil) }
            state.value.effects.clients[client] = channel
        }
        logger.debug("link up", metadata: ["peer": "\(peer)"])
    }

    private func applyUnregister(_ peer: Principal, channel: any Channel) {
        switch peer {
        case .replica(let replica):
            if state.value.effects.replicas[replica] === channel { state.value.effects.replicas[replica] = nil }
        case .client(let client):
            if state.value.effects.clients[client] === channel { state.value.effects.clients[client] = nil }
        }
    }

    func liveStatus() -> EventLoopFuture<LiveStatus> {
        loop.submit {
            let state = self.state.value
            let core = state.driver.core
            return LiveStatus(
                id: core.id.rawValue, view: core.view.rawValue, primary: core.configuration.primary(of: core.view).rawValue,
                lastExecuted: core.lastExecuted.rawValue, stableCheckpoint: core.stableCheckpoint.rawValue, recovering: core.isRecovering,
                replicasLinked: state.effects.replicas.keys.map(\.rawValue).sorted(), clientsConnected: state.effects.clients.count,
                inputsQueued: self.inputsQueued.load(ordering: .relaxed), inputBytesQueued: self.inputBytesQueued.load(ordering: .relaxed),
                readOnlyWaiting: state.readsInFlight + state.readsWaiting.count, statusQueriesWaiting: state.statusWaiters.count)
        }
    }

    /// Answers a status query after every batch handed to the application so far has executed. Queries
    /// that arrive while a status job runs wait for it and share its answer: the application is snapshotted
    /// and hashed once per job, not once per query (any client may ask), and at most
    /// `statusQueriesPendingMax` queries wait.
    func status(nonce: UInt64, channel: any Channel) {
        loop.execute {
            let waiting = self.state.value.statusWaiters.count
            guard waiting < ProtocolDriverLimits.statusQueriesPendingMax else {
                self.metrics.statusQueriesDropped.add()
                return
            }
            self.state.value.statusWaiters.append((nonce, channel))
            if waiting == 0 { self.submitStatusJob() }
        }
    }

    /// One status job for every query waiting now; queries arriving meanwhile start the next one.
    private func submitStatusJob() {
        let core = state.value.driver.core
        let replica = core.id
        let view = core.view
        let stable = core.stableCheckpoint
        let links = UInt32(state.value.effects.replicas.count)
        let waiters = state.value.statusWaiters.count
        executor.submit(.status { lastExecuted, digest in
            let batches = UInt64(self.metrics.batchesExecuted.value)
            let requests = UInt64(self.metrics.requestsExecuted.value)
            let peak = ProcessMemory.peakResidentBytes() ?? 0
            self.loop.execute {
                let answered = Array(self.state.value.statusWaiters.prefix(waiters))
                self.state.value.statusWaiters.removeFirst(answered.count)
                for (nonce, channel) in answered {
                    let report = StatusReport(nonce: nonce, replica: replica, view: view, lastExecuted: lastExecuted,
                                              lastStableCheckpoint: stable, applicationDigest: digest, connectedReplicas: links,
                                              batchesExecuted: batches, requestsExecuted: requests,
                                              peakResidentBytes: peak)
                    channel.writeAndFlush(ByteBufferAllocator().frame(.statusReport(report)), promise: nil)
                }
                if !self.state.value.statusWaiters.isEmpty { self.submitStatusJob() }
            }
        })
    }

    func configure(_ channel: any Channel, keyring: Keyring, cluster: ClusterFile, admit: @escaping @Sendable (Principal) -> Bool) throws {
        let metrics = self.metrics
        let logger = self.logger
        if metrics.exporting { try channel.pipeline.syncOperations.addHandler(TrafficCountingHandler(metrics: metrics)) }
        try channel.pipeline.syncOperations.addThemisFront(
            keyring: keyring, clusterTag: keyring.clusterTag, limits: cluster.limits,
            clientFrameBytesMax: clientFrameBytesMax, admit: admit,
            onRejection: { rejection in
                metrics.connectionsRejected.add()
                metrics.handshakeFailure(rejection.kind).add()
                logger.info("connection rejected", metadata: ["reason": "\(rejection.reason)"])
            })
        try channel.pipeline.syncOperations.addHandler(ReplicaInboundHandler(driver: self, keyring: keyring))
    }

    /// Closes every registered link and completes when all are closed.
    func closeAllLinks() -> EventLoopFuture<Void> {
        loop.flatSubmit {
            let channels: [any Channel] = Array(self.state.value.effects.replicas.values) + Array(self.state.value.effects.clients.values)
            let closed = channels.map { channel in
                channel.close().recover { _ in }
            }
            return EventLoopFuture.andAllComplete(closed, on: self.loop)
        }
    }

    /// Number of replicas with an authenticated link right now.
    func connectedReplicaCount() -> EventLoopFuture<Int> {
        loop.submit { self.state.value.effects.replicas.count }
    }

    // MARK: One step on the protocol loop

    private func step(_ body: (inout ReplicaDriver<Plugin>, inout NIOEffects<Plugin>) -> Void) {
        state.withValue { state in
            body(&state.driver, &state.effects)
            if !state.effects.reads.isEmpty { submitReads(&state) }
            // The outbox is written by a task queued behind the tasks already waiting on the loop (the inbox's
            // step, results of the application): their frames to the same peer share a write.
            if !state.effects.outbox.isEmpty && !state.effects.flushScheduled {
                state.effects.flushScheduled = true
                loop.execute { self.writeOutbox() }
            }
        }
    }

    /// Queues the step's read-only requests for the application: one job at a time, with every read that
    /// arrived while the previous one ran (an async hop to the executor costs tens of microseconds, so under
    /// load many reads share one). A read may so run on a later state than the one at its arrival, never an
    /// earlier one. Past `readOnlyInFlightMax` waiting or running, reads are dropped.
    private func submitReads(_ state: inout State) {
        var reads = state.effects.reads
        state.effects.reads = []
        let room = ProtocolDriverLimits.readOnlyInFlightMax - state.readsInFlight - state.readsWaiting.count
        if reads.count > room {
            let dropped = reads.count - max(0, room)
            metrics.readOnlyDropped.add(dropped)
            reads.removeLast(dropped)
        }
        state.readsWaiting.append(contentsOf: reads)
        if state.readsInFlight == 0 { submitReadJob(&state) }
    }

    private func submitReadJob(_ state: inout State) {
        guard !state.readsWaiting.isEmpty else { return }
        let reads = state.readsWaiting
        state.readsWaiting = []
        state.readsInFlight = reads.count
        executor.submit(.readOnly(reads) { results in
            let answered = results.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
            self.metrics.readOnlyAnswered.add(answered)
            self.loop.execute {
                self.state.withValue { state in
                    state.readsInFlight = 0
                    self.submitReadJob(&state)
                }
                self.step { driver, effects in driver.executedReadOnly(reads, results: results, effects: &effects) }
            }
        })
    }

    @_specialize(where Plugin == PBFT)
    @_specialize(where Plugin == Hybster)
    private func writeOutbox() {
        state.withValue { state in
            defer {
                state.effects.outbox.removeAll(keepingCapacity: true)
                state.effects.flushScheduled = false
            }
            // Durable mode: the frames leave after the records of their steps are durable (one sync for all of them).
            if let storage = state.effects.storage {
                if state.effects.storageUrgent || !storage.isIdle {
                    let (commands, urgent) = state.effects.takeStorageWork()
                    if urgent, storage.isIdle, let records = StorageCommand.onlyRecords(commands) {
                        // Nothing queued: this loop writes and syncs them itself, and the frames leave below (not at
                        // all if the directory failed).
                        guard storage.syncNow(records) else { return }
                    } else {
                        // Otherwise (a sync running, a roll) through the storage thread's queue, behind what is queued.
                        storage.submit(commands, sync: urgent, frames: Array(state.effects.outbox.values))
                        return
                    }
                } else if storage.hasFailed {
                    return
                }
                // Otherwise nothing urgent and nothing queued: the frames leave at once. The lazy records stay here
                // until the next urgent record takes them along (in order, before it) or a tick syncs them (within
                // two): handing them to the storage thread now would make it busy, and the next steps' frames would
                // queue behind it for nothing.
            }
            writeFrames(state.effects.outbox.values, metrics: metrics)
        }
    }
}

/// The driver's effects in a replica process: links (frames gathered per channel into the outbox), the
/// application executor, the data directory (durable mode), the logger and counters.
struct NIOEffects<Plugin: ProtocolPlugin>: DriverEffects {
    let executor: ApplicationExecutor
    let logger: Logger
    let metrics: ReplicaMetrics
    /// Durable mode: records are encoded during a step and queued here; the outbox hands them to the storage
    /// thread (`StorageWriter`) with its frames, which leave once the records are durable.
    var durable = false
    var storage: StorageWriter?
    var storageCommands: [StorageCommand] = []
    var storageRecords: [[UInt8]] = []
    /// A queued record must be durable before the next frames leave (`ProtocolPlugin.isUrgent`).
    var storageUrgent = false
    /// Syncs asked of the storage so far, and that count at the last tick (which syncs lazy records only after a
    /// whole tick without any).
    var syncsRequested = 0
    var syncsRequestedAtTick = 0
    var onFailure: @Sendable (String) -> Void = { _ in }
    var replicas: [ReplicaID: any Channel] = [:]
    var clients: [ClientID: any Channel] = [:]
    var outbox: [ObjectIdentifier: (channel: any Channel, buffer: ByteBuffer)] = [:]
    /// A task that writes the outbox is queued on the loop.
    var flushScheduled = false
    /// Read-only requests of the current step, for the application.
    var reads: [Request] = []
    /// Metrics: when sampled requests were admitted (one in 16, by digest), when batches went to the
    /// application; each at most `timingsMax` entries.
    var admitted: [Digest: ContinuousClock.Instant] = [:]
    var executionStarted: [UInt64: ContinuousClock.Instant] = [:]
    static var timingsMax: Int { 4_096 }
    /// Traffic counters per replica and for all clients, looked up once per peer (only when exporting, as the
    /// bytes: `TrafficCountingHandler` exists only then).
    var replicaTraffic: [ReplicaID: PeerTraffic] = [:]
    var clientTraffic: PeerTraffic?
    /// Event and rejection counters by kind, looked up in the registry once per kind (no lock per event).
    var eventTallies: [String: Tally] = [:]
    var rejectionTallies: [String: Tally] = [:]

    init(executor: ApplicationExecutor, logger: Logger, metrics: ReplicaMetrics) {
        self.executor = executor
        self.logger = logger
        self.metrics = metrics
    }

    mutating func send(_ frame: ByteBuffer, of message: Plugin.Core.Message, to replica: ReplicaID) {
        if let channel = replicas[replica] {
            append(frame, to: channel)
            if metrics.exporting { traffic(of: replica).framesOut.add() }
        }
    }

    mutating func broadcast(_ frame: ByteBuffer, of message: Plugin.Core.Message) {
        for (replica, channel) in replicas {
            append(frame, to: channel)
            if metrics.exporting { traffic(of: replica).framesOut.add() }
        }
    }

    mutating func reply(_ frame: ByteBuffer, of reply: Reply) {
        if let channel = clients[reply.client] {
            append(frame, to: channel)
            guard metrics.exporting else { return }
            if clientTraffic == nil { clientTraffic = metrics.traffic(ReplicaMetrics.label(of: .client(reply.client))) }
            clientTraffic?.framesOut.add()
        }
    }

    private mutating func traffic(of replica: ReplicaID) -> PeerTraffic {
        if let traffic = replicaTraffic[replica] { return traffic }
        let traffic = metrics.traffic(ReplicaMetrics.label(of: .replica(replica)))
        replicaTraffic[replica] = traffic
        return traffic
    }

    mutating func execute(_ batch: ExecutionBatch) {
        guard metrics.exporting else { return executor.submit(.batch(batch)) }
        let now = ContinuousClock.now
        if !admitted.isEmpty {
            for request in batch.requests {
                if let start = admitted.removeValue(forKey: request.digest) { metrics.orderingSeconds?.record(now - start) }
            }
        }
        if executionStarted.count < Self.timingsMax { executionStarted[batch.sequence.rawValue] = now }
        executor.submit(.batch(batch))
    }

    /// Metrics: notes when a sampled request (one in 16, by digest) was admitted.
    mutating func admitted(_ request: Request, at now: ContinuousClock.Instant) {
        guard metrics.exporting, request.digest.word0 & 15 == 0, admitted.count < Self.timingsMax else { return }
        admitted[request.digest] = now
    }

    mutating func install(_ sequence: SequenceNumber, applicationSnapshot: [UInt8]) {
        executor.submit(.install(sequence, applicationSnapshot))
    }

    /// Kept for the shell, which submits them after the step (`ProtocolDriver.submitReads`).
    mutating func executeReadOnly(_ requests: [Request]) {
        reads.append(contentsOf: requests)
    }

    mutating func observe(_ event: Plugin.Core.Event) {
        if metrics.exporting {
            let kind = event.kind
            if let tally = eventTallies[kind] { tally.add() } else {
                let tally = metrics.event(kind)
                eventTallies[kind] = tally
                tally.add()
            }
        }
        switch event.common {
        case .viewChanged(let view, _)?:
            if view.rawValue > 0 { metrics.viewChanges.add() }
            metrics.view?.set(Double(view.rawValue))
        case .checkpointStable(let sequence, _)?:
            storage?.unstage(below: sequence.rawValue)
            metrics.checkpointsStable.add()
            metrics.stableCheckpoint?.set(Double(sequence.rawValue))
        case .stateTransferFinished?: metrics.stateTransfers.add()
        case .tentativeUndone?: metrics.tentativeUndone.add()
        case .checkpointTaken?, .tentativeCommitted?, nil: break
        }
        switch event.logLevel {
        case .trace: logger.trace("\(event.summary)")
        case .debug: logger.debug("\(event.summary)")
        case .info: logger.info("\(event.summary)")
        case .notice: logger.notice("\(event.summary)")
        case .warning: logger.warning("\(event.summary)")
        }
    }

    mutating func persist(_ record: Plugin.Core.Record) {
        guard durable else { return }
        storageRecords.append(Plugin.encodeRecord(record))
        if Plugin.isUrgent(record) { storageUrgent = true }
    }

    mutating func persistCheckpoint(_ sequence: SequenceNumber, state: [UInt8]) {
        guard durable else { return }
        if !storageRecords.isEmpty {
            storageCommands.append(.records(storageRecords))
            storageRecords = []
        }
        storageCommands.append(.snapshot(sequence.rawValue, state))
        storageUrgent = true
    }

    /// Written ahead by the storage's staging thread, off the way of every frame.
    mutating func stageCheckpoint(_ sequence: SequenceNumber, state: [UInt8]) {
        guard durable, let storage else { return }
        storage.stage(sequence.rawValue, state: state)
    }

    var hasStorageWork: Bool { !storageRecords.isEmpty || !storageCommands.isEmpty }

    /// What the storage thread must write next, and whether frames must wait for a sync.
    mutating func takeStorageWork() -> ([StorageCommand], urgent: Bool) {
        if !storageRecords.isEmpty {
            storageCommands.append(.records(storageRecords))
            storageRecords = []
        }
        defer {
            if storageUrgent { syncsRequested &+= 1 }
            storageCommands = []
            storageUrgent = false
        }
        return (storageCommands, storageUrgent)
    }

    mutating func rejected(_ rejection: Plugin.Core.Rejection) {
        let kind = rejection.kind
        if let tally = rejectionTallies[kind] { tally.add() } else {
            let tally = metrics.rejection(kind)
            rejectionTallies[kind] = tally
            tally.add()
        }
        logger.debug("rejected input", metadata: ["reason": "\(rejection)"])
    }

    private mutating func append(_ frame: ByteBuffer, to channel: any Channel) {
        let key = ObjectIdentifier(channel)
        if outbox[key] == nil {
            outbox[key] = (channel, frame)
        } else {
            var frame = frame
            outbox[key]?.buffer.writeBuffer(&frame)
        }
    }
}

extension Principal {
    var replicaID: ReplicaID? {
        if case .replica(let id) = self { return id }
        return nil
    }
}
