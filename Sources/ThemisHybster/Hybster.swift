import Crypto
import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisProtocolKit
import ThemisWire

/// The Hybster plug-in (Behl, Distler, Kapitza, EuroSys 2017): n = 2f + 1 replicas, each with trusted
/// subsystems (`TrustedCounter`, one per pillar). The pure core is `HybsterReplica`.
public enum Hybster: ProtocolPlugin {
    public typealias Core = HybsterReplica

    public static let name = "hybster"
    public static let protocolID = HybsterCodec.protocolID
    public static let faultModel = ClusterConfiguration.FaultModel.hybrid

    /// Opens one trusted subsystem per pillar from the environment.
    /// - Throws: `.unavailable` if the process has none (a hybrid protocol cannot run without it).
    public static func makeCore(
        id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, environment: CoreEnvironment
    ) throws(TrustedCounterError) -> HybsterReplica {
        guard let open = environment.trustedSubsystem else {
            throw .unavailable("hybster needs a trusted subsystem per pillar; none was configured")
        }
        var subsystems: [any TrustedCounter] = []
        for pillar in 0..<settings.pillars { subsystems.append(try open(pillar)) }
        return HybsterReplica(id: id, configuration: configuration, settings: settings, limits: limits, subsystems: subsystems)
    }

    public static let supportsDurability = true

    public static func encodeRecord(_ record: HybsterRecord) -> [UInt8] {
        HybsterRecordCodec.encode(record)
    }

    public static func decodeRecord(_ bytes: [UInt8], limits: Limits) throws(WireError) -> HybsterRecord {
        try HybsterRecordCodec.decode(bytes, limits: limits)
    }

    /// A `committed` mark may be lost in a crash: the replica asks for the votes again (FETCH) and commits
    /// the slot anew. Every record that holds a certificate is urgent: the log is the counters' persistence.
    public static func isUrgent(_ record: HybsterRecord) -> Bool {
        if case .committed = record { return false }
        return true
    }

    public static func settingsProblem(_ settings: ProtocolSettings) -> String? {
        guard !settings.tentativeExecution else {
            return "hybster has no tentative execution (settings.tentativeExecution is a PBFT option; Hybster replies after two phases already)"
        }
        guard settings.watermarkWindow <= UInt64(HybsterCodec.entriesMax) else {
            return "watermarkWindow \(settings.watermarkWindow) exceeds \(HybsterCodec.entriesMax), the most entries one VIEW-CHANGE may carry"
        }
        return nil
    }

    public static func messageBounds(
        configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, authenticators: MessageBounds.AuthenticatorSizes
    ) -> [MessageBounds.Bound] {
        let framework = MessageBounds(limits: limits, authenticators: authenticators)
        let batch = 4 + max(limits.batchBytesMax, framework.requestBytes)
        let certificate = HybsterCodec.certificateBytes
        let pillars = Int(settings.pillars)
        let window = Int(settings.watermarkWindow)
        let viewChange = 4 + 8 + 8 + 8 + Digest.byteCount + 4 + configuration.quorumSize * HybsterCodec.checkpointBytes
            + 4 + window * HybsterCodec.headerBytes + 4 + pillars * (4 + HybsterViewChangeState.chainLinksMax * certificate)
        let kinds: [(String, Int)] = [
            ("request", 4 + framework.requestBytes),
            ("prepare", HybsterCodec.headerBytes + batch),
            ("commit", 8 + 8 + Digest.byteCount + 4 + certificate),
            ("checkpoint", HybsterCodec.checkpointBytes),
            ("viewChange", viewChange),
            ("newView", 8 + 4 + 4 + configuration.replicaCount * viewChange + 4 + window * HybsterCodec.headerBytes),
            ("newViewAck", 8 + Digest.byteCount + 4 + 4 + pillars * certificate),
            ("fetch", 8 + 4),
            ("forward", 4 + HybsterCodec.headerBytes + batch),
            ("fetchState", 8 + Digest.byteCount + 8 + 4),
            ("stateChunk", 8 + Digest.byteCount + 8 + 8 + 4 + limits.stateChunkBytes + 4 + limits.stateChunksMax * Digest.byteCount + 4),
            ("requestViewChange", 8 + 4),
            ("stableCheckpoint", 8 + Digest.byteCount + 4 + configuration.quorumSize * HybsterCodec.checkpointBytes + 4),
        ]
        return kinds.map { MessageBounds.Bound(kind: "hybster.\($0.0)", payloadBytes: framework.protocolMessageBytes(fields: 1 + $0.1)) }
    }

