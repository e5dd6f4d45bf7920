import ThemisCore

/// The largest payload of every message kind that a correct replica or client sends, for one cluster
/// configuration: checked against `Limits.frameBytesMax` when a configuration is loaded ("put a limit on
/// everything", as in TigerBeetle), so that no valid configuration can produce a message its peers must
/// refuse. (A VIEW-CHANGE with whole batches once reached 80 MB with K = 1000 and 4 KiB requests, and the
/// cluster never left the view.)
///
/// The formulas follow the encoders in this module field by field; `MessageBoundsTests` builds the
/// largest message of each kind and checks that it encodes to exactly the bound.
public struct MessageBounds: Sendable {
    /// The sizes of authenticators under the cluster's scheme.
    public struct AuthenticatorSizes: Sendable, Hashable {
        /// A replica message authenticated for every replica (a MAC vector of n entries, or a signature).
        public var broadcast: Int
        /// A client request (a MAC vector for every replica, or a signature).
        public var request: Int
        /// A message for one principal (a reply, a handshake or attach proof): one MAC or a signature.
        public var pairwise: Int

        public init(broadcast: Int, request: Int, pairwise: Int) {
            self.broadcast = broadcast
            self.request = request
            self.pairwise = pairwise
        }
    }

    /// One message kind and the size of its largest payload (version and kind bytes included, the 4-byte
    /// frame length prefix not: `frameBytesMax` bounds payloads).
    public struct Bound: Sendable, Hashable {
        public let kind: String
        public let payloadBytes: Int
    }

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

    /// Every kind with its largest payload, in kind order.
    public var all: [Bound] {
        MessageKind.allCases.map { Bound(kind: "\($0)", payloadBytes: largestPayloadBytes($0)) }
    }

    /// The largest payload a client sends (a request, a status query, an attach, a goodbye, the
    /// handshake): a replica's frame limit on client connections after the handshake.
    public var clientFrameBytesMax: Int {
        [MessageKind.hello, .helloProof, .goodbye, .attachClient, .request, .statusQuery].map(largestPayloadBytes).max() ?? limits.frameBytesMax
    }

    /// The kinds whose largest payload does not fit `limits.frameBytesMax`, largest first.
    public var oversized: [Bound] {
        all.filter { $0.payloadBytes > limits.frameBytesMax }.sorted { $0.payloadBytes > $1.payloadBytes }
    }

    /// The smallest `frameBytesMax` that every message of this configuration fits (whatever
    /// `limits.frameBytesMax` is now). Batches and COMMITTED-BATCHES replies are cut at a fraction of the
    /// frame, so their bounds follow the frame: the answer is the fixed point of "the largest message
    /// under this frame", found by iterating from a small frame (each step at least halves the distance).
    public var frameBytesNeeded: Int {
        var frame = 1024
        for _ in 0..<128 {
            var trial = limits
            trial.frameBytesMax = frame
            let needed = MessageBounds(configuration: configuration, settings: settings, limits: trial, authenticators: authenticators)
                .all.map(\.payloadBytes).max() ?? 0
            if needed <= frame { return frame }
            frame = needed
        }
        return frame
    }

    // MARK: - Per kind

    typealias Codec = WireCodec

    /// A replica message: header, fields, the outer authenticator (broadcast size: the largest).
    private func replicaMessage(fields: Int) -> Int {
        Codec.payloadHeaderBytes + fields + Codec.lengthPrefixBytes + authenticators.broadcast
    }

    /// The largest encoded client request.
    var requestBytes: Int { Codec.requestBytesMin + limits.operationBytesMax + authenticators.request }

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
    func largestPayloadBytes(_ kind: MessageKind) -> Int {
        switch kind {
        case .hello: return Codec.payloadHeaderBytes + Codec.helloBytes
        case .helloProof: return Codec.payloadHeaderBytes + Codec.lengthPrefixBytes + authenticators.pairwise
        case .goodbye: return Codec.payloadHeaderBytes + Codec.lengthPrefixBytes + Codec.goodbyeReasonBytesMax
        case .attachClient: return Codec.payloadHeaderBytes + 4 + Codec.lengthPrefixBytes + authenticators.pairwise
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
        case .request: return Codec.payloadHeaderBytes + requestBytes
        case .reply:
            return Codec.payloadHeaderBytes + 8 + 8 + 4 + 4 + Codec.lengthPrefixBytes + limits.resultBytesMax
                + Codec.lengthPrefixBytes + authenticators.pairwise
        case .statusQuery: return Codec.payloadHeaderBytes + 8
        case .statusReport: return Codec.payloadHeaderBytes + Codec.statusReportBytes
        }
    }
}
