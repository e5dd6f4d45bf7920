import ThemisCore
import ThemisProtocolKit
import ThemisWire

/// The largest payload of every PBFT message kind that a correct replica sends, and of every framework kind
/// (`MessageBounds`), for one cluster configuration: checked against `Limits.frameBytesMax` when a configuration is loaded ("put a limit on
/// everything", as in TigerBeetle), so that no valid configuration can produce a message its peers must
/// refuse. (A VIEW-CHANGE with whole batches once reached 80 MB with K = 1000 and 4 KiB requests, and the
/// cluster never left the view.)
///
/// The formulas follow the encoders in this module field by field; `MessageBoundsTests` builds the
/// largest message of each kind and checks that it encodes to exactly the bound.
public struct PBFTMessageBounds: Sendable {
    public typealias AuthenticatorSizes = MessageBounds.AuthenticatorSizes
    public typealias Bound = MessageBounds.Bound

    public let configuration: ClusterConfiguration
    public let settings: ProtocolSettings
    public let limits: Limits
    public let authenticators: AuthenticatorSizes

    public init(configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, authenticators: AuthenticatorSizes) {
        self.configuration = configuration
        self.settings = settings
        self.limits = limits
        self.authenticators = authenticators
    }

    /// The framework's kinds under the same limits and scheme.
    public var framework: MessageBounds { MessageBounds(limits: limits, authenticators: authenticators) }

    /// PBFT's kinds with their largest payloads, in kind order.
    public var protocolKinds: [Bound] {
        PBFTKind.allCases.map { Bound(kind: "\($0)", payloadBytes: largestPayloadBytes($0)) }
    }

    /// Every kind with its largest payload: the framework's, then PBFT's.
    public var all: [Bound] { framework.all + protocolKinds }

    /// The kinds whose largest payload does not fit `limits.frameBytesMax`, largest first.
    public var oversized: [Bound] {
        all.filter { $0.payloadBytes > limits.frameBytesMax }.sorted { $0.payloadBytes > $1.payloadBytes }
    }

    /// The largest payload a client sends (`MessageBounds.clientFrameBytesMax`).
    public var clientFrameBytesMax: Int { framework.clientFrameBytesMax }


    // MARK: - Per kind

    typealias Codec = WireCodec

    /// A replica message: header, protocol id, PBFT kind byte, fields, the outer authenticator (broadcast
    /// size: the largest).
    private func replicaMessage(fields: Int) -> Int {
        framework.protocolMessageBytes(fields: 1 + fields)
    }

    /// The largest encoded client request.
    var requestBytes: Int { framework.requestBytes }

    /// The largest batch a primary proposes: at most `batchRequestsMax` requests, cut at
    /// `Limits.batchBytesMax` by the estimate `RequestQueue.popFirst` uses (which overstates every request),
    /// and at least one request.
    var batchBytes: Int {
        min(limits.batchRequestsMax * requestBytes, max(limits.batchBytesMax, requestBytes))
    }

    /// A pre-prepare's fields with the largest batch.
    var prePrepareFieldsBytes: Int { Codec.prePrepareHeaderBytes + batchBytes }

    /// A prepared certificate as a correct replica builds it: the header, 2f PREPAREs (quorum - 1).
    var certificateBytes: Int {
        Codec.prePrepareHeaderBytes + Codec.lengthPrefixBytes + authenticators.broadcast + 4
            + (configuration.quorumSize - 1) * (Codec.prepareEntryBytesMin + authenticators.broadcast)
    }

    /// A view-change body: a checkpoint proof of at most n entries, a certificate per sequence number in
    /// the window.
    var viewChangeFieldsBytes: Int {
        Codec.viewChangeHeadBytes + 4 + configuration.replicaCount * (Codec.checkpointEntryBytesMin + authenticators.broadcast)
            + 4 + Int(settings.watermarkWindow) * certificateBytes
    }

    /// A NEW-VIEW: a quorum of VIEW-CHANGEs, and O with at most L entries (the highest prepared sequence
    /// number is at most the highest stable checkpoint in V plus L).
    var newViewFieldsBytes: Int {
        8 + 4 + 4 + configuration.quorumSize * (viewChangeFieldsBytes + Codec.lengthPrefixBytes + authenticators.broadcast)
            + 4 + Int(settings.watermarkWindow) * (Codec.newViewPrePrepareEntryBytesMin + authenticators.broadcast)
    }

    /// The largest payload of `kind`.
    func largestPayloadBytes(_ kind: PBFTKind) -> Int {
        switch kind {
        case .relayedRequest: return replicaMessage(fields: 4 + requestBytes)
        case .prePrepare: return replicaMessage(fields: prePrepareFieldsBytes)
        case .prepare, .commit: return replicaMessage(fields: Codec.slotBytes)
        case .checkpoint: return replicaMessage(fields: Codec.checkpointBytes)
        case .viewChange: return replicaMessage(fields: viewChangeFieldsBytes)
        case .newView: return replicaMessage(fields: newViewFieldsBytes)
        case .fetchState: return replicaMessage(fields: Codec.fetchStateBytes)
        case .stateChunk:
            return replicaMessage(fields: Codec.stateChunkFixedBytes + limits.stateChunkBytes + limits.stateChunksMax * Codec.digestBytes)
        case .fetchBatches: return replicaMessage(fields: Codec.fetchBatchesBytes)
        case .committedBatches:
            // `serveBatches` stops before its estimate passes `committedBatchesBytesMax`, but always sends
            // one batch; the estimate overstates every batch and request.
            return replicaMessage(fields: 4 + 4 + max(limits.committedBatchesBytesMax, prePrepareFieldsBytes))
        case .recoveryQuery: return replicaMessage(fields: Codec.recoveryQueryBytes)
        case .newViewRelay:
            return replicaMessage(fields: 4 + newViewFieldsBytes + Codec.lengthPrefixBytes + authenticators.broadcast)
        case .recoveryReply:
            // The proof is a stable checkpoint's: at most n entries.
            return replicaMessage(fields: Codec.recoveryReplyHeadBytes
                + configuration.replicaCount * (Codec.checkpointEntryBytesMin + authenticators.broadcast))
        }
    }
}