    public static func decode(_ payload: ProtocolPayload, limits: Limits) throws(WireError) -> (message: HybsterMessage, authenticator: [UInt8]) {
        try HybsterCodec.decode(payload, limits: limits)
    }

    public static func encodeFrame(_ message: HybsterMessage, authenticator: [UInt8], into buffer: inout ByteBuffer) {
        HybsterCodec.encodeFrame(message, authenticator: authenticator, into: &buffer)
    }

    public static func authenticatedBytes(of message: HybsterMessage) -> [UInt8] {
        HybsterCodec.authenticatedBytes(of: message)
    }

    public static func sender(of message: HybsterMessage) -> ReplicaID { message.sender }

    public static func kindName(of message: HybsterMessage) -> String { message.kindName }

    /// The link authenticator, then every trusted certificate the message carries (with the subsystems'
    /// key), then the client requests inside.
    public static func verification(of message: HybsterMessage, authenticator: [UInt8], keyring: Keyring) -> AuthenticationVerdict {
        guard let trusted = keyring.trusted,
              keyring.verify(authenticatedBytes(of: message), authenticator: authenticator, from: .replica(message.sender)),
              certificatesVerify(message, trusted)
        else { return .forged }
        switch message {
        case .request(let request, _):
            return keyring.isAuthentic(request) ? .authentic : .forged
        case .prepare(let prepare):
            return keyring.areAuthentic(prepare.requests) ? .authentic : .requestsUnverified
        case .forward(let forward):
            return keyring.areAuthentic(forward.prepare.requests) ? .authentic : .requestsUnverified
        case .commit, .checkpoint, .viewChange, .newView, .newViewAck, .fetch, .fetchState, .stateChunk, .requestViewChange, .stableCheckpoint:
            return .authentic
        }
    }

    static func certificatesVerify(_ message: HybsterMessage, _ trusted: TrustedVerifier) -> Bool {
        switch message {
        case .request, .fetch, .fetchState, .stateChunk, .requestViewChange:
            return true
        case .prepare(let prepare):
            return trusted.verify(prepare.header.certificate, for: prepare.header.certifiedDigest)
        case .forward(let forward):
            return trusted.verify(forward.prepare.header.certificate, for: forward.prepare.header.certifiedDigest)
        case .commit(let commit):
            return trusted.verify(commit.certificate, for: commit.certifiedDigest)
        case .checkpoint(let checkpoint):
            return trusted.verify(checkpoint.certificate, for: checkpoint.certifiedDigest)
        case .viewChange(let viewChange):
            return verifies(viewChange, trusted)
        case .newView(let newView):
            return newView.viewChanges.allSatisfy { verifies($0, trusted) }
                && newView.reproposals.allSatisfy { trusted.verify($0.certificate, for: $0.certifiedDigest) }
        case .stableCheckpoint(let stable):
            return stable.proof.allSatisfy { trusted.verify($0.certificate, for: $0.certifiedDigest) }
        case .newViewAck(let ack):
            let digest = ack.certifiedDigest
            return ack.certificates.allSatisfy { trusted.verify($0, for: digest) }
        }
    }

