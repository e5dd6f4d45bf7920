import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import ThemisCore
import ThemisCrypto
import ThemisPBFT
import ThemisTransport
import ThemisWire

/// Input to the protocol core, verified on a connection's event loop.
enum DriverInput: Sendable {
    case message(Verified<PBFTMessage>)
    case request(Verified<Request>)

    /// What the input holds, by the size model of `RetainedBytes` (for the queue's byte bound).
    var estimatedBytes: Int {
        switch self {
        case .message(let verified): RetainedBytes.estimate(verified.message) + verified.authenticator.count
        case .request(let verified): RetainedBytes.estimate(verified.message)
        }
    }
}

/// The driver of the PBFT core: it owns the core on one event loop (the protocol loop), feeds it verified
/// inputs in groups, and carries out the actions it returns:
/// 1. feed every input of the group (`receive` / `submit`), then `flush` (the primary closes batches);
/// 2. authenticate and encode outgoing messages, one frame per message, all frames for one peer in one
///    buffer, and write each buffer with one flush once the steps already queued on the loop have run
///    (one syscall per peer per burst of steps);
/// 3. hand `execute` batches to the application executor, which reports back through `executed`.
final class ProtocolDriver: Sendable {
    struct State {
        var core: PBFTReplica
        var replicas: [ReplicaID: any Channel] = [:]
        var clients: [ClientID: any Channel] = [:]
        var actions: [Action<PBFTMessage>] = []
        var outbox: [ObjectIdentifier: (channel: any Channel, buffer: ByteBuffer)] = [:]
        /// A task that writes the outbox is queued on the loop.
        var flushScheduled = false
        /// Status queries waiting for the one status job in flight (all are answered by it).
        var statusWaiters: [(nonce: UInt64, channel: any Channel)] = []
    }

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

    let loop: any EventLoop
    let keyring: Keyring
    /// The largest frame a client may send after its handshake (`MessageBounds.clientFrameBytesMax`),
    /// computed once for every connection's frame decoder.
    let clientFrameBytesMax: Int
    let limits: Limits
    let executor: ApplicationExecutor
    let logger: Logger
    let counters: NIOLockedValueBox<ReplicaCounters>
    private let state: NIOLoopBoundBox<State>
    private let allocator = ByteBufferAllocator()
    /// Verified inputs handed to the protocol loop and not yet fed to the core, over all connections.
    private let inputsQueued = Atomic<Int>(0)
    /// Their bytes (`DriverInput.estimatedBytes`).
    private let inputBytesQueued = Atomic<Int>(0)
    /// Connections that stopped reading because the protocol loop fell behind.
    private let paused = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

