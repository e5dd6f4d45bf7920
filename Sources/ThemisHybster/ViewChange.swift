import ThemisCore
import ThemisCrypto
import ThemisProtocolKit

/// View-change state: the VIEW-CHANGEs received (the latest per sender), this replica's own content and
/// chains, timers, batches carried over from the view left, and the NEW-VIEW of the current view.
struct HybsterViewChangeState: Sendable {
    var received: [ReplicaID: HybsterViewChange] = [:]
    /// This replica's VIEW-CHANGE content since it left `view` (fixed; each attempt adds chain links).
    var own: HybsterViewChange?
    var attempts = 0
    var deadline: UInt64?
    /// Batches of the view this replica left, by digest, for the re-proposals of the next.
    var held: [Digest: [Request]] = [:]
    /// NEW-VIEW-ACKs for a view this replica has not entered yet (one per sender).
    var earlyAcks: [ReplicaID: HybsterNewViewAck] = [:]
    /// The NEW-VIEW that started the current view (sent again to a replica still asking for it).
    var newView: HybsterNewView?
    /// This replica's acknowledgement of `newView` (repeated until the re-proposals commit).
    var ownAck: HybsterNewViewAck?
    /// REQ-VIEW-CHANGEs for views above the current one, the latest per replica (ours included).
    var requests: [ReplicaID: View] = [:]

    /// The most links a chain may have: a replica that failed this many view changes in a row without
    /// entering a view stays at its last target (wire bound of VIEW-CHANGE).
    static let chainLinksMax = 64
}

extension HybsterReplica {
    /// The current timeout: doubled for every view change without progress, up to 64 times.
    var timeoutTicks: UInt64 { settings.requestTimeoutTicks << UInt64(min(viewChange.attempts, 6)) }

    var target: View {
        if case .viewChanging(let target) = status { return target }
        return view
    }

    static var nullDigest: Digest { Request.batchDigest([]) }

    /// Leaves the current view (or the target that failed) for `newTarget`: fixes the VIEW-CHANGE content
    /// on the first attempt, adds one continuing certificate per pillar, and broadcasts it.
    mutating func startViewChange(to newTarget: View, into actions: inout [HybsterAction]) {
        guard participates, newTarget > target else { return }
        var own = viewChange.own
        if own == nil {
            let entries = log.keys.sorted().compactMap { log[$0]?.prepare }.filter { $0.order > lowWatermark }
            for slot in log.values {
                if let header = slot.prepare, let batch = slot.batch { viewChange.held[header.digest] = batch }
            }
            own = HybsterViewChange(sender: id, fromView: view, toView: view, checkpoint: lowWatermark, checkpointDigest: checkpoints.stableDigest,
                                    checkpointProof: checkpoints.stableProof, entries: entries,
                                    chains: Array(repeating: [], count: subsystems.count))
        }
        guard let content = own, content.chains.allSatisfy({ $0.count < HybsterViewChangeState.chainLinksMax }) else { return }
        let digest = content.certifiedDigest
        var chains = content.chains
        for pillar in 0..<subsystems.count {
            do {
                chains[pillar].append(try subsystems[pillar].certifyContinuing(digest, counter: 0, value: CounterValue(view: newTarget.rawValue, order: 0)))
            } catch {
                actions.append(.observe(.certificationRefused(error.description)))
                return
            }
        }
        let message = HybsterViewChange(sender: id, fromView: content.fromView, toView: newTarget, checkpoint: content.checkpoint,
                                        checkpointDigest: content.checkpointDigest, checkpointProof: content.checkpointProof,
                                        entries: content.entries, chains: chains)
        viewChange.own = message
        viewChange.received[id] = message
        viewChange.attempts += 1
        persist(.viewChange(message), into: &actions)
        viewChange.deadline = nil
        status = .viewChanging(to: newTarget)
        requestDeadline = nil
        actions.append(.observe(.viewChangeStarted(newTarget)))
        actions.append(.broadcast(.viewChange(message)))
        makeNewViewIfReady(into: &actions)
    }

