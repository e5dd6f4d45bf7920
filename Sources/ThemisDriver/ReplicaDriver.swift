import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// A verified input for the protocol core (made by the `Ingress`).
public enum DriverInput<Message: Sendable>: Sendable {
    case message(Verified<Message>)
    case request(Verified<Request>)
    /// A read-only request: never reaches the core; the driver has the application answer it.
    case readOnly(Verified<Request>)
}

/// What the driver asks of the world around it. The NIO shell implements these with sockets and the
/// application executor thread, the simulator with its seeded network and an in-line application; both run
/// the same `ReplicaDriver`, so the interpretation of the core's actions exists once.
///
/// Durable mode: `persist` and `persistCheckpoint` are called in the order the core asked; the effects
/// MUST make those records durable before any frame handed to `send`, `broadcast` or `reply` in the same
/// step (or later) leaves the replica (group commit: one sync may cover several steps if their frames wait
/// for it). In-memory mode ignores both (the default implementations).
public protocol DriverEffects<Plugin> {
    associatedtype Plugin: ProtocolPlugin
    typealias Message = Plugin.Core.Message

    // MARK: Network
    /// Deliver `frame` (the message, authenticated for `replica` and encoded, length prefix included).
    /// `message` is what the frame holds (for statistics and the simulator's Byzantine replicas).
    mutating func send(_ frame: ByteBuffer, of message: Message, to replica: ReplicaID)
    /// Deliver `frame` (authenticated for every replica) to every other replica.
    mutating func broadcast(_ frame: ByteBuffer, of message: Message)
    /// Deliver `frame` (the reply, authenticated with the client's link key) to the reply's client.
    mutating func reply(_ frame: ByteBuffer, of reply: Reply)

    // MARK: Application executor
    /// Apply a committed batch after every earlier one. The result MUST come back through
    /// `ReplicaDriver.executed`, in order, and never from inside this call (the driver is mid-step).
    mutating func execute(_ batch: ExecutionBatch)
    /// Replace the application's state, in order with `execute`.
    mutating func install(_ sequence: SequenceNumber, applicationSnapshot: [UInt8])
    /// Answer read-only requests with `Application.executeReadOnly` on the application's state after every
    /// batch handed over before. The results (nil where the application answers nothing) MUST come back
    /// through `ReplicaDriver.executedReadOnly`, never from inside this call.
    mutating func executeReadOnly(_ requests: [Request])

    // MARK: Storage
    /// Append a record to the write-ahead log (durable before the step's frames leave).
    mutating func persist(_ record: Plugin.Core.Record)
    /// Save the encoded state of stable checkpoint `sequence` and start a new log segment.
    mutating func persistCheckpoint(_ sequence: SequenceNumber, state: [UInt8])
    /// A hint: the state `persistCheckpoint` will likely save for `sequence`; may be written ahead.
    mutating func stageCheckpoint(_ sequence: SequenceNumber, state: [UInt8])

    // MARK: Observation
    mutating func observe(_ event: Plugin.Core.Event)
    /// The core refused an input (counted by kind, logged at debug level).
    mutating func rejected(_ rejection: Plugin.Core.Rejection)
}

extension DriverEffects {
    public mutating func persist(_ record: Plugin.Core.Record) {}
    public mutating func persistCheckpoint(_ sequence: SequenceNumber, state: [UInt8]) {}
    public mutating func stageCheckpoint(_ sequence: SequenceNumber, state: [UInt8]) {}
}

/// The one driver, generic over the protocol. Each step:
/// 1. (before the driver) the `Ingress` turned bytes from a peer into `Verified` inputs;
/// 2. feed every input of the group to the core (`receive` / `submit`; a rejection goes to `rejected`),
///    or the tick, or the application's answer (`executed`);
/// 3. `flush`: the primary closes batches while its pipeline has room (adaptive batching);
/// 4. carry out the actions in order: a message to send is prepared (`prepareForBroadcast`), authenticated
///    for its audience and encoded, then handed to the network; a reply is MACed with the client's link key;
///    `execute` and `installState` go to the application executor; `observe` to logs and counters.
public struct ReplicaDriver<Plugin: ProtocolPlugin>: Sendable {
    public typealias Core = Plugin.Core
    public typealias Message = Core.Message

    /// The protocol core (read-only outside: the driver is the only one that feeds it).
    @inlinable public var core: Core {
        // Read in place (a core is a large value: a copy per access would retain every buffer it holds).
        _read { yield state }
    }
    public let keyring: Keyring
    // The methods are @inlinable so that the shell and the simulator get them specialized for their protocol
    // (a generic driver called across modules would otherwise dispatch every core call through witness tables).
    @usableFromInline var state: Core
    @usableFromInline var actions: [Action<Message, Core.Event, Core.Record>] = []
    @usableFromInline var reads: [Request] = []
    /// Read-only requests held while the core defers them (`ReplicaCore.defersReadOnlyRequests`), oldest first.
    @usableFromInline var deferredReads: [Request] = []
    /// At most this many reads wait (the later ones are dropped: their clients order them).
    public static var deferredReadsMax: Int { 128 }
    @usableFromInline let allocator = ByteBufferAllocator()

    public init(core: Core, keyring: Keyring) {
        self.state = core
        self.keyring = keyring
    }

