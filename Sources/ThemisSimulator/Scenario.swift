import ThemisCore
import ThemisCrypto

/// How a Byzantine replica misbehaves. It runs a real PBFT core; its outgoing messages are tampered with.
public enum ByzantineBehavior: String, Sendable, CaseIterable {
    /// Sends nothing.
    case silent
    /// As primary, sends a different (valid) batch to half of the backups.
    case equivocating
    /// PREPAREs and COMMITs carry a random digest.
    case wrongDigests
    /// Authenticators are corrupted.
    case badAuthenticators
    /// Sends old messages again, to random replicas.
    case replaying
    /// Claims to be another replica.
    case forgingSender
    /// Sends VIEW-CHANGEs with fabricated prepared certificates.
    case fakeCertificates
    /// Sends every message many times.
    case flooding
    /// Beyond the fault model: with other colluders, votes for the original batch to some replicas and for
    /// a variant to the others (used by the "checkers can fail" test with f+1 colluders).
    case colluding
    /// Runs a correct core and, besides, floods every message kind at its limits (issue 9): maximal
    /// PRE-PREPAREs, PREPAREs and COMMITs for every sequence number of the window in this view and the
    /// next, CHECKPOINTs in and beyond the window, unsolicited STATE-CHUNKs and COMMITTED-BATCHES, fetch
    /// requests, forwarded requests. The memory checker bounds what correct replicas hold meanwhile.
    /// (Drawn from a generator of its own, never from `allCases`.)
    case exhausting
    /// Test-only, beyond what an authenticated link allows: equivocates as primary and injects, on the
    /// links of the other replicas, PREPAREs and COMMITs in their names for whichever batch each target
    /// got, authenticated with its own key. The ingress refuses them (their authenticators are not the
    /// named senders'); an ingress that skips authenticator checks lets them break agreement.
    case impersonating
}