    mutating func receiveViewChange(_ message: HybsterViewChange, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard message.toView > view else {
            // A replica still asking for the view we are in, or an earlier one (it was cut off while the others
            // moved on): our NEW-VIEW brings it here.
            if status == .normal, isPrimary, let newView = viewChange.newView {
                actions.append(.send(.newView(newView), to: message.sender))
                return
            }
            throw .wrongView(message: message.toView, current: view)
        }
        if let earlier = viewChange.received[message.sender], earlier.toView >= message.toView { throw .duplicate }
        try validate(message)
        viewChange.received[message.sender] = message
        // A VIEW-CHANGE asks for its view as a REQ-VIEW-CHANGE does (the sender's request may have been lost).
        if (viewChange.requests[message.sender] ?? View(0)) < message.toView { viewChange.requests[message.sender] = message.toView }
        guard participates else { return }
        leaveIfRequested(into: &actions)
        // f + 1 replicas (one of them correct) want a view above our target: join the lowest of them.
        let above = viewChange.received.values.filter { $0.sender != id && $0.toView > target }.map(\.toView).sorted()
        if above.count >= quorum, let lowest = above.first {
            startViewChange(to: lowest, into: &actions)
        }
        makeNewViewIfReady(into: &actions)
    }

    /// The rules a VIEW-CHANGE must follow whoever checks it (the new primary, or a backup checking a
    /// NEW-VIEW): a valid checkpoint proof, entries that are PREPAREs of `fromView` above the checkpoint,
    /// and per pillar a chain of continuing certificates ending at (toView, 0) whose first link proves the
    /// entries complete.
    func validate(_ message: HybsterViewChange) throws(HybsterRejection) {
        guard configuration.contains(message.sender) else { throw .unknownReplica(message.sender) }
        guard message.toView > message.fromView else { throw .invalidViewChange("to \(message.toView.rawValue) is not above from \(message.fromView.rawValue)") }
        try validateCheckpoint(message.checkpoint, digest: message.checkpointDigest, proof: message.checkpointProof)
        let primaryOfView = configuration.primary(of: message.fromView)
        var orders = Set<SequenceNumber>()
        var previous = message.checkpoint
        for entry in message.entries {
            guard entry.order > previous, entry.order <= message.checkpoint + settings.watermarkWindow else {
                throw .invalidViewChange("entry \(entry.order.rawValue) out of order or outside the window of checkpoint \(message.checkpoint.rawValue)")
            }
            guard entry.view == message.fromView, entry.sender == primaryOfView else {
                throw .invalidViewChange("entry \(entry.order.rawValue) is not a PREPARE of view \(message.fromView.rawValue)")
            }
            try checkOrdered(entry.certificate, by: primaryOfView, view: message.fromView, order: entry.order)
            orders.insert(entry.order)
            previous = entry.order
        }
        guard message.chains.count == subsystems.count else { throw .invalidViewChange("\(message.chains.count) chains for \(subsystems.count) pillars") }
        let end = CounterValue(view: message.toView.rawValue, order: 0)
        for (pillar, chain) in message.chains.enumerated() {
            guard let first = chain.first, let last = chain.last, chain.count <= HybsterViewChangeState.chainLinksMax else {
                throw .invalidViewChange("pillar \(pillar): no chain or too long")
            }
            let subsystem = TrustedSubsystemID(replica: message.sender, pillar: UInt32(pillar))
            var expected: CounterValue?
            for link in chain {
                guard link.kind == .continuing, link.counter == 0, link.subsystem == subsystem, link.previous < link.value, link.value.order == 0,
                      expected == nil || expected == link.previous
                else { throw .invalidViewChange("pillar \(pillar): broken chain link \(link.previous) -> \(link.value)") }
                expected = link.value
            }
            guard last.value == end, first.value.view > message.fromView.rawValue, first.previous.view <= message.fromView.rawValue else {
                throw .invalidViewChange("pillar \(pillar): chain \(first.previous) ... \(last.value) does not leave view \(message.fromView.rawValue) for \(message.toView.rawValue)")
            }
            // Everything certified on this pillar in fromView above the checkpoint must be listed.
            guard first.previous.view == message.fromView.rawValue, first.previous.order > message.checkpoint.rawValue else { continue }
            guard first.previous.order <= message.checkpoint.rawValue + settings.watermarkWindow else {
                throw .invalidViewChange("pillar \(pillar): certified up to \(first.previous.order), beyond the window")
            }
            var order = message.checkpoint.next
            while order.rawValue <= first.previous.order {
                if self.pillar(of: order) == pillar, !orders.contains(order) {
                    throw .invalidViewChange("pillar \(pillar): order \(order.rawValue) certified but not listed")
                }
                order = order.next
            }
        }
    }

