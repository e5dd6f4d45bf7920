// The one in-memory test cluster of PBFT cores, shared by the PBFT unit tests, the transcript harness and the
// fuzz seed generator (Fuzz/ThemisFuzzTargets): it routes actions between replicas through a FIFO network
// (messages can be held back, dropped or injected), executes batches synchronously on a tiny state machine
// that records its history, and collects replies per client. Public API of ThemisPBFT only (no @testable:
// the fuzz build is a release build).
import ThemisCore
import ThemisPBFT

public struct Envelope {
    public var from: ReplicaID
    public var to: ReplicaID
    public var message: PBFTMessage
    public var authenticator: [UInt8] = []

    public init(from: ReplicaID, to: ReplicaID, message: PBFTMessage, authenticator: [UInt8] = []) {
        self.from = from
        self.to = to
        self.message = message
        self.authenticator = authenticator
    }
}

/// One input a replica of the cluster was given (recorded for the replicas in `TestCluster.recorded`).
public enum ClusterInput {
    case submit(Request)
    case receive(Envelope, requestsUnverified: Bool)
    case tick
}

/// A stand-in authenticator: the sender's id. Real verification is the shell's job; the harness only
/// checks that every forwarded proof carries one unless the enclosing sender vouches for it.
public func fakeAuthenticator(_ sender: ReplicaID) -> [UInt8] { [0xA0, UInt8(sender.rawValue)] }

/// Entries inside VIEW-CHANGE / NEW-VIEW that could not be verified by a third party.
public func unverifiableEntries(_ message: PBFTMessage) -> [String] {
    func check(_ viewChange: ViewChange) -> [String] {
        var problems: [String] = []
        let owner = viewChange.sender
        for entry in viewChange.checkpointProof where entry.authenticator.isEmpty && entry.message.sender != owner {
            problems.append("checkpoint of \(entry.message.sender) in VIEW-CHANGE of \(owner)")
        }
        for certificate in viewChange.prepared {
            if certificate.prePrepare.authenticator.isEmpty && certificate.prePrepare.message.sender != owner {
                problems.append("pre-prepare \(certificate.sequence) in VIEW-CHANGE of \(owner)")
            }
            for prepare in certificate.prepares where prepare.authenticator.isEmpty && prepare.message.sender != owner {
                problems.append("prepare of \(prepare.message.sender) in VIEW-CHANGE of \(owner)")
            }
        }
        return problems
    }
    switch message {
    case .viewChange(let viewChange): return check(viewChange)
    case .newView(let newView):
        var problems = newView.prePrepares.filter { $0.authenticator.isEmpty }.map { "O entry \($0.message.sequence)" }
        for entry in newView.viewChanges {
            if entry.authenticator.isEmpty && entry.message.sender != newView.sender {
                problems.append("VIEW-CHANGE of \(entry.message.sender) in NEW-VIEW")
            }
            problems += check(entry.message)
        }
        return problems
    default: return []
    }
}

public struct TestCluster {
    public var replicas: [PBFTReplica]
    public var network: [Envelope] = []
    /// Per replica: the executed (sequence, requests) history.
    public var executedHistory: [[(SequenceNumber, [Request])]]
    /// Per replica: the results of the application (operation bytes concatenated in order).
    public var applicationState: [[UInt8]]
    public var replies: [Reply] = []
    public var rejections: [(ReplicaID, Rejection)] = []
    public var events: [(ReplicaID, Event)] = []
    /// Replicas whose outgoing messages are dropped (crashed or silent).
    public var silenced: Set<ReplicaID> = []
    /// States installed by state transfer.
    public var installed: [(ReplicaID, SequenceNumber)] = []
    /// Forwarded proofs a third party could not verify (must stay empty).
    public var unverifiable: [String] = []
    /// Drop filter applied to each delivered envelope.
    public var drop: (Envelope) -> Bool = { _ in false }
    /// Rewrites an envelope before delivery (a Byzantine sender).
    public var tamper: (Envelope) -> Envelope = { $0 }
    /// Replicas for which no client request verifies (a client whose MAC entry for them is corrupted, or a
    /// primary that made the request up): the shell hands them PRE-PREPAREs as `requestsUnverified`.
    public var requestsUnverifiableAt: Set<ReplicaID> = []
    /// Replicas whose inputs are recorded in `inputs`, in order (the fuzz seed generator records one).
    public var recorded: Set<ReplicaID> = []
    public var inputs: [(ReplicaID, ClusterInput)] = []
    /// Per replica, durable mode: the records on its "disk" since its last saved checkpoint state.
    public var persisted: [[PBFTRecord]]
    /// Per replica, durable mode: the saved state of its stable checkpoint.
    public var savedStates: [[SequenceNumber: [UInt8]]]
    /// Per replica, durable mode: the checkpoints it staged (`stageCheckpoint`), in order.
    public var staged: [[SequenceNumber]]
    /// Replicas whose application runs behind the core: their `execute` and `installState` actions wait in
    /// `deferredExecution` until `executeDeferred` (as with the shell's executor, which answers later).
    public var executionDeferred: Set<ReplicaID> = []
    public var deferredExecution: [ReplicaID: [PBFTAction]] = [:]

