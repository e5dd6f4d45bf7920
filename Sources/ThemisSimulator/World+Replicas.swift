import NIOCore
import ThemisApps
import ThemisCore
import ThemisCrypto
import ThemisDriver
import ThemisWire

/// The simulator's implementations of the driver's effects: what one driver step asks for is collected
/// here and carried out by the world after the step (the network, the application, the checker), in order.
struct SimulatedEffects<Plugin: SimulationPlugin>: DriverEffects {
    typealias Message = Plugin.Core.Message

    enum Output {
        case send(ByteBuffer, Message, to: ReplicaID)
        case broadcast(ByteBuffer, Message)
        case reply(ByteBuffer, Reply)
        case execute(ExecutionBatch)
        case readOnly([Request])
        case install(SequenceNumber, [UInt8])
        case observe(Plugin.Core.Event)
        case persist(Plugin.Core.Record)
        case persistCheckpoint(SequenceNumber, [UInt8])
    }

    var outputs: [Output] = []
    var rejections = 0
    /// The last rejection (for `--debug`; kept as a value: formatting it on every rejection would cost a run).
    var lastRejection: Plugin.Core.Rejection?

    mutating func send(_ frame: ByteBuffer, of message: Message, to replica: ReplicaID) { outputs.append(.send(frame, message, to: replica)) }
    mutating func broadcast(_ frame: ByteBuffer, of message: Message) { outputs.append(.broadcast(frame, message)) }
    mutating func reply(_ frame: ByteBuffer, of reply: Reply) { outputs.append(.reply(frame, reply)) }
    mutating func execute(_ batch: ExecutionBatch) { outputs.append(.execute(batch)) }
    mutating func executeReadOnly(_ requests: [Request]) { outputs.append(.readOnly(requests)) }
    mutating func install(_ sequence: SequenceNumber, applicationSnapshot: [UInt8]) { outputs.append(.install(sequence, applicationSnapshot)) }
    mutating func observe(_ event: Plugin.Core.Event) { outputs.append(.observe(event)) }
    mutating func rejected(_ rejection: Plugin.Core.Rejection) {
        rejections += 1
        lastRejection = rejection
    }
    mutating func persist(_ record: Plugin.Core.Record) { outputs.append(.persist(record)) }
    mutating func persistCheckpoint(_ sequence: SequenceNumber, state: [UInt8]) { outputs.append(.persistCheckpoint(sequence, state)) }
}

/// A replica's simulated disk (durable mode): the records since its last saved checkpoint state, and that
/// state. What the driver persisted in a step is durable before the step's messages leave (group commit),
/// unless the test-only broken driver holds the writes in `pending` until the replica's next tick.
package struct SimulatedDisk<Record> {
    package var records: [Record] = []
    package var state: (sequence: SequenceNumber, bytes: [UInt8])?
    package var pending: [SimulatedWrite<Record>] = []
    package var writes = 0
    /// The records at the end that are not urgent (`ProtocolPlugin.isUrgent`): the shell syncs them with the
    /// next urgent one or within two ticks, so a crash may lose them.
    package var lazyTail = 0

    package mutating func write(_ write: SimulatedWrite<Record>, urgent: Bool = true) {
        writes += 1
        switch write {
        case .record(let record):
            records.append(record)
            lazyTail = urgent ? 0 : lazyTail + 1
        case .checkpoint(let sequence, let bytes):
            // A new segment: the records that follow restate everything, the older ones are deleted.
            state = (sequence, bytes)
            records = []
            lazyTail = 0
        }
    }

    /// A crash: the lazy records not yet synced are lost.
    package mutating func loseUnsyncedRecords() {
        records.removeLast(lazyTail)
        lazyTail = 0
    }
}

package enum SimulatedWrite<Record> {
    case record(Record)
    case checkpoint(SequenceNumber, [UInt8])
}