    /// A checkpoint with f + 1 matching CHECKPOINTs from distinct replicas (none at 0).
    func validateCheckpoint(_ sequence: SequenceNumber, digest: Digest, proof: [HybsterCheckpoint]) throws(HybsterRejection) {
        if sequence == .zero {
            guard proof.isEmpty else { throw .invalidViewChange("a proof for checkpoint 0") }
            return
        }
        var senders = Set<ReplicaID>()
        for checkpoint in proof {
            try Self.checkCheckpoint(checkpoint, settings: settings)
            guard checkpoint.sequence == sequence, checkpoint.stateDigest == digest, configuration.contains(checkpoint.sender),
                  senders.insert(checkpoint.sender).inserted
            else { throw .invalidViewChange("checkpoint proof entry of \(checkpoint.sender) does not match \(sequence.rawValue)") }
        }
        guard senders.count >= quorum else { throw .invalidViewChange("checkpoint proof of \(senders.count) replicas") }
    }

    /// The re-proposals f + 1 VIEW-CHANGEs determine: after the highest checkpoint, up to the highest entry,
    /// the highest-view PREPARE's digest per order number, the null batch where none has one.
    /// - Returns: nil for no VIEW-CHANGE (callers hold f + 1).
    func reproposals(from viewChanges: [HybsterViewChange]) -> (base: HybsterViewChange, orders: [(SequenceNumber, Digest)])? {
        guard let base = viewChanges.max(by: { ($0.checkpoint, $1.sender) < ($1.checkpoint, $0.sender) }) else { return nil }
        var chosen: [SequenceNumber: PrepareHeader] = [:]
        for message in viewChanges {
            for entry in message.entries where entry.order > base.checkpoint {
                if let known = chosen[entry.order], known.view >= entry.view { continue }
                chosen[entry.order] = entry
            }
        }
        guard let highest = chosen.keys.max() else { return (base, []) }
        var orders: [(SequenceNumber, Digest)] = []
        var order = base.checkpoint.next
        while order <= highest {
            orders.append((order, chosen[order]?.digest ?? Self.nullDigest))
            order = order.next
        }
        return (base, orders)
    }

    /// As the primary of our target with f + 1 VIEW-CHANGEs for it (our own included): certify the
    /// re-proposals, send NEW-VIEW, enter the view.
    mutating func makeNewViewIfReady(into actions: inout [HybsterAction]) {
        guard participates, case .viewChanging(let newView) = status, configuration.primary(of: newView) == id, viewChange.received[id] != nil else { return }
        let viewChanges = viewChange.received.values.filter { $0.toView == newView }.sorted { $0.sender < $1.sender }
        guard viewChanges.count >= quorum, let (base, orders) = reproposals(from: viewChanges) else { return }
        var headers: [PrepareHeader] = []
        for (order, digest) in orders {
            let certifiedDigest = HybsterDigests.prepare(view: newView, order: order, digest: digest, sender: id)
            do {
                let certificate = try subsystems[pillar(of: order)].certifyIndependent(
                    certifiedDigest, counter: 0, value: CounterValue(view: newView.rawValue, order: order.rawValue))
                headers.append(PrepareHeader(view: newView, order: order, digest: digest, sender: id, certificate: certificate))
            } catch {
                actions.append(.observe(.certificationRefused(error.description)))
                return
            }
        }
        let message = HybsterNewView(view: newView, sender: id, viewChanges: viewChanges, reproposals: headers)
        actions.append(.broadcast(.newView(message)))
        actions.append(.observe(.newViewSent(newView)))
        enter(message, base: base, into: &actions)
    }