    public init(replicaCount: Int = 4, settings: ProtocolSettings = ProtocolSettings(checkpointInterval: 4, watermarkWindow: 8),
         limits: Limits = Limits()) throws {
        let configuration = try ClusterConfiguration(replicaCount: replicaCount)
        replicas = configuration.replicas.map {
            PBFTReplica(id: $0, configuration: configuration, settings: settings, limits: limits)
        }
        executedHistory = Array(repeating: [], count: replicaCount)
        applicationState = Array(repeating: [], count: replicaCount)
        persisted = Array(repeating: [], count: replicaCount)
        savedStates = Array(repeating: [:], count: replicaCount)
        staged = Array(repeating: [], count: replicaCount)
    }

    /// Durable mode for every replica (a restore from an empty log turns it on). An empty log means the replica
    /// may have forgotten everything, so each runs the recovery protocol: on a first start every answer is
    /// blank and one tick ends it.
    public mutating func makeDurable() throws(RestoreError) {
        for index in replicas.indices {
            var actions: [PBFTAction] = []
            try replicas[index].restore([], snapshot: { _ in nil }, into: &actions)
            perform(actions, at: replicas[index].id)
        }
        tick(1)
    }

    /// Replaces a replica by a fresh one with empty state that runs the recovery protocol (an in-memory
    /// restart as a process does it), with `nonce` as its incarnation.
    public mutating func restartRecovering(_ replica: ReplicaID, nonce: UInt64) {
        restart(replica)
        network.removeAll { $0.to == replica }
        replicas[index(replica)].recoveryNonce = nonce
        replicas[index(replica)].beginRecovery()
    }

    /// Crashes `replica` (its memory, its application and the messages on their way to it are lost) and
    /// starts it again from its disk: `persisted` and `savedStates`.
    public mutating func restartFromDisk(_ replica: ReplicaID) throws(RestoreError) {
        let index = index(replica)
        let old = replicas[index]
        var fresh = PBFTReplica(id: replica, configuration: old.configuration, settings: old.settings, limits: old.limits)
        applicationState[index] = []
        executedHistory[index] = []
        network.removeAll { $0.to == replica }
        let states = savedStates[index]
        var actions: [PBFTAction] = []
        try fresh.restore(persisted[index], snapshot: { states[$0] }, into: &actions)
        replicas[index] = fresh
        perform(actions, at: replica)
    }

    public static func request(_ client: UInt32, _ timestamp: UInt64, _ operation: [UInt8] = [1]) -> Request {
        Request(client: ClientID(client), timestamp: Timestamp(timestamp), operation: operation)
    }

    /// Submits a request at one replica, then flushes it.
    public mutating func submit(_ request: Request, to replica: ReplicaID) {
        var actions: [PBFTAction] = []
        if recorded.contains(replica) { inputs.append((replica, .submit(request))) }
        do {
            try replicas[index(replica)].submit(Verified(checked: request), into: &actions)
        } catch {
            rejections.append((replica, error))
        }
        replicas[index(replica)].flush(into: &actions)
        perform(actions, at: replica)
    }

    /// Delivers one message directly (used to inject Byzantine messages).
    @discardableResult
    public mutating func deliver(_ message: PBFTMessage, to replica: ReplicaID, authenticator: [UInt8] = []) -> Rejection? {
        var actions: [PBFTAction] = []
        var rejection: Rejection?
        var requestsUnverified = false
        if case .prePrepare = message, requestsUnverifiableAt.contains(replica) { requestsUnverified = true }
        if recorded.contains(replica) {
            // The sender is the one the message names (what a link authenticates).
            let envelope = Envelope(from: message.sender, to: replica, message: message, authenticator: authenticator)
            inputs.append((replica, .receive(envelope, requestsUnverified: requestsUnverified)))
        }
        do {
            try replicas[index(replica)].receive(
                Verified(checked: message, authenticator: authenticator, requestsUnverified: requestsUnverified), into: &actions)
        } catch {
            rejection = error
            rejections.append((replica, error))
        }
        replicas[index(replica)].flush(into: &actions)
        perform(actions, at: replica)
        return rejection
    }

    /// Ticks every replica that is not silenced `count` times, delivering messages after each tick.
    public mutating func tick(_ count: Int, replicas only: [ReplicaID]? = nil) {
        for _ in 0..<count {
            for replica in only ?? replicas.map(\.id) {
                if recorded.contains(replica) { inputs.append((replica, .tick)) }
                var actions: [PBFTAction] = []
                replicas[index(replica)].tick(into: &actions)
                replicas[index(replica)].flush(into: &actions)
                perform(actions, at: replica)
            }
            run()
        }
    }

