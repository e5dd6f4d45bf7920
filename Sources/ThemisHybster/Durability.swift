import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisProtocolKit
import ThemisWire

/// What a Hybster replica writes to its write-ahead log in durable mode: every certified message it sends
/// (with its certificate), what it accepted and committed, its view and its stable checkpoint. Each record is
/// durable before any message of its step leaves (`Action`'s ordering contract).
///
/// The log is also the trusted subsystems' persistence in durable mode: the certificates in it are every
/// certificate the replica ever sent, so at restart each counter resumes at the highest value in the log
/// (`TrustedCounter.resume`). A value certified in a step that a crash cut short never left the replica and
/// is certified again. Without this, the counter would restart ahead of the log (its store keeps a ceiling,
/// or the crash fell between certifying and syncing), the replica could not list everything up to its
/// counter in a VIEW-CHANGE, and after a power cut of the whole cluster no replica could take part.
public enum HybsterRecord: Hashable, Sendable {
    /// The replica entered the NEW-VIEW's view (the log of the view before is gone; the re-proposals are the
    /// new view's first slots, their batches follow as `batch` records).
    case enteredView(HybsterNewView)
    /// A PREPARE of the current view with its batch: made (the primary's) or accepted (a backup's, before
    /// its COMMIT). `vouched` is false while a request of it did not verify here.
    case prepare(HybsterPrepare, vouched: Bool)
    /// The batch of a slot whose PREPARE is known (a re-proposal's, held from the view before or fetched).
    case batch(SequenceNumber, [Request])
    /// This replica's COMMIT.
    case commit(HybsterCommit)
    /// This replica's NEW-VIEW-ACK (its COMMIT for every re-proposal of the current view).
    case newViewAck(HybsterNewViewAck)
    /// The slot committed here. Not urgent: lost in a crash, the votes are asked for again (FETCH).
    case committed(SequenceNumber)
    /// This replica's latest VIEW-CHANGE (with every link of its chains).
    case viewChange(HybsterViewChange)
    /// The stable checkpoint and its proof; the first record of a log segment, whose records restate
    /// everything above it (its state is in the snapshot file of that sequence number).
    case stable(HybsterStableCheckpoint)
    /// The trusted subsystems' counter values, per pillar, restated at the start of a segment (the
    /// certificates of the records it replaces are gone).
    case counters([CounterValue])
}

/// The encoding of `HybsterRecord`: a kind byte, then the fields as Hybster messages write them.
enum HybsterRecordCodec {
    enum Kind: UInt8 {
        case enteredView = 1, prepare, batch, commit, newViewAck, committed, viewChange, stable, counters
    }

    static func encode(_ record: HybsterRecord) -> [UInt8] {
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        switch record {
        case .enteredView(let newView):
            buffer.writeInteger(Kind.enteredView.rawValue)
            buffer.writeHybsterFields(.newView(newView))
        case .prepare(let prepare, let vouched):
            buffer.writeInteger(Kind.prepare.rawValue)
            buffer.writeInteger(UInt8(vouched ? 1 : 0))
            buffer.writeHybsterFields(.prepare(prepare))
        case .batch(let order, let requests):
            buffer.writeInteger(Kind.batch.rawValue)
            buffer.writeInteger(order.rawValue)
            buffer.writeRequests(requests)
        case .commit(let commit):
            buffer.writeInteger(Kind.commit.rawValue)
            buffer.writeHybsterFields(.commit(commit))
        case .newViewAck(let ack):
            buffer.writeInteger(Kind.newViewAck.rawValue)
            buffer.writeHybsterFields(.newViewAck(ack))
        case .committed(let order):
            buffer.writeInteger(Kind.committed.rawValue)
            buffer.writeInteger(order.rawValue)
        case .viewChange(let viewChange):
            buffer.writeInteger(Kind.viewChange.rawValue)
            buffer.writeHybsterFields(.viewChange(viewChange))
        case .stable(let stable):
            buffer.writeInteger(Kind.stable.rawValue)
            buffer.writeHybsterFields(.stableCheckpoint(stable))
        case .counters(let values):
            buffer.writeInteger(Kind.counters.rawValue)
            buffer.writeInteger(UInt32(truncatingIfNeeded: values.count))
            for value in values {
                buffer.writeInteger(value.view)
                buffer.writeInteger(value.order)
            }
        }
        return Array(buffer.readableBytesView)
    }