    mutating func receiveNewView(_ message: HybsterNewView, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard message.view > view || (message.view == view && status != .normal) else { throw .wrongView(message: message.view, current: view) }
        guard message.view >= target else { throw .wrongView(message: message.view, current: target) }
        if let recovering = recoveringBelow, message.view <= recovering { throw .notParticipating }
        let newPrimary = configuration.primary(of: message.view)
        guard message.sender == newPrimary else { throw .notFromPrimary(message.sender, primary: newPrimary) }
        guard message.viewChanges.count >= quorum, message.viewChanges.count <= configuration.replicaCount,
              Set(message.viewChanges.map(\.sender)).count == message.viewChanges.count
        else { throw .invalidNewView("\(message.viewChanges.count) VIEW-CHANGEs") }
        for viewChange in message.viewChanges {
            guard viewChange.toView == message.view else { throw .invalidNewView("a VIEW-CHANGE for view \(viewChange.toView.rawValue)") }
            try validate(viewChange)
        }
        guard let (base, orders) = reproposals(from: message.viewChanges) else { throw .invalidNewView("no VIEW-CHANGE") }
        guard orders.count == message.reproposals.count else { throw .invalidNewView("\(message.reproposals.count) re-proposals, \(orders.count) expected") }
        for ((order, digest), header) in zip(orders, message.reproposals) {
            guard header.order == order, header.digest == digest, header.view == message.view, header.sender == newPrimary else {
                throw .invalidNewView("re-proposal \(header.order.rawValue) does not follow from the VIEW-CHANGEs")
            }
            try checkOrdered(header.certificate, by: newPrimary, view: message.view, order: order)
        }
        // Our NEW-VIEW-ACK: a certificate per pillar at its highest re-proposed order, our COMMIT for them all.
        var certificates: [TrustedCertificate] = []
        let acknowledged = HybsterDigests.reproposals(view: message.view, message.reproposals)
        let ackDigest = HybsterDigests.newViewAck(view: message.view, reproposalsDigest: acknowledged, sender: id)
        for pillar in 0..<subsystems.count {
            guard let highest = message.reproposals.last(where: { self.pillar(of: $0.order) == pillar }) else { continue }
            do {
                certificates.append(try subsystems[pillar].certifyIndependent(
                    ackDigest, counter: 0, value: CounterValue(view: message.view.rawValue, order: highest.order.rawValue)))
            } catch {
                actions.append(.observe(.certificationRefused(error.description)))
                throw .notParticipating
            }
        }
        if recoveringBelow != nil {
            // Back in: the log (empty while recovering) restates everything at the next flush, counters included.
            recoveringBelow = nil
            stableCheckpointUnpersisted = true
        }
        enter(message, base: base, into: &actions)
        if !certificates.isEmpty {
            let ack = HybsterNewViewAck(view: message.view, reproposalsDigest: acknowledged, sender: id, certificates: certificates)
            viewChange.ownAck = ack
            persist(.newViewAck(ack), into: &actions)
            actions.append(.broadcast(.newViewAck(ack)))
        }
    }

    /// Enters the NEW-VIEW's view: adopts its base checkpoint, logs the re-proposals (our own vote included),
    /// and resumes normal operation.
    mutating func enter(_ message: HybsterNewView, base: HybsterViewChange, into actions: inout [HybsterAction]) {
        for slot in log.values {
            if let header = slot.prepare, let batch = slot.batch { viewChange.held[header.digest] = batch }
        }
        let newView = message.view
        view = newView
        status = .normal
        log = [:]
        certified = Array(repeating: .zero, count: subsystems.count)
        viewChange.received = viewChange.received.filter { $0.value.toView > newView }
        viewChange.requests = viewChange.requests.filter { $0.value > newView }
        viewChange.own = nil
        viewChange.ownAck = nil
        viewChange.deadline = nil
        viewChange.newView = message
        persist(.enteredView(message), into: &actions)
        // Nothing of the old view's queue may be proposed below the re-proposals.
        proposedTimestamps = [:]
        pendingRequests = RequestQueue()
        queuedClients = []
        lastProposed = max(lastProposed, message.reproposals.last?.order ?? .zero, base.checkpoint)
        if base.checkpoint > lowWatermark {
            makeStable(base.checkpoint, digest: base.checkpointDigest, proof: base.checkpointProof, into: &actions)
        }
        let isNewPrimary = message.sender == id
        let acknowledged = HybsterDigests.reproposals(view: newView, message.reproposals)
        for header in message.reproposals where header.order > lowWatermark {
            var slot = HybsterSlot()
            slot.prepare = header
            slot.batch = header.digest == Self.nullDigest ? [] : viewChange.held[header.digest]
            if header.digest != Self.nullDigest, let batch = slot.batch { persist(.batch(header.order, batch), into: &actions) }
            if !isNewPrimary { slot.commits[id] = header.digest }
            log[header.order] = slot
            certified[pillar(of: header.order)] = header.order
        }
        viewChange.held = [:]
        // Acknowledgements that arrived before we entered.
        let early = viewChange.earlyAcks.values.filter { $0.view == newView && $0.reproposalsDigest == acknowledged }
        viewChange.earlyAcks = viewChange.earlyAcks.filter { $0.value.view > newView }
        for ack in early { countAck(ack, into: &actions) }
        actions.append(.observe(.viewChanged(newView, primary: message.sender)))
        // Requests still waiting go to the new primary.
        for request in waiting.values.sorted(by: { ($0.client, $0.timestamp) < ($1.client, $1.timestamp) }) {
            guard request.timestamp > clientTable.lastScheduled(request.client) else { continue }
            if isNewPrimary {
                try? enqueue(request)
            } else {
                actions.append(.send(.request(request, relayedBy: id), to: message.sender))
            }
        }
        if !waiting.isEmpty { requestDeadline = now + timeoutTicks }
        for order in log.keys.sorted() { advance(order, into: &actions) }
        fetchMissing(into: &actions)
        proposeBatches(into: &actions)
    }