    init(core: PBFTReplica, loop: any EventLoop, keyring: Keyring, executor: ApplicationExecutor, logger: Logger,
         counters: NIOLockedValueBox<ReplicaCounters>) {
        self.loop = loop
        self.keyring = keyring
        self.limits = core.limits
        self.clientFrameBytesMax = MessageBounds(
            configuration: core.configuration, settings: core.settings, limits: core.limits,
            authenticators: keyring.scheme.authenticatorSizes(replicaCount: core.configuration.replicaCount)
        ).clientFrameBytesMax
        self.executor = executor
        self.logger = logger
        self.counters = counters
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(core: core), eventLoop: loop)
    }

    var id: ReplicaID { keyring.me.replicaID ?? ReplicaID(0) }

    // MARK: Inputs (callable from any event loop)

    /// Hands one read burst of verified inputs to the protocol loop.
    /// - Returns: true if the loop is behind (`inputsQueuedHigh` inputs wait): the caller SHOULD `pause`
    ///   its connection, so that a flood of valid messages queues in the peer's socket, not in our memory.
    @discardableResult
    func deliver(_ inputs: [DriverInput]) -> Bool {
        let bytes = inputs.reduce(0) { $0 + $1.estimatedBytes }
        let queued = inputsQueued.wrappingAdd(inputs.count, ordering: .relaxed).newValue
        let queuedBytes = inputBytesQueued.wrappingAdd(bytes, ordering: .relaxed).newValue
        loop.execute {
            self.step { core, actions in
                for input in inputs { self.feed(input, core: &core, actions: &actions) }
            }
            let left = self.inputsQueued.wrappingSubtract(inputs.count, ordering: .relaxed).newValue
            let leftBytes = self.inputBytesQueued.wrappingSubtract(bytes, ordering: .relaxed).newValue
            if left < Self.inputsQueuedLow && leftBytes < Self.inputBytesQueuedLow { self.resumePaused() }
        }
        return queued > Self.inputsQueuedHigh || queuedBytes > Self.inputBytesQueuedHigh
    }

    /// Stops reading from `channel` until the protocol loop catches up.
    func pause(_ channel: any Channel) {
        paused.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
        channel.setOption(.autoRead, value: false).whenFailure { _ in }
        counters.withLockedValue { $0.readPauses += 1 }
        // The loop may have caught up before the channel was registered: check again.
        if inputsQueued.load(ordering: .relaxed) < Self.inputsQueuedLow && inputBytesQueued.load(ordering: .relaxed) < Self.inputBytesQueuedLow {
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

    func tick() {
        loop.execute { self.step { core, actions in core.tick(into: &actions) } }
    }

    func executed(_ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?) {
        counters.withLockedValue {
            $0.batchesExecuted += 1
            $0.requestsExecuted += results.count
        }
        loop.execute { self.step { core, actions in
            core.executed(sequence, results: results, applicationSnapshot: applicationSnapshot, into: &actions)
        } }
    }

    func register(_ peer: Principal, channel: any Channel) {
        loop.execute {
            switch peer {
            case .replica(let replica):
                if let old = self.state.value.replicas[replica], old !== channel { old.close(promise: nil) }
                self.state.value.replicas[replica] = channel
            case .client(let client):
                if let old = self.state.value.clients[client], old !== channel { old.close(promise: nil) }
                self.state.value.clients[client] = channel
            }
            self.logger.debug("link up", metadata: ["peer": "\(peer)"])
        }
    }

    func unregister(_ peer: Principal, channel: any Channel) {
        loop.execute {
            switch peer {
            case .replica(let replica):
                if self.state.value.replicas[replica] === channel { self.state.value.replicas[replica] = nil }
            case .client(let client):
                if self.state.value.clients[client] === channel { self.state.value.clients[client] = nil }
            }
        }
    }

    /// Answers a status query after every batch handed to the application so far has executed. Queries
    /// that arrive while a status job runs wait for it and share its answer: the application is snapshotted
    /// and hashed once per job, not once per query (any client may ask), and at most
    /// `statusQueriesPendingMax` queries wait.
    func status(nonce: UInt64, channel: any Channel) {
        loop.execute {
            let waiting = self.state.value.statusWaiters.count
            guard waiting < Self.statusQueriesPendingMax else {
                self.counters.withLockedValue { $0.statusQueriesDropped += 1 }
                return
            }
            self.state.value.statusWaiters.append((nonce, channel))
            if waiting == 0 { self.submitStatusJob() }
        }
    }

    /// One status job for every query waiting now; queries arriving meanwhile start the next one.
    private func submitStatusJob() {
        let core = state.value.core
        let replica = core.id
        let view = core.view
        let stable = core.lowWatermark
        let links = UInt32(state.value.replicas.count)
        let waiters = state.value.statusWaiters.count
        executor.submit(.status { lastExecuted, digest in
            let counters = self.counters.withLockedValue { $0 }
            let peak = ProcessMemory.peakResidentBytes() ?? 0
            self.loop.execute {
                let answered = Array(self.state.value.statusWaiters.prefix(waiters))
                self.state.value.statusWaiters.removeFirst(answered.count)
                for (nonce, channel) in answered {
                    let report = StatusReport(nonce: nonce, replica: replica, view: view, lastExecuted: lastExecuted,
                                              lastStableCheckpoint: stable, applicationDigest: digest, connectedReplicas: links,
                                              batchesExecuted: UInt64(counters.batchesExecuted), requestsExecuted: UInt64(counters.requestsExecuted),
                                              peakResidentBytes: peak)
                    channel.writeAndFlush(ByteBufferAllocator().frame(.statusReport(report)), promise: nil)
                }
                if !self.state.value.statusWaiters.isEmpty { self.submitStatusJob() }
            }
        })
    }

    /// Closes every registered link and completes when all are closed.
    func closeAllLinks() -> EventLoopFuture<Void> {
        loop.flatSubmit {
            let channels: [any Channel] = Array(self.state.value.replicas.values) + Array(self.state.value.clients.values)
            let closed = channels.map { channel in
                channel.close().recover { _ in }
            }
            return EventLoopFuture.andAllComplete(closed, on: self.loop)
        }
    }

    /// Number of replicas with an authenticated link right now.
    func connectedReplicaCount() -> EventLoopFuture<Int> {
        loop.submit { self.state.value.replicas.count }
    }

    // MARK: One step on the protocol loop

    private func step(_ body: (inout PBFTReplica, inout [Action<PBFTMessage>]) -> Void) {
        state.withValue { state in
            state.actions.removeAll(keepingCapacity: true)
            body(&state.core, &state.actions)
            state.core.flush(into: &state.actions)
            for action in state.actions {
                perform(action, state: &state)
            }
            // The outbox is written by a task queued behind the steps already waiting on the loop (the
            // other connections' inputs of this read burst): their frames to the same peer share a write.
            if !state.outbox.isEmpty && !state.flushScheduled {
                state.flushScheduled = true
                loop.execute { self.writeOutbox() }
            }
        }
    }

    private func writeOutbox() {
        state.withValue { state in
            var dropped = 0
            for (_, entry) in state.outbox {
                // A peer that does not read: its write buffer passed the high watermark. Its frames are
                // dropped rather than buffered without bound; it gets them again by retransmission.
                guard entry.channel.isWritable else {
                    dropped += 1
                    continue
                }
                entry.channel.writeAndFlush(entry.buffer, promise: nil)
            }
            if dropped > 0 { counters.withLockedValue { $0.framesDroppedUnwritable += dropped } }
            state.outbox.removeAll(keepingCapacity: true)
            state.flushScheduled = false
        }
    }

    private func feed(_ input: DriverInput, core: inout PBFTReplica, actions: inout [Action<PBFTMessage>]) {
        do {
            switch input {
            case .message(let message): try core.receive(message, into: &actions)
            case .request(let request): try core.submit(request, into: &actions)
            }
        } catch {
            counters.withLockedValue { $0.rejections[error.kind, default: 0] += 1 }
            logger.debug("rejected input", metadata: ["reason": "\(error)"])
        }
    }

    private func perform(_ action: Action<PBFTMessage>, state: inout State) {
        switch action {
        case .send(let message, let replica):
            let frame = encode(message, audience: .principal(.replica(replica)))
            if let channel = state.replicas[replica] { append(frame, to: channel, state: &state) }
        case .broadcast(let message):
            let frame = encode(MessageVerifier(keyring: keyring).prepareForBroadcast(message), audience: .allReplicas)
            for (_, channel) in state.replicas { append(frame, to: channel, state: &state) }
        case .reply(let reply):
            guard let channel = state.clients[reply.client] else { return }
            // Replies are MACed with the link key in every scheme: only the client must believe them.
            let tag = keyring.linkAuthenticator(for: WireCodec.authenticatedBytes(of: reply), peer: .client(reply.client))
            append(allocator.frame(.reply(reply.withAuthenticator(tag))), to: channel, state: &state)
        case .execute(let batch):
            executor.submit(.batch(batch))
        case .installState(let sequence, let snapshot):
            executor.submit(.install(sequence, snapshot))
        case .observe(let event):
            observe(event)
        }
    }

    private func encode(_ message: PBFTMessage, audience: Keyring.Audience) -> ByteBuffer {
        let tag = keyring.authenticator(for: WireCodec.authenticatedBytes(of: message), audience: audience)
        return allocator.frame(.pbft(message, authenticator: tag))
    }

    private func append(_ frame: ByteBuffer, to channel: any Channel, state: inout State) {
        let key = ObjectIdentifier(channel)
        if state.outbox[key] == nil {
            state.outbox[key] = (channel, frame)
        } else {
            var frame = frame
            state.outbox[key]?.buffer.writeBuffer(&frame)
        }
    }

    private func observe(_ event: Event) {
        switch event {
        case .checkpointStable(let sequence, let digest):
            logger.info("checkpoint stable", metadata: ["sequence": "\(sequence.rawValue)", "digest": "\(digest)"])
        case .checkpointMismatch(let sequence, _):
            logger.warning("own checkpoint differs from the quorum's", metadata: ["sequence": "\(sequence.rawValue)"])
        case .viewChangeStarted(let target):
            logger.notice("view change started", metadata: ["to": "\(target.rawValue)"])
        case .newViewSent(let target):
            logger.notice("sent NEW-VIEW as the new primary", metadata: ["view": "\(target.rawValue)"])
        case .viewChanged(let newView, let primary):
            logger.notice("entered new view", metadata: ["view": "\(newView.rawValue)", "primary": "\(primary.rawValue)"])
        case .stateTransferNeeded(let sequence, _):
            logger.warning("behind the stable checkpoint; state transfer needed", metadata: ["sequence": "\(sequence.rawValue)"])
        case .stateTransferStarted(let sequence, let peer):
            logger.notice("state transfer started", metadata: ["checkpoint": "\(sequence.rawValue)", "from": "\(peer.rawValue)"])
        case .stateTransferRejected(let sequence, let peer):
            logger.warning("state from peer does not match the agreed digest; asking another",
                           metadata: ["checkpoint": "\(sequence.rawValue)", "from": "\(peer.rawValue)"])
        case .stateTransferFinished(let sequence):
            logger.notice("state transfer finished", metadata: ["checkpoint": "\(sequence.rawValue)"])
        case .batchFetched(let sequence):
            logger.debug("committed batch fetched", metadata: ["sequence": "\(sequence.rawValue)"])
        case .batchMissing(let sequence):
            logger.debug("re-proposed batch not held here; fetching it by digest", metadata: ["sequence": "\(sequence.rawValue)"])
        case .awaitingVouchers(let sequence):
            logger.info("a request in the batch does not verify here; waiting for f backups to prepare it",
                        metadata: ["sequence": "\(sequence.rawValue)"])
        case .vouchedFor(let sequence):
            logger.info("f backups prepared the batch this replica could not authenticate; preparing it",
                        metadata: ["sequence": "\(sequence.rawValue)"])
        case .batchProposed, .prepared, .committed, .executed, .checkpointTaken, .requestRelayed, .cachedReplyResent:
            logger.trace("\(event)")
        }
    }
}

extension Principal {
    var replicaID: ReplicaID? {
        if case .replica(let id) = self { return id }
        return nil
    }
}