    static func decode(_ bytes: [UInt8], limits: Limits) throws(WireError) -> HybsterRecord {
        var reader = PayloadReader(buffer: ByteBuffer(bytes: bytes), limits: limits)
        let rawKind = try reader.readUInt8()
        guard let kind = Kind(rawValue: rawKind) else { throw .unknownMessageKind(rawKind) }
        let record: HybsterRecord
        switch kind {
        case .enteredView:
            guard case .newView(let newView) = try reader.readHybsterFields(.newView) else { throw .unexpectedMessage }
            record = .enteredView(newView)
        case .prepare:
            let vouched = try reader.readUInt8() == 1
            guard case .prepare(let prepare) = try reader.readHybsterFields(.prepare) else { throw .unexpectedMessage }
            record = .prepare(prepare, vouched: vouched)
        case .batch:
            let order = try reader.readSequence()
            record = .batch(order, try reader.readRequests())
        case .commit:
            guard case .commit(let commit) = try reader.readHybsterFields(.commit) else { throw .unexpectedMessage }
            record = .commit(commit)
        case .newViewAck:
            guard case .newViewAck(let ack) = try reader.readHybsterFields(.newViewAck) else { throw .unexpectedMessage }
            record = .newViewAck(ack)
        case .committed:
            record = .committed(try reader.readSequence())
        case .viewChange:
            guard case .viewChange(let viewChange) = try reader.readHybsterFields(.viewChange) else { throw .unexpectedMessage }
            record = .viewChange(viewChange)
        case .stable:
            guard case .stableCheckpoint(let stable) = try reader.readHybsterFields(.stableCheckpoint) else { throw .unexpectedMessage }
            record = .stable(stable)
        case .counters:
            let count = try reader.readLength(field: "counters", max: HybsterCodec.pillarsMax)
            var values: [CounterValue] = []
            for _ in 0..<count { values.append(CounterValue(view: try reader.readUInt64(), order: try reader.readUInt64())) }
            record = .counters(values)
        }
        guard reader.buffer.readableBytes == 0 else { throw .trailingBytes(count: reader.buffer.readableBytes) }
        return record
    }
}

/// Durable mode: what the core persists, the restatement at each stable checkpoint, and the rebuild.
extension HybsterReplica {
    /// Appends `record` in durable mode.
    ///
    /// Not while recovering (counters ahead of the state, `recoveringBelow`): what such a replica accepts is
    /// no history of its own, and a log holding it would let a later restart resume the counters below
    /// certificates sent before the data directory was lost. The NEW-VIEW that ends the recovery restates
    /// everything (`stableCheckpointUnpersisted`); a crash before that restarts it recovering again.
    mutating func persist(_ record: @autoclosure () -> HybsterRecord, into actions: inout [HybsterAction]) {
        guard persistsRecords, participates else { return }
        actions.append(.persist(record()))
    }

    /// After a step in which the stable checkpoint moved (or its state arrived): saves its state and restates
    /// in a new segment what the replica must not forget above it. Without the state (a checkpoint adopted
    /// from a NEW-VIEW or a forwarded proof, fetched later) the log goes on in the same segment.
    mutating func persistStableCheckpoint(into actions: inout [HybsterAction]) {
        guard persistsRecords, stableCheckpointUnpersisted, participates else { return }
        stableCheckpointUnpersisted = false
        let sequence = lowWatermark
        if let own = checkpoints.own[sequence], own.digest == checkpoints.stableDigest {
            actions.append(.persistCheckpoint(sequence, state: own.state))
        }
        actions.append(.persist(.stable(HybsterStableCheckpoint(sequence: sequence, stateDigest: checkpoints.stableDigest,
                                                                proof: checkpoints.stableProof, sender: id))))
        actions.append(.persist(.counters(subsystems.map { $0.value(of: 0) })))
        if let newView = viewChange.newView, newView.view == view { actions.append(.persist(.enteredView(newView))) }
        let reproposed = Set((viewChange.newView?.view == view ? viewChange.newView?.reproposals : nil)?.map(\.order) ?? [])
        for order in log.keys.sorted() {
            guard let slot = log[order], let header = slot.prepare else { continue }
            if reproposed.contains(order) {
                if let batch = slot.batch { actions.append(.persist(.batch(order, batch))) }
            } else if let batch = slot.batch {
                actions.append(.persist(.prepare(HybsterPrepare(header: header, requests: batch), vouched: !slot.awaitsVouchers)))
            }
            if let commit = slot.ownCommit { actions.append(.persist(.commit(commit))) }
        }
        if let ack = viewChange.ownAck { actions.append(.persist(.newViewAck(ack))) }
        for order in log.keys.sorted() where log[order]?.isCommitted == true { actions.append(.persist(.committed(order))) }
        if case .viewChanging = status, let own = viewChange.own { actions.append(.persist(.viewChange(own))) }
    }