    mutating func receiveNewViewAck(_ ack: HybsterNewViewAck, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard ack.view >= view else { throw .wrongView(message: ack.view, current: view) }
        if ack.view > view || status != .normal {
            guard ack.view <= target.next else { throw .wrongView(message: ack.view, current: target) }
            viewChange.earlyAcks[ack.sender] = ack
            return
        }
        guard let newView = viewChange.newView, newView.view == view,
              HybsterDigests.reproposals(view: view, newView.reproposals) == ack.reproposalsDigest
        else { throw .invalidNewView("acknowledgement of other re-proposals") }
        countAck(ack, into: &actions)
    }

    /// A backup's acknowledgement counts as its COMMIT for every re-proposal, if its certificates are the
    /// ones it must have made (one per pillar with re-proposals, at the highest of them).
    mutating func countAck(_ ack: HybsterNewViewAck, into actions: inout [HybsterAction]) {
        guard let newView = viewChange.newView, ack.sender != newView.sender else { return }
        var index = 0
        for pillar in 0..<subsystems.count {
            guard let highest = newView.reproposals.last(where: { self.pillar(of: $0.order) == pillar }) else { continue }
            guard index < ack.certificates.count else { return }
            let certificate = ack.certificates[index]
            guard certificate.kind == .independent, certificate.counter == 0,
                  certificate.subsystem == TrustedSubsystemID(replica: ack.sender, pillar: UInt32(pillar)),
                  certificate.value == CounterValue(view: newView.view.rawValue, order: highest.order.rawValue)
            else { return }
            index += 1
        }
        guard index == ack.certificates.count else { return }
        for header in newView.reproposals where header.order > lowWatermark {
            guard log[header.order]?.commits[ack.sender] == nil else { continue }
            log[header.order]?.commits[ack.sender] = header.digest
            advance(header.order, into: &actions)
        }
    }

    /// Asks for view `newView` without leaving the current one; leaves it once f + 1 replicas asked.
    mutating func requestViewChange(to newView: View, into actions: inout [HybsterAction]) {
        guard participates, status == .normal, newView > view else { return }
        if (viewChange.requests[id] ?? .init(0)) < newView { viewChange.requests[id] = newView }
        actions.append(.broadcast(.requestViewChange(HybsterViewChangeRequest(toView: viewChange.requests[id] ?? newView, sender: id))))
        leaveIfRequested(into: &actions)
    }

    mutating func receiveViewChangeRequest(_ request: HybsterViewChangeRequest, into actions: inout [HybsterAction]) throws(HybsterRejection) {
        guard request.toView > view else {
            // A replica asking for a view we are past (a restarted one whose counters are below our view): our
            // NEW-VIEW, as the primary, brings it here (within the fetch budget).
            if status == .normal, isPrimary, let newView = viewChange.newView, newView.view == view, spendBudget(of: request.sender) {
                actions.append(.send(.newView(newView), to: request.sender))
                return
            }
            throw .wrongView(message: request.toView, current: view)
        }
        if let earlier = viewChange.requests[request.sender], earlier >= request.toView { throw .duplicate }
        viewChange.requests[request.sender] = request.toView
        leaveIfRequested(into: &actions)
    }

    /// f + 1 replicas asked for views above ours: move to the highest view that f + 1 of them asked for (at
    /// least one correct replica wants it).
    ///
    /// While changing views, this replica wants to leave its view already: f others asking for views above its
    /// target suffice. (Rolling restarts: the primary of view v sent its NEW-VIEW, restarted and forgot it; a
    /// replica that missed it stayed changing to v, alone, while the replicas in v asked for v + 1 and were
    /// one short of f + 1. The NEW-VIEW of a forgotten primary cannot be sent again.)
    mutating func leaveIfRequested(into actions: inout [HybsterAction]) {
        guard participates else { return }
        switch status {
        case .normal:
            let asked = viewChange.requests.values.filter { $0 > view }.sorted(by: >)
            guard asked.count >= quorum else { return }
            startViewChange(to: asked[quorum - 1], into: &actions)
        case .viewChanging(let current):
            guard quorum >= 2 else { return }
            let asked = viewChange.requests.filter { $0.key != id && $0.value > current }.map(\.value).sorted(by: >)
            guard asked.count >= quorum - 1 else { return }
            startViewChange(to: asked[quorum - 2], into: &actions)
        }
    }