/// Replicas: the real codec, the real ingress and the real driver; the world carries out the effects.
extension World {
    package func deliver(_ packet: Packet, toReplica index: Int) {
        guard replicas[index].crashedUntil == nil else { return }
        let keyring = replicas[index].driver.keyring
        let limits = replicas[index].core.limits
        var payload = packet.payload
        let message: WireMessage
        do {
            message = try WireCodec.decode(&payload, limits: limits)
        } catch {
            stats.rejections += 1
            if debugLog, isCorrect(index) { print("t\(now) r\(index) cannot decode a frame from \(packet.from): \(error)") }
            return
        }
        // The real ingress (the shell's): the network knows the true sender, as a link after the handshake does.
        let ingress = Ingress<Plugin>(keyring: keyring, limits: limits, skippingAuthenticationForTesting: scenario.ingressSkipsAuthentication)
        let input: DriverInput<Plugin.Core.Message>
        switch (packet.from, message) {
        case (.replica(let sender), .replica(let inner)):
            switch ingress.admit(inner, from: sender) {
            case .success(let verified):
                if verified.requestsUnverified, isCorrect(index) {
                    stats.unverifiedBatches += 1
                    if debugLog { print("t\(now) r\(index) cannot authenticate a request in \(Plugin.kindName(of: verified.message)) from \(sender)") }
                }
                input = .message(verified)
            case .failure(let refusal):
                refused(refusal)
                if debugLog, isCorrect(index) { print("t\(now) r\(index) refuses a message from \(sender): \(refusal)") }
                return
            }
        case (.client(let client), .request(let request)):
            switch ingress.admit(request, from: client) {
            case .success(let verified): input = .request(verified)
            case .failure(let refusal):
                refused(refusal)
                return
            }
        case (.client(let client), .readOnlyRequest(let request)):
            switch ingress.admit(readOnly: request, from: client) {
            case .success(let verified): input = .readOnly(verified)
            case .failure(let refusal):
                refused(refusal)
                return
            }
        default:
            stats.rejections += 1
            return
        }
        var effects = SimulatedEffects<Plugin>()
        replicas[index].driver.deliver(CollectionOfOne(input), effects: &effects)
        if effects.rejections > 0 {
            stats.rejections += effects.rejections
            if debugLog, isCorrect(index), case .message(let verified) = input,
               Plugin.kindName(of: verified.message).hasSuffix("view") || Plugin.kindName(of: verified.message).hasSuffix("view-change") {
                print("t\(now) r\(index) rejects \(Plugin.kindName(of: verified.message)) from \(Plugin.sender(of: verified.message)): \(effects.lastRejection.map { "\($0)" } ?? "")")
            }
        }
        carryOut(effects, at: index)
    }

    package func refused(_ refusal: IngressRefusal) {
        stats.rejections += 1
        stats.ingressRefusals[refusal, default: 0] += 1
    }

    package func tickReplica(_ index: Int) {
        guard replicas[index].crashedUntil == nil else { return }
        if replicas[index].behavior == .exhausting, !healed, now % 32 == UInt64(index) % 32 { Plugin.exhaust(self, from: index) }
        if isCorrect(index), now % 16 == UInt64(index) % 16 { checkRetainedBytes(index) }
        if !disks[index].pending.isEmpty {
            for write in disks[index].pending { disks[index].write(write) }
            disks[index].pending = []
        }
        if !healed && random.chance(scenario.tickSkewPerMille, in: 1000) { return }
        var effects = SimulatedEffects<Plugin>()
        replicas[index].driver.tick(effects: &effects)
        carryOut(effects, at: index)
    }

    /// What one driver step asked for, in order. An executed batch is reported back to the driver at once
    /// (a new step), whose effects are carried out before the rest of this step's.
    func carryOut(_ effects: SimulatedEffects<Plugin>, at index: Int) {
        let me = Principal.replica(ReplicaID(UInt32(index)))
        let groupCommit = !scenario.sendsBeforePersisting
        if groupCommit {
            // The shell's group commit: every record of the step is durable before any of its messages leaves.
            for output in effects.outputs {
                switch output {
                case .persist(let record): disks[index].write(.record(record), urgent: Plugin.isUrgent(record))
                case .persistCheckpoint(let sequence, let state): disks[index].write(.checkpoint(sequence, state))
                default: break
                }
            }
        }
        for output in effects.outputs {
            switch output {
            case .send, .broadcast, .reply:
                if !disks[index].pending.isEmpty, isCorrect(index) {
                    checker.fail("durability", now, "replica \(index) sent a message before \(disks[index].pending.count) records of its step were durable")
                }
            default: break
            }
            switch output {
            case .persist(let record):
                if !groupCommit { disks[index].pending.append(.record(record)) }
            case .persistCheckpoint(let sequence, let state):
                if !groupCommit { disks[index].pending.append(.checkpoint(sequence, state)) }
            case .send(let frame, let message, let target):
                if replicas[index].behavior != nil {
                    Plugin.sendByzantine(self, message, from: index, to: [target], broadcast: false)
                } else {
                    enqueue(frame: frame, from: me, to: .replica(target), measuring: message)
                }
            case .broadcast(let frame, let message):
                if replicas[index].behavior != nil {
                    Plugin.sendByzantine(self, message, from: index, to: others(than: index), broadcast: true)
                } else {
                    for target in others(than: index) { enqueue(frame: frame, from: me, to: .replica(target), measuring: message) }
                }
            case .reply(let frame, let reply):
                sendReply(reply, frame: frame, from: index)
            case .execute(let batch):
                execute(batch, at: index)
            case .readOnly(let requests):
                // Answered on the state after this step's batches (the shell queues them behind those).
                let app = scenario.readsFromEmptyStore ? KeyValueStore() : replicas[index].app
                let results = requests.map { app.executeReadOnlyNow($0.operation)?.encoded() }
                stats.readOnlyAnswered += results.count { $0 != nil }
                var readEffects = SimulatedEffects<Plugin>()
                replicas[index].driver.executedReadOnly(requests, results: results, effects: &readEffects)
                carryOut(readEffects, at: index)
            case .install(let sequence, let snapshot):
                do {
                    try replicas[index].app.restoreNow(from: snapshot)
                } catch {
                    if isCorrect(index) { checker.fail("state transfer", now, "replica \(index) could not restore checkpoint \(sequence)") }
                }
                checker.executedBy[index] = []
                checker.tentativeBy[index] = nil
            case .observe(let event):
                observe(event, at: index)
            }
        }
    }

