import Crypto
import ThemisCore

/// The model of `cluster.json`: everything every process of a cluster must agree on.
///
/// ```json
/// { "version": 1, "protocol": "pbft", "faultModel": "byzantine", "authentication": "ed25519",
///   "settings": { "checkpointInterval": 1000, "watermarkWindow": 2000, "requestTimeoutTicks": 200 },
///   "limits": { ... },
///   "replicas": [ { "id": 0, "host": "127.0.0.1", "port": 7000, "signingKey": "...", "agreementKey": "...",
///                   "dataDir": "data/replica-0" } ],
///   "clients":  [ { "id": 0, "signingKey": "...", "agreementKey": "..." } ] }
/// ```
/// `faultModel`, `settings`, `limits`, `clients` and a replica's `dataDir` may be omitted (the protocol's fault
/// model, defaults, no clients, in-memory mode). `signingKey` is absent for
/// `hmac`. A value of this type is not necessarily valid: `load` validates, `validated()` checks a value
/// built in memory.
public struct ClusterFile: Codable, Sendable, Hashable {
    /// The protocols this build can run.
    public static let knownProtocols = ["pbft", "hybster"]

    /// The fault model a protocol's quorums are computed for (Byzantine: n >= 3f + 1; hybrid, with a
    /// trusted counter: n >= 2f + 1); nil for an unknown protocol.
    public static func faultModel(of protocolName: String) -> ClusterConfiguration.FaultModel? {
        switch protocolName {
        case "pbft": return .byzantine
        case "hybster": return .hybrid
        default: return nil
        }
    }

    /// One replica: where it listens, its public keys (base64) and, in durable mode, its data directory.
    public struct Replica: Codable, Sendable, Hashable {
        public var id: UInt32
        public var host: String
        public var port: Int
        public var signingKey: String?
        public var agreementKey: String
        /// Durable mode: the replica's data directory on its host (write-ahead log and snapshots), relative to
        /// the directory of `cluster.json` unless absolute; `themis replica --data-dir` overrides it. Absent:
        /// the replica lives in memory unless started with `--data-dir`. (JSON key `dataDir`, omitted when nil,
        /// so a file without it keeps its cluster tag.)
        public var dataDir: String?

        public init(id: UInt32, host: String, port: Int, signingKey: String?, agreementKey: String, dataDir: String? = nil) {
            self.id = id
            self.host = host
            self.port = port
            self.signingKey = signingKey
            self.agreementKey = agreementKey
            self.dataDir = dataDir
        }
    }

    /// One client: its public keys (base64).
    public struct Client: Codable, Sendable, Hashable {
        public var id: UInt32
        public var signingKey: String?
        public var agreementKey: String

        public init(id: UInt32, signingKey: String?, agreementKey: String) {
            self.id = id
            self.signingKey = signingKey
            self.agreementKey = agreementKey
        }
    }

    public var version: Int
    /// The replication protocol, one of `knownProtocols`. (JSON key `protocol`.)
    public var protocolName: String
    /// The fault model (JSON key `faultModel`): written by keygen, it MUST be the protocol's; when omitted,
    /// the protocol's.
    public var faultModel: ClusterConfiguration.FaultModel
    public var authentication: AuthenticationScheme
    public var settings: ProtocolSettings
    public var limits: Limits
    public var replicas: [Replica]
    public var clients: [Client]
    /// TLS under the authenticated handshake (JSON key `tls`, omitted when nil: every link is plain TCP).
    public var tls: TLS?

    /// `"tls": { "certificateAuthority": "-----BEGIN CERTIFICATE-----..." }`: every link (replica to replica,
    /// client to replica) runs TLS 1.3; a replica presents a certificate this authority issued for its host
    /// (`replica-<id>.tls.pem`, written by `themis keygen --tls`), and whoever connects verifies it against the
    /// authority and the replica's host. Who is on each end is still proven by the Themis handshake; TLS adds
    /// confidentiality.
    public struct TLS: Codable, Sendable, Hashable {
        /// The cluster's certificate authority: one PEM certificate.
        public var certificateAuthority: String

        public init(certificateAuthority: String) {
            self.certificateAuthority = certificateAuthority
        }
    }

    public init(
        version: Int = 1, protocolName: String = "pbft", faultModel: ClusterConfiguration.FaultModel? = nil,
        authentication: AuthenticationScheme,
        settings: ProtocolSettings = .init(), limits: Limits = .init(), replicas: [Replica], clients: [Client]
    ) {
        self.version = version
        self.protocolName = protocolName
        self.faultModel = faultModel ?? Self.faultModel(of: protocolName) ?? .byzantine
        self.authentication = authentication
        self.settings = settings
        self.limits = limits
        self.replicas = replicas
        self.clients = clients
    }

    enum CodingKeys: String, CodingKey {
        case version
        case protocolName = "protocol"
        case faultModel, authentication, settings, limits, replicas, clients, tls
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        version = try container.decode(Int.self, forKey: .version)
        protocolName = try container.decode(String.self, forKey: .protocolName)
        faultModel = try container.decodeIfPresent(ClusterConfiguration.FaultModel.self, forKey: .faultModel)
            ?? Self.faultModel(of: protocolName) ?? .byzantine
        authentication = try container.decode(AuthenticationScheme.self, forKey: .authentication)
        settings = try container.decodeIfPresent(ProtocolSettings.self, forKey: .settings) ?? ProtocolSettings()
        limits = try container.decodeIfPresent(Limits.self, forKey: .limits) ?? Limits()
        replicas = try container.decode([Replica].self, forKey: .replicas)
        clients = try container.decodeIfPresent([Client].self, forKey: .clients) ?? []
        tls = try container.decodeIfPresent(TLS.self, forKey: .tls)
    }

    /// Identifies the cluster: the first 8 bytes (big-endian) of SHA-256 over the canonical JSON
    /// encoding (sorted keys, no whitespace). Any change to the file, keys included, changes the tag.
    /// It costs an encoding and a hash of the whole file: read `ValidatedCluster.clusterTag` or
    /// `Keyring.clusterTag` (computed once) on hot paths such as accepting connections.
    public var clusterTag: UInt64 {
        // Only strings, integers and arrays (no floating-point numbers): encoding cannot fail.
        guard let bytes = try? JSON.canonical(self) else { preconditionFailure("JSON encoding failed") }
        var tag: UInt64 = 0
        for byte in SHA256.hash(data: bytes).prefix(8) {
            tag = (tag << 8) | UInt64(byte)
        }
        return tag
    }

    /// The quorum arithmetic for this cluster's replica count and fault model.
    ///
    /// The file MUST have been validated (`load(path:)`, `validated(source:)` and `Keyring.init` do):
    /// reading this on a file with too few replicas for its fault model is a programming error and traps.
    public var configuration: ClusterConfiguration {
        do {
            return try ClusterConfiguration(replicaCount: replicas.count, faultModel: faultModel)
        } catch {
            preconditionFailure("configuration of an unvalidated cluster file: \(error)")
        }
    }

    public static func configuration(replicaCount: Int, faultModel: ClusterConfiguration.FaultModel, source: String) throws(ConfigurationError) -> ClusterConfiguration {
        do {
            return try ClusterConfiguration(replicaCount: replicaCount, faultModel: faultModel)
        } catch {
            switch error {
            case .tooFewReplicas(let count, let minimum):
                throw .invalidField(file: source, field: "replicas", problem: .tooFewReplicas(count: count, minimum: minimum))
            case .tooManyReplicas(let count, let maximum):
                throw .invalidField(file: source, field: "replicas", problem: .tooMany(count: count, maximum: maximum))
            }
        }
    }
}