    // MARK: Timers

    public mutating func tick(into actions: inout [HybsterAction]) {
        now += 1
        stateTransferTick(into: &actions)
        let half = max(1, settings.requestTimeoutTicks / 2)
        if now % half == 0 { retransmit(into: &actions) }
        if now % max(1, half / 2) == 0 { fetchMissing(into: &actions) }
        if let below = recoveringBelow, now % half == 0 {
            // Restarted with counters at view `below`: ask for the view above it. If the cluster is past it
            // already, its primary sends the NEW-VIEW that lets this replica take part again at once; if not, this
            // counts as one request for a view change (f + 1 are needed), as a waiting request would.
            actions.append(.broadcast(.requestViewChange(HybsterViewChangeRequest(toView: below.next, sender: id))))
        }
        guard participates else { return }
        switch status {
        case .normal:
            if let deadline = requestDeadline, now >= deadline, !isPrimary || now >= deadline + timeoutTicks {
                requestDeadline = now + timeoutTicks
                viewChange.attempts += 1
                requestViewChange(to: view.next, into: &actions)
            }
        case .viewChanging(let target):
            let supporters = viewChange.received.values.reduce(0) { $0 + ($1.toView >= target ? 1 : 0) }
            guard supporters >= quorum else {
                viewChange.deadline = nil
                // Alone in this view change: follow f others that ask for a later view (`leaveIfRequested`).
                leaveIfRequested(into: &actions)
                return
            }
            if viewChange.deadline == nil { viewChange.deadline = now + timeoutTicks }
            if let deadline = viewChange.deadline, now >= deadline { startViewChange(to: target.next, into: &actions) }
        }
    }

    /// Messages may be lost: every half timeout a replica repeats what others may still need from it for
    /// order numbers not committed here yet (its PREPAREs or COMMITs, the NEW-VIEW or its acknowledgement),
    /// and, while changing views, its VIEW-CHANGE.
    mutating func retransmit(into actions: inout [HybsterAction]) {
        guard participates else { return }
        switch status {
        case .viewChanging:
            if let own = viewChange.own { actions.append(.broadcast(.viewChange(own))) }
        case .normal:
            if let asked = viewChange.requests[id], asked > view {
                actions.append(.broadcast(.requestViewChange(HybsterViewChangeRequest(toView: asked, sender: id))))
            }
            var reproposalPending = false
            var asked = 0
            let reproposed = viewChange.newView?.reproposals.last?.order ?? .zero
            for order in log.keys.sorted() where order > lastScheduled {
                guard let slot = log[order], let header = slot.prepare, !slot.isCommitted else { continue }
                if order <= reproposed { reproposalPending = true }
                if header.sender == id, order > reproposed, let batch = slot.batch {
                    actions.append(.broadcast(.prepare(HybsterPrepare(header: header, requests: batch))))
                }
                // Ask the others for their votes on the first uncommitted order numbers.
                if asked < Int(pillarCount) * limits.pipelineDepthMax {
                    actions.append(.broadcast(.fetch(HybsterFetch(order: order, sender: id))))
                    asked += 1
                }
            }
            guard reproposalPending, let newView = viewChange.newView else { return }
            if newView.sender == id {
                actions.append(.broadcast(.newView(newView)))
            } else if let ack = viewChange.ownAck {
                actions.append(.broadcast(.newViewAck(ack)))
            }
        }
    }

    // MARK: Request timers

    mutating func noteWaiting(_ request: Request) {
        guard request.timestamp > clientTable.lastExecuted(request.client) else { return }
        if let known = waiting[request.client], known.timestamp >= request.timestamp { return }
        waiting[request.client] = request
        if requestDeadline == nil { requestDeadline = now + timeoutTicks }
    }

    mutating func noteExecuted(_ requests: [Request]) {
        var progressed = false
        for request in requests {
            if let known = waiting[request.client], known.timestamp <= request.timestamp {
                waiting[request.client] = nil
                progressed = true
            }
        }
        guard progressed else { return }
        viewChange.attempts = 0
        requestDeadline = waiting.isEmpty ? nil : now + timeoutTicks
    }
}
