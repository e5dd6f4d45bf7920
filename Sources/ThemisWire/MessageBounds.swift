import ThemisCore

/// The largest payload of every framework message kind (handshake, attach, goodbye, request, reply,
/// status) under a cluster's limits and authentication scheme. A protocol plug-in adds its own kinds
/// (PBFT: `PBFTMessageBounds`), and the two together are checked against `Limits.frameBytesMax` when a
/// configuration is loaded ("put a limit on everything", as in TigerBeetle), so that no valid configuration
/// can produce a message its peers must refuse.
///
/// The formulas follow the encoders field by field; the tests build the largest message of each kind and
/// check that it encodes to exactly the bound.
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

        public init(kind: String, payloadBytes: Int) {
            self.kind = kind
            self.payloadBytes = payloadBytes
        }
    }

    public let limits: Limits
    public let authenticators: AuthenticatorSizes

    public init(limits: Limits, authenticators: AuthenticatorSizes) {
        self.limits = limits
        self.authenticators = authenticators
    }

    /// Every framework kind with its largest payload, in kind order (`replica` excluded: a plug-in's).
    public var all: [Bound] {
        MessageKind.allCases.compactMap { kind in
            largestPayloadBytes(kind).map { Bound(kind: "\(kind)", payloadBytes: $0) }
        }
    }

    /// The largest payload a client sends (a request, a status query, an attach, a goodbye, the
    /// handshake): a replica's frame limit on client connections after the handshake.
    public var clientFrameBytesMax: Int {
        [MessageKind.hello, .helloProof, .goodbye, .attachClient, .request, .readOnlyRequest, .statusQuery]
            .compactMap(largestPayloadBytes).max() ?? limits.frameBytesMax
    }

    /// The largest encoded client request.
    public var requestBytes: Int { WireCodec.requestBytesMin + limits.operationBytesMax + authenticators.request }

    /// The largest payload of a protocol message whose fields (the plug-in's kind byte included) take
    /// `fields` bytes, with a broadcast authenticator: version, `replica` kind, protocol id, fields,
    /// the authenticator as a byte string.
    public func protocolMessageBytes(fields: Int) -> Int {
        WireCodec.payloadHeaderBytes + 1 + fields + WireCodec.lengthPrefixBytes + authenticators.broadcast
    }

    /// The largest payload of a framework `kind`; nil for `replica` (its size is the plug-in's).
    func largestPayloadBytes(_ kind: MessageKind) -> Int? {
        typealias Codec = WireCodec
        switch kind {
        case .hello: return Codec.payloadHeaderBytes + Codec.helloBytes
        case .helloProof: return Codec.payloadHeaderBytes + Codec.lengthPrefixBytes + authenticators.pairwise
        case .goodbye: return Codec.payloadHeaderBytes + Codec.lengthPrefixBytes + Codec.goodbyeReasonBytesMax
        case .attachClient: return Codec.payloadHeaderBytes + 4 + Codec.lengthPrefixBytes + authenticators.pairwise
        case .request, .readOnlyRequest: return Codec.payloadHeaderBytes + requestBytes
        case .reply, .tentativeReply:
            return Codec.payloadHeaderBytes + 8 + 8 + 4 + 4 + Codec.lengthPrefixBytes + limits.resultBytesMax
                + Codec.lengthPrefixBytes + authenticators.pairwise
        case .statusQuery: return Codec.payloadHeaderBytes + 8
        case .statusReport: return Codec.payloadHeaderBytes + Codec.statusReportBytes
        case .replica: return nil
        }
    }
}