/// Everything a seed decides. Build one with `Scenario(seed:)`; tests may adjust it.
public struct Scenario: Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var replicaCount: Int
    public var clientCount: Int
    public var operationsPerClient: Int
    /// Replica index → behavior. At most f unless a test says otherwise.
    public var byzantine: [Int: ByzantineBehavior]
    public var maxDelayTicks: UInt64
    /// Per mille.
    public var dropPerMille: UInt64
    public var duplicatePerMille: UInt64
    /// Crash a correct replica now and then (restarted empty later), within the fault budget.
    public var crashes: Bool
    /// Cut one replica off now and then (asymmetric: one direction only, sometimes).
    public var partitions: Bool
    /// Replicas whose clock skips ticks (per mille of ticks skipped).
    public var tickSkewPerMille: UInt64
    /// Ticks of the safety phase (faults on); the liveness phase follows.
    public var faultTicks: UInt64
    /// Ticks the liveness phase may take before outstanding requests count as stuck.
    public var livenessBudgetTicks: UInt64
    /// Authentication: HMAC, Ed25519 or the simulator's stand-in for signatures. With `hmac`, a Byzantine replica can make a MAC vector valid for some replicas and
    /// not others, which stalls view changes (a documented liveness limit of MAC authenticators without
    /// the TOCS view change): in hmac runs, corrupted authenticators are corrupted in every entry.
    public var scheme: AuthenticationScheme
    /// Test-only: correct replicas ignore digests when counting quorums (a disabled acceptance check).
    public var faultyCore: Bool = false
    /// One more client, Byzantine, during the faulty phase: reuses timestamps with other operations,
    /// replays old requests, sends malformed frames and requests with corrupted authenticators.
    /// (Drawn from a generator of its own, so the other parameters of a seed do not depend on it.)
    public var byzantineClient: Bool
    /// Large messages (issue 9, finding 1): a long window (K = 64, L = 128), batches of up to 32 requests
    /// of about 2.5 KB, 12 more clients, and a frame just large enough for the largest message of this
    /// configuration (`MessageBounds`). VIEW-CHANGEs that carried whole batches would not fit it.
    /// (Drawn from a generator of its own.)
    public var largeMessages: Bool
    /// Test-only: the frame limit the replicas enforce, below what the configuration needs (shows that
    /// the frame checker fires).
    public var frameBytesMaxOverride: Int?
    /// A long partition (issue 9): from tick 100 to near the end of the safety phase one correct replica
    /// hears nothing and is heard by no one, while the clients issue 30 more operations each, so the others
    /// move several windows ahead and it must catch up by state transfer. (Drawn from a generator of its own;
    /// never with `largeMessages`.)
    public var longPartition: Bool
    /// keygen's window (issue 9): K = 1000, L = 2000 as `themis keygen` writes them, batches of at most 2
    /// requests and 40 more operations per client, so that view changes happen with hundreds of prepared
    /// sequence numbers above the stable checkpoint (finding 1) and the memory bound is the one of a real
    /// configuration; the frame limit is the smallest the configuration needs. (Drawn from a generator of
    /// its own; never with `largeMessages`, `longPartition` or an exhausting replica.)
    public var keygenWindow: Bool
    /// Test-only: the replicas' ingress admits messages without checking authenticators (shows that the
    /// simulator runs the shell's ingress: with its checks off, impersonating replicas break agreement).
    public var ingressSkipsAuthentication: Bool = false
    /// Test-only: every replica answers read-only requests from an empty store (stale reads: shows that the
    /// linearizability checker covers read-only results).
    public var readsFromEmptyStore: Bool = false
    /// Test-only: every part of the memory bound replaced by this many bytes (shows that the memory
    /// checker fires).
    public var retainedBytesBoundOverride: Int?

    /// The protocol's fault model: n = 3f + 1 (PBFT) or n = 2f + 1 (hybrid: Hybster).
    public var faultModel: ClusterConfiguration.FaultModel = .byzantine
    /// Parallel ordering instances (Hybster's pillars; 1 for PBFT).
    public var pillars: UInt32 = 1
    /// Test-only: the trusted subsystems keep nothing across an opening (a counter that rolls back to 0), so
    /// a Byzantine replica can certify two messages for one value. The checkers must then find a violation.
    public var faultyCounter = false
    /// Test-only: the trusted subsystems resume from a replica's log only upward (see `TrustedCounter.resume`):
    /// after a crash inside a step (its certificates made, nothing synced or sent) a counter stays ahead of the
    /// log. A power cut under load must then stop the cluster, which the liveness checker reports.
    public var counterResumesOnlyUpward = false
    /// Durable mode (PBFT and Hybster): every replica writes its records to a simulated disk and a
    /// crashed replica restarts from it, so crashes are no longer charged to f after the restart; once per
    /// run, at `powerCutTick`, every correct replica crashes at once (a power cut) and restarts from its disk.
    /// (Drawn from a generator of its own.)
    public var durable = false
    public var powerCutTick: UInt64 = 0
    /// Test-only: a broken driver that sends a step's messages before its records are durable (they reach
    /// the disk at the replica's next tick, and a crash before that loses them). The durability checker
    /// must fire.
    public var sendsBeforePersisting = false
    /// Every correct replica crashes in turn (in-memory mode: restarted empty), each once the one before has
    /// finished the recovery protocol and stopped counting towards f: restarts of all replicas, one after
    /// another, must be safe. (Drawn from a generator of its own; PBFT's in-memory seeds only, the protocol
    /// with a recovery protocol.)
    public var rollingRestarts = false
    /// PBFT's tentative execution (`ProtocolSettings.tentativeExecution`): replicas execute a batch once it
    /// prepared and reply tentatively; a view change undoes what did not commit. (Drawn from a generator of its
    /// own; PBFT seeds only.)
    public var tentativeExecution = false

    public var faultsTolerated: Int {
        faultModel == .hybrid ? (replicaCount - 1) / 2 : (replicaCount - 1) / 3
    }

    /// - Parameter faultModel: the protocol's; hybrid seeds draw n from 3, 5, 7 (f = 1, 2, 3) and P from 1, 2, 4.
    public init(seed: UInt64, faultModel: ClusterConfiguration.FaultModel = .byzantine) {
        var random = SplitMix64(seed: seed ^ 0x5EED_5EED)
        self.seed = seed
        self.faultModel = faultModel
        replicaCount = faultModel == .hybrid ? [3, 3, 3, 5, 5, 7][Int(random.next() % 6)] : [4, 4, 4, 7, 7, 10][Int(random.next() % 6)]
        let f = faultModel == .hybrid ? (replicaCount - 1) / 2 : (replicaCount - 1) / 3
        if faultModel == .hybrid {
            var pillarRandom = SplitMix64(seed: seed ^ 0x9111_A125)
            pillars = [1, 1, 2, 4][Int(pillarRandom.next() % 4)]
        }
        clientCount = Int(random.pick(2...4))
        operationsPerClient = Int(random.pick(10...30))
        var byzantine: [Int: ByzantineBehavior] = [:]
        let faulty = Int(random.next() % UInt64(f + 1))
        let usable = ByzantineBehavior.allCases.filter { $0 != .colluding && $0 != .exhausting && $0 != .impersonating }
        while byzantine.count < faulty {
            byzantine[Int(random.next() % UInt64(replicaCount))] = usable[Int(random.next() % UInt64(usable.count))]
        }
        self.byzantine = byzantine
        maxDelayTicks = random.pick(1...8)
        dropPerMille = random.pick(0...30)
        duplicatePerMille = random.pick(0...20)
        crashes = random.chance(1, in: 2)
        partitions = random.chance(1, in: 3)
        tickSkewPerMille = random.pick(0...200)
        faultTicks = random.pick(1500...4000)
        livenessBudgetTicks = 30_000
        scheme = random.chance(1, in: 4) ? .hmac : .ed25519
        // Signatures cost most of a run (an Ed25519 verification is 64 us, and every broadcast is verified
        // n - 1 times): three in four of the signature seeds use the simulator's keyed-hash stand-in, which
        // behaves like a signature (transferable) at the cost of a MAC; real Ed25519 keeps a fixed share
        // (3 seeds in 16). The simulated Byzantine replicas sign only with their own keys either way.
        var schemeRandom = SplitMix64(seed: seed ^ 0x5167_0000)
        if scheme == .ed25519, !schemeRandom.chance(1, in: 4) { scheme = .simulatedInsecure }
        var clientRandom = SplitMix64(seed: seed ^ 0xBAD_C11E)
        byzantineClient = clientRandom.chance(1, in: 3)
        var largeRandom = SplitMix64(seed: seed ^ 0x1A26E)
        largeMessages = largeRandom.chance(1, in: 4)
        if largeMessages { clientCount += 12 }
        var partitionRandom = SplitMix64(seed: seed ^ 0x10_9A27)
        // Not with large messages: 30 more operations of 16 clients with 2.5 KB requests make a run several
        // times slower (K = 64, L = 128 already leaves a cut replica far behind less often).
        longPartition = partitionRandom.chance(1, in: 6) && !largeMessages
        if longPartition { operationsPerClient += 30 }
        var windowRandom = SplitMix64(seed: seed ^ 0x1000_2000)
        keygenWindow = windowRandom.chance(1, in: 12) && !largeMessages && !longPartition
        if keygenWindow { operationsPerClient += 40 }
        var durableRandom = SplitMix64(seed: seed ^ 0xD15C_0000)
        if durableRandom.chance(1, in: 2) {
            durable = true
            powerCutTick = durableRandom.pick(300...max(300, faultTicks - 300))
        }
        var rollingRandom = SplitMix64(seed: seed ^ 0x2011_1265)
        // (Hybster too: its restarted replica keeps its counters and certifies nothing until a view above them.)
        if !durable, rollingRandom.chance(1, in: 3) { rollingRestarts = true }
        var tentativeRandom = SplitMix64(seed: seed ^ 0x7E47_A71E)
        if faultModel == .byzantine, tentativeRandom.chance(1, in: 2) { tentativeExecution = true }
        // One replica in eight seeds floods (a new fault where the budget allows, else it replaces one).
        var floodRandom = SplitMix64(seed: seed ^ 0xF100D)
        // (Not with keygen's window: a flood of the whole window, 2,000 sequence numbers, every 32 ticks would
        // make a run minutes long; the large-message scenario floods a window of 128.)
        if f > 0, floodRandom.chance(1, in: 8), !keygenWindow {
            if self.byzantine.count < f {
                let free = (0..<replicaCount).filter { self.byzantine[$0] == nil }
                self.byzantine[free[Int(floodRandom.next() % UInt64(free.count))]] = .exhausting
            } else if let first = self.byzantine.keys.min() {
                self.byzantine[first] = .exhausting
            }
        }
    }

    public var description: String {
        let faults = byzantine.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.rawValue)" }.joined(separator: ",")
        return "n=\(replicaCount) f=\(faultsTolerated) clients=\(clientCount)x\(operationsPerClient) byzantine=[\(faults)] "
            + "delay<=\(maxDelayTicks) drop=\(dropPerMille)‰ dup=\(duplicatePerMille)‰ crashes=\(crashes) partitions=\(partitions) "
            + "skew=\(tickSkewPerMille)‰ faultTicks=\(faultTicks) auth=\(scheme.rawValue)"
            + (byzantineClient ? " byzantineClient" : "") + (largeMessages ? " largeMessages" : "") + (longPartition ? " longPartition" : "")
            + (keygenWindow ? " keygenWindow" : "") + (pillars > 1 ? " pillars=\(pillars)" : "") + (faultyCounter ? " faultyCounter" : "") + (counterResumesOnlyUpward ? " counterResumesOnlyUpward" : "")
            + (durable ? " durable(powerCut@\(powerCutTick))" : "") + (rollingRestarts ? " rollingRestarts" : "")
            + (tentativeExecution ? " tentative" : "")
    }
}