    /// Submits a request at every replica in `to` (a client that broadcasts after its retransmission timeout).
    public mutating func broadcast(_ request: Request, to targets: [ReplicaID]) {
        for replica in targets { submit(request, to: replica) }
    }

    public func views() -> [UInt64] { replicas.map(\.view.rawValue) }

    /// Delivers queued messages until the network is empty (or `limit` deliveries).
    public mutating func run(limit: Int = 100_000) {
        var delivered = 0
        while !network.isEmpty && delivered < limit {
            let queued = network.removeFirst()
            delivered += 1
            if drop(queued) { continue }
            let envelope = tamper(queued)
            unverifiable += unverifiableEntries(envelope.message)
            deliver(envelope.message, to: envelope.to, authenticator: envelope.authenticator)
        }
    }

    public mutating func perform(_ actions: [PBFTAction], at replica: ReplicaID) {
        for action in actions {
            switch action {
            case .send(let message, let to):
                if !silenced.contains(replica) {
                    network.append(Envelope(from: replica, to: to, message: message, authenticator: fakeAuthenticator(replica)))
                }
            case .broadcast(var message):
                guard !silenced.contains(replica) else { continue }
                if case .newView(let newView) = message {
                    // What the shell does: the new primary authenticates each re-proposal of O.
                    message = .newView(NewView(view: newView.view, viewChanges: newView.viewChanges,
                                               prePrepares: newView.prePrepares.map { Authenticated($0.message, authenticator: fakeAuthenticator(replica)) },
                                               sender: newView.sender))
                }
                for other in replicas.map(\.id) where other != replica {
                    network.append(Envelope(from: replica, to: other, message: message, authenticator: fakeAuthenticator(replica)))
                }
            case .reply(let reply):
                replies.append(reply)
            case .execute where executionDeferred.contains(replica), .installState where executionDeferred.contains(replica):
                deferredExecution[replica, default: []].append(action)
            case .execute(let batch):
                execute(batch, at: replica)
            case .installState(let sequence, let snapshot):
                applicationState[index(replica)] = snapshot
                installed.append((replica, sequence))
            case .observe(let event):
                events.append((replica, event))
            case .persist(let record):
                persisted[index(replica)].append(record)
            case .persistCheckpoint(let sequence, let state):
                // A new segment: the records that follow restate everything; the older ones are deleted.
                savedStates[index(replica)] = [sequence: state]
                persisted[index(replica)] = []
            case .stageCheckpoint(let sequence, _):
                staged[index(replica)].append(sequence)
            }
        }
    }

    /// Executes synchronously: the state is the concatenation of operations; the result echoes the operation.
    public mutating func execute(_ batch: ExecutionBatch, at replica: ReplicaID) {
        let index = index(replica)
        executedHistory[index].append((batch.sequence, batch.requests))
        for request in batch.requests {
            applicationState[index].append(contentsOf: request.operation)
        }
        let snapshot: [UInt8]? = batch.checkpoint ? applicationState[index] : nil
        var actions: [PBFTAction] = []
        replicas[index].executed(batch.sequence, results: batch.requests.map(\.operation), applicationSnapshot: snapshot, into: &actions)
        perform(actions, at: replica)
    }

    public func index(_ replica: ReplicaID) -> Int { Int(replica.rawValue) }

    /// Carries out the execution actions `replica`'s application held back, in order, then delivers.
    public mutating func executeDeferred(_ replica: ReplicaID) {
        while let action = deferredExecution[replica]?.first {
            deferredExecution[replica]?.removeFirst()
            switch action {
            case .execute(let batch): execute(batch, at: replica)
            case .installState(let sequence, let snapshot):
                applicationState[index(replica)] = snapshot
                installed.append((replica, sequence))
            default: break
            }
        }
        run()
    }

    /// Replaces a replica by a fresh one with empty state (an in-memory restart).
    public mutating func restart(_ replica: ReplicaID) {
        let old = replicas[index(replica)]
        replicas[index(replica)] = PBFTReplica(id: replica, configuration: old.configuration, settings: old.settings, limits: old.limits)
        applicationState[index(replica)] = []
        executedHistory[index(replica)] = []
    }

    public func replies(for client: UInt32, _ timestamp: UInt64) -> [Reply] {
        replies.filter { $0.client == ClientID(client) && $0.timestamp == Timestamp(timestamp) }
    }

    public func executedSequences(_ replica: ReplicaID) -> [UInt64] {
        executedHistory[index(replica)].map(\.0.rawValue)
    }

    public func executedRequests(_ replica: ReplicaID) -> [Request] {
        executedHistory[index(replica)].flatMap(\.1)
    }
}

public let replica0 = ReplicaID(0)
public let replica1 = ReplicaID(1)
public let replica2 = ReplicaID(2)
public let replica3 = ReplicaID(3)