    /// Rebuilds this (freshly made) replica from its write-ahead log; see `ReplicaCore.restore`. From now on
    /// the replica persists records.
    ///
    /// An empty log is a first start, or a replica whose data directory was lost: it runs as a replica
    /// restarted in memory (silent until a view above its counters, if they went anywhere).
    public mutating func restore(
        _ records: [HybsterRecord], snapshot: (SequenceNumber) -> [UInt8]?, into actions: inout [HybsterAction]
    ) throws(RestoreError) {
        precondition(lastScheduled == .zero && log.isEmpty && !persistsRecords, "restore is for a freshly made replica")
        persistsRecords = true
        guard !records.isEmpty else {
            if let below = recoveringBelow { actions.append(.observe(.recovering(below))) }
            return
        }
        var certifiedValues = Array(repeating: CounterValue.zero, count: subsystems.count)
        for record in records { try replay(record, certifiedValues: &certifiedValues) }
        // The counters resume where the log says: every certificate sent is in it.
        for pillar in subsystems.indices {
            do {
                try subsystems[pillar].resume(counter: 0, at: certifiedValues[pillar])
            } catch {
                throw .invalidRecord("trusted subsystem of pillar \(pillar) cannot resume at \(certifiedValues[pillar]): \(error)")
            }
        }
        recoveringBelow = nil
        if lowWatermark > .zero {
            let sequence = lowWatermark
            let digest = checkpoints.stableDigest
            if let state = snapshot(sequence) {
                let (decoded, chunks) = try CheckpointState.restore(state, sequence: sequence, digest: digest, replica: id, view: view, limits: limits)
                clientTable = decoded.clientTable
                actions.append(.installState(sequence, applicationSnapshot: decoded.applicationSnapshot))
                lastScheduled = sequence
                lastExecuted = sequence
                checkpoints.own[sequence] = (digest, state, chunks)
            } else {
                // No usable state on disk: fetch it as a replica that adopted the checkpoint from a NEW-VIEW does.
                stateTransfer.pending = (sequence, digest, checkpoints.stableProof)
            }
        }
        lastProposed = max(lastProposed, lowWatermark)
        for order in log.keys.sorted() where log[order]?.awaitsVouchers != true {
            for request in log[order]?.batch ?? [] { noteWaiting(request) }
        }
        if case .viewChanging = status { viewChange.deadline = nil }
        actions.append(.observe(.restored(view: view, stable: lowWatermark, slots: log.count)))
        startStateTransferIfBehind(into: &actions)
        // Committed batches after the checkpoint run again on its state; retransmission and FETCH bring back
        // the votes of the rest. A PREPARE whose COMMIT a crash cut short is answered now.
        scheduleExecution(into: &actions)
        for pillar in subsystems.indices { commitInOrder(pillar: pillar, into: &actions) }
    }