    package func execute(_ batch: ExecutionBatch, at index: Int) {
        if isCorrect(index) { checker.executed(batch, by: index, at: now) }
        trace.add(UInt64(index) << 56 | batch.sequence.rawValue)
        var results: [[UInt8]] = []
        for request in batch.requests {
            results.append(replicas[index].app.executeNow(request.operation).encoded())
            trace.add(request.digest)
        }
        let snapshot = batch.checkpoint ? replicas[index].app.snapshotBytes() : nil
        var effects = SimulatedEffects<Plugin>()
        replicas[index].driver.executed(batch.sequence, results: results, applicationSnapshot: snapshot, effects: &effects)
        carryOut(effects, at: index)
    }

    package func sendReply(_ reply: Reply, frame: ByteBuffer, from index: Int) {
        let me = Principal.replica(ReplicaID(UInt32(index)))
        guard let behavior = replicas[index].behavior else {
            return enqueue(frame: frame, from: me, to: .client(reply.client), measuring: nil)
        }
        if behavior == .silent { return }
        // Byzantine replicas lie about results half of the time.
        var reply = reply
        if random.chance(1, in: 2) {
            // A lie claims to be committed half of the time (a tentative result counts for less).
            reply = Reply(view: reply.view, timestamp: reply.timestamp, client: reply.client, replica: reply.replica, result: [0xBA, 0xD0],
                          tentative: reply.tentative && random.chance(1, in: 2))
        }
        let tag = replicas[index].driver.keyring.linkAuthenticator(for: WireCodec.authenticatedBytes(of: reply), peer: .client(reply.client))
        enqueue(.reply(reply.withAuthenticator(tag)), from: me, to: .client(reply.client))
    }

    package func observe(_ event: Plugin.Core.Event, at index: Int) {
        if debugLog, isCorrect(index), event.logLevel == .notice { print("t\(now) r\(index) \(event)") }
        switch event.common {
        case .checkpointTaken(let sequence, let digest):
            if isCorrect(index) { checker.checkpoint(sequence, digest, by: index, at: now) }
        case .viewChanged:
            stats.viewChanges += 1
        case .stateTransferFinished:
            stats.stateTransfers += 1
        case .tentativeCommitted(let sequence):
            stats.tentativeCommitted += 1
            if isCorrect(index) { checker.tentativeCommitted(sequence, by: index, at: now) }
        case .tentativeUndone(let sequence):
            stats.tentativeUndone += 1
            if isCorrect(index) { checker.tentativeUndone(sequence, by: index) }
        case .checkpointStable, nil:
            break
        }
    }
}

/// The memory checker: what a correct core holds stays within the bound `Limits` give (issue 9).
extension World {
    package func checkRetainedBytes(_ index: Int) {
        let retained = Plugin.retainedBytes(of: replicas[index].core)
        stats.retainedBytesMax = max(stats.retainedBytesMax, retained.total)
        let over = zip(retained.parts, retainedBytesBound.parts).filter { $0.0.bytes > $0.1.bytes }
        if !over.isEmpty {
            let detail = over.map { "\($0.0.name) \($0.0.bytes) B > \($0.1.bytes) B" }.joined(separator: ", ")
            checker.fail("memory", now, "replica \(index) holds more than the bound: \(detail)")
        }
    }
}