    /// One group of verified inputs (a read burst, a delivered packet), then `flush`, then the actions.
    @inlinable
    public mutating func deliver<Effects: DriverEffects<Plugin>>(_ inputs: some Sequence<DriverInput<Message>>, effects: inout Effects) {
        actions.removeAll(keepingCapacity: true)
        for input in inputs {
            do {
                switch input {
                case .message(let message): try state.receive(message, into: &actions)
                case .request(let request): try state.submit(request, into: &actions)
                case .readOnly(let request): reads.append(request.message)
                }
            } catch {
                effects.rejected(error)
            }
        }
        state.flush(into: &actions)
        perform(&effects)
        if !reads.isEmpty {
            // After this step's batches (a read sees at least the state they leave). A replica that may lag
            // behind a write it answered before a restart answers nothing: the client falls back to ordering.
            if state.servesReadOnlyRequests {
                releaseDeferredReads(&effects)
                effects.executeReadOnly(reads)
            } else if state.defersReadOnlyRequests {
                deferredReads.append(contentsOf: reads.prefix(max(0, Self.deferredReadsMax - deferredReads.count)))
            }
            reads.removeAll(keepingCapacity: true)
        }
        releaseDeferredReads(&effects)
    }

    /// Answers the deferred reads once the core serves reads again (on the state after every batch handed over
    /// so far); drops them if it neither serves nor defers any more (their clients order them).
    @inlinable
    mutating func releaseDeferredReads<Effects: DriverEffects<Plugin>>(_ effects: inout Effects) {
        guard !deferredReads.isEmpty else { return }
        if state.servesReadOnlyRequests {
            effects.executeReadOnly(deferredReads)
        } else if state.defersReadOnlyRequests {
            return
        }
        deferredReads.removeAll(keepingCapacity: true)
    }

    /// The application answered read-only requests (`results[i]` for `requests[i]`, nil where it would not):
    /// a reply to each answered one, in the current view.
    @inlinable
    public mutating func executedReadOnly<Effects: DriverEffects<Plugin>>(_ requests: [Request], results: [[UInt8]?], effects: inout Effects) {
        for (request, result) in zip(requests, results) {
            guard let result else { continue }
            let reply = Reply(view: state.view, timestamp: request.timestamp, client: request.client, replica: state.id, result: result)
            effects.reply(replyFrame(reply), of: reply)
        }
    }

    /// One tick of the clock.
    @inlinable
    public mutating func tick<Effects: DriverEffects<Plugin>>(effects: inout Effects) {
        actions.removeAll(keepingCapacity: true)
        state.tick(into: &actions)
        state.flush(into: &actions)
        perform(&effects)
        releaseDeferredReads(&effects)
    }

    /// The application finished batch `sequence` (its results in request order).
    @inlinable
    public mutating func executed<Effects: DriverEffects<Plugin>>(
        _ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?, effects: inout Effects
    ) {
        actions.removeAll(keepingCapacity: true)
        state.executed(sequence, results: results, applicationSnapshot: applicationSnapshot, into: &actions)
        state.flush(into: &actions)
        perform(&effects)
        releaseDeferredReads(&effects)
    }

    /// Durable mode, at start-up: rebuilds the core from its write-ahead log (see `ReplicaCore.restore`) and
    /// carries out what that asks (install the checkpoint's state, re-execute, resend).
    @inlinable
    public mutating func restore<Effects: DriverEffects<Plugin>>(
        _ records: [Core.Record], snapshot: (SequenceNumber) -> [UInt8]?, effects: inout Effects
    ) throws(RestoreError) {
        actions.removeAll(keepingCapacity: true)
        try state.restore(records, snapshot: snapshot, into: &actions)
        state.flush(into: &actions)
        perform(&effects)
    }

    @inlinable
    mutating func perform<Effects: DriverEffects<Plugin>>(_ effects: inout Effects) {
        for action in actions {
            switch action {
            case .send(let message, let replica):
                effects.send(frame(message, audience: .principal(.replica(replica))), of: message, to: replica)
            case .broadcast(let message):
                let prepared = Plugin.prepareForBroadcast(message, keyring: keyring)
                effects.broadcast(frame(prepared, audience: .allReplicas), of: prepared)
            case .reply(let reply):
                effects.reply(replyFrame(reply), of: reply)
            case .execute(let batch):
                effects.execute(batch)
            case .installState(let sequence, let snapshot):
                effects.install(sequence, applicationSnapshot: snapshot)
            case .observe(let event):
                effects.observe(event)
            case .persist(let record):
                effects.persist(record)
            case .persistCheckpoint(let sequence, let state):
                effects.persistCheckpoint(sequence, state: state)
            case .stageCheckpoint(let sequence, let state):
                effects.stageCheckpoint(sequence, state: state)
            }
        }
        actions.removeAll(keepingCapacity: true)
    }

    /// A message authenticated for `audience` and encoded as one frame.
    @inlinable
    public func frame(_ message: Message, audience: Keyring.Audience) -> ByteBuffer {
        let tag = keyring.authenticator(for: Plugin.authenticatedBytes(of: message), audience: audience)
        var buffer = allocator.buffer(capacity: 0)
        Plugin.encodeFrame(message, authenticator: tag, into: &buffer)
        return buffer
    }

    /// A reply MACed with the link key in every scheme (only its client must believe it), as one frame.
    @inlinable
    public func replyFrame(_ reply: Reply) -> ByteBuffer {
        let tag = keyring.linkAuthenticator(for: WireCodec.authenticatedBytes(of: reply), peer: .client(reply.client))
        var buffer = allocator.buffer(capacity: 0)
        WireCodec.encodeFrame(.reply(reply.withAuthenticator(tag)), into: &buffer)
        return buffer
    }
}