    private mutating func replay(_ record: HybsterRecord, certifiedValues: inout [CounterValue]) throws(RestoreError) {
        func note(_ certificate: TrustedCertificate) throws(RestoreError) {
            let pillar = Int(certificate.subsystem.pillar)
            guard certificate.subsystem.replica == id, pillar < certifiedValues.count else {
                throw .invalidRecord("a certificate of \(certificate.subsystem) in the log of replica \(id.rawValue)")
            }
            certifiedValues[pillar] = max(certifiedValues[pillar], certificate.value)
        }
        switch record {
        case .stable(let stable):
            guard stable.sequence >= lowWatermark, stable.sequence.rawValue % settings.checkpointInterval == 0 else {
                throw .invalidRecord("stable checkpoint \(stable.sequence.rawValue) after \(lowWatermark.rawValue)")
            }
            lowWatermark = stable.sequence
            checkpoints.stableDigest = stable.stateDigest
            checkpoints.stableProof = stable.proof
            log = log.filter { $0.key > stable.sequence }
            lastProposed = max(lastProposed, stable.sequence)
        case .counters(let values):
            guard values.count == certifiedValues.count else { throw .invalidRecord("\(values.count) counters for \(certifiedValues.count) pillars") }
            for (pillar, value) in values.enumerated() { certifiedValues[pillar] = max(certifiedValues[pillar], value) }
        case .enteredView(let newView):
            guard newView.view >= view else { throw .invalidRecord("entered view \(newView.view.rawValue) after view \(view.rawValue)") }
            // A restatement of the view this log already entered (a new segment whose sync a crash cut short,
            // read after the old one): what the old records rebuilt stays; the restated ones repeat it.
            if newView.view == view, viewChange.newView?.view == view { return }
            view = newView.view
            status = .normal
            log = [:]
            certified = Array(repeating: .zero, count: subsystems.count)
            viewChange.own = nil
            viewChange.ownAck = nil
            viewChange.newView = newView
            viewChange.received = viewChange.received.filter { $0.value.toView > newView.view }
            let isNewPrimary = newView.sender == id
            for header in newView.reproposals {
                if isNewPrimary { try note(header.certificate) }
                lastProposed = max(lastProposed, header.order)
                guard header.order > lowWatermark else { continue }
                var slot = HybsterSlot()
                slot.prepare = header
                slot.batch = header.digest == Self.nullDigest ? [] : nil
                if !isNewPrimary { slot.commits[id] = header.digest }
                log[header.order] = slot
                certified[pillar(of: header.order)] = max(certified[pillar(of: header.order)], header.order)
            }
        case .prepare(let prepare, let vouched):
            let header = prepare.header
            guard header.view == view, header.sender == primary, Request.batchDigest(prepare.requests) == header.digest else {
                throw .invalidRecord("PREPARE (\(header.view.rawValue), \(header.order.rawValue)) of \(header.sender) in view \(view.rawValue)")
            }
            if header.sender == id {
                try note(header.certificate)
                certified[pillar(of: header.order)] = max(certified[pillar(of: header.order)], header.order)
                lastProposed = max(lastProposed, header.order)
            }
            guard header.order > lowWatermark else { return }
            var slot = log[header.order] ?? HybsterSlot()
            slot.prepare = header
            slot.batch = prepare.requests
            slot.awaitsVouchers = !vouched
            log[header.order] = slot
        case .batch(let order, let requests):
            guard order > lowWatermark, let header = log[order]?.prepare else { return }
            guard Request.batchDigest(requests) == header.digest else { throw .invalidRecord("the batch of \(order.rawValue) does not match its digest") }
            log[order]?.batch = requests
        case .commit(let commit):
            guard commit.sender == id, commit.view == view else {
                throw .invalidRecord("COMMIT (\(commit.view.rawValue), \(commit.order.rawValue)) of \(commit.sender) in view \(view.rawValue)")
            }
            try note(commit.certificate)
            certified[pillar(of: commit.order)] = max(certified[pillar(of: commit.order)], commit.order)
            guard commit.order > lowWatermark, log[commit.order]?.prepare?.digest == commit.digest else { return }
            log[commit.order]?.commits[id] = commit.digest
            log[commit.order]?.ownCommit = commit
            log[commit.order]?.awaitsVouchers = false
        case .newViewAck(let ack):
            guard ack.sender == id, ack.view == view else { throw .invalidRecord("NEW-VIEW-ACK of \(ack.sender) for view \(ack.view.rawValue)") }
            for certificate in ack.certificates { try note(certificate) }
            viewChange.ownAck = ack
        case .committed(let order):
            guard order > lowWatermark, log[order]?.prepare != nil else { return }
            log[order]?.isCommitted = true
        case .viewChange(let message):
            guard message.sender == id, message.toView > view else {
                throw .invalidRecord("VIEW-CHANGE of \(message.sender) to \(message.toView.rawValue) in view \(view.rawValue)")
            }
            for chain in message.chains { for link in chain { try note(link) } }
            status = .viewChanging(to: message.toView)
            viewChange.own = message
            viewChange.received[id] = message
            viewChange.attempts = max(viewChange.attempts, 1)
        }
    }
}