    static func verifies(_ viewChange: HybsterViewChange, _ trusted: TrustedVerifier) -> Bool {
        let digest = viewChange.certifiedDigest
        return viewChange.chains.allSatisfy { $0.allSatisfy { trusted.verify($0, for: digest) } }
            && viewChange.entries.allSatisfy { trusted.verify($0.certificate, for: $0.certifiedDigest) }
            && viewChange.checkpointProof.allSatisfy { trusted.verify($0.certificate, for: $0.certifiedDigest) }
    }

    public static func estimatedBytes(of message: HybsterMessage) -> Int {
        switch message {
        case .request(let request, _): return SizeModel.bytes(request)
        case .prepare(let prepare): return SizeModel.slotOverhead + SizeModel.bytes(prepare.requests)
        case .forward(let forward): return SizeModel.slotOverhead + SizeModel.bytes(forward.prepare.requests)
        case .viewChange(let viewChange): return SizeModel.slotOverhead + (viewChange.entries.count + viewChange.checkpointProof.count) * SizeModel.entryOverhead
        case .newView(let newView):
            return SizeModel.slotOverhead + newView.reproposals.count * SizeModel.entryOverhead
                + newView.viewChanges.reduce(0) { $0 + ($1.entries.count + $1.checkpointProof.count) * SizeModel.entryOverhead }
        case .stateChunk(let chunk): return SizeModel.slotOverhead + chunk.bytes.count + chunk.chunkDigests.count * Digest.byteCount
        case .stableCheckpoint(let stable): return (1 + stable.proof.count) * SizeModel.entryOverhead
        case .commit, .checkpoint, .newViewAck, .fetch, .fetchState, .requestViewChange: return SizeModel.entryOverhead
        }
    }

    /// By the shared size model: the log window (each slot with a batch and its votes), the request queue,
    /// the client table, own checkpoint states, VIEW-CHANGEs (one per replica) and a NEW-VIEW.
    public static func retainedBytesBound(
        configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, authenticatorBytes: Int, stateBytes: Int
    ) -> ByteParts {
        let window = Int(settings.watermarkWindow)
        let n = configuration.replicaCount
        let inFlight = min(window, limits.pipelineDepthMax * Int(settings.pillars) + 1)
        let fullBatch = limits.batchBytesMax + limits.batchRequestsMax * SizeModel.requestOverhead
        let slot = SizeModel.slotOverhead + n * SizeModel.recordOverhead + HybsterCodec.headerBytes
        let viewChange = SizeModel.slotOverhead + (window + n) * (SizeModel.entryOverhead + HybsterCodec.headerBytes)
        let checkpointsKept = Int(settings.watermarkWindow / settings.checkpointInterval) + 2
        return ByteParts([
            // Every slot of the window may hold a batch until the next stable checkpoint; the batches handed
            // to the application are counted again (they are copies in `executing`).
            .init(name: "log", bytes: window * (slot + fullBatch) + inFlight * (SizeModel.slotOverhead + fullBatch)),
            // The primary's queue, and one request per client waiting for execution (request timers).
            .init(name: "requests", bytes: (limits.pendingRequestsMax + limits.clientsMax) * (SizeModel.requestOverhead + limits.operationBytesMax + authenticatorBytes)
                + 2 * limits.clientsMax * SizeModel.recordOverhead),
            .init(name: "clients", bytes: limits.clientsMax * (2 * SizeModel.recordOverhead + SizeModel.entryOverhead + limits.resultBytesMax + authenticatorBytes)),
            .init(name: "checkpoints", bytes: checkpointsKept * stateBytes + n * SizeModel.entryOverhead),
            // VIEW-CHANGEs (received, own, the NEW-VIEW's), the batches carried into the next view, requests and acks.
            .init(name: "viewChange", bytes: (2 * n + 1) * viewChange + window * fullBatch + 2 * n * SizeModel.entryOverhead),
            .init(name: "stateTransfer", bytes: stateBytes),
        ])
    }
}
