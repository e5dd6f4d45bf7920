import NIOCore
import ThemisCore
import ThemisWire

/// A replication protocol as the framework sees it: one type per protocol (PBFT: `PBFT` in ThemisPBFT) that
/// names its pure core and provides what the framework needs around it: the configuration rules, the codec
/// of its messages (the payload of `WireMessage.replica`), their authenticated bytes, and the verifier that
/// checks every authenticator a message carries. The shell, the simulator, the ingress and the driver are
/// written against this interface only; adding a protocol adds a plug-in, not a case to any of them.
public protocol ProtocolPlugin: Sendable {
    /// The pure protocol core (a value type: no threads, sockets, clocks or randomness).
    associatedtype Core: ReplicaCore

    /// The protocol's name in `cluster.json` (`"pbft"`).
    static var name: String { get }
    /// The id its messages carry on the wire and in their authenticated bytes (unique per protocol).
    static var protocolID: ProtocolID { get }
    /// The fault model the protocol needs (n >= 3f + 1 or n >= 2f + 1).
    static var faultModel: ClusterConfiguration.FaultModel { get }

    /// A core for replica `id` of a cluster, empty (nothing executed, view 0), with what the process gives it
    /// (hybrid protocols open their trusted subsystems there; a restarted subsystem keeps its counters).
    /// - Throws: `TrustedCounterError` if a trusted subsystem the protocol needs cannot be opened.
    static func makeCore(
        id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, environment: CoreEnvironment
    ) throws(TrustedCounterError) -> Core

    // MARK: Configuration

    /// The protocol's rules on the settings (beyond `ProtocolSettings.problem`), or nil if they hold.
    static func settingsProblem(_ settings: ProtocolSettings) -> String?
    /// The largest payload of each of the protocol's message kinds under a configuration (correct senders).
    static func messageBounds(
        configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
        authenticators: MessageBounds.AuthenticatorSizes
    ) -> [MessageBounds.Bound]

    // MARK: Wire

    /// Decodes the payload of a `WireMessage.replica`: the message and its sender's authenticator.
    /// - Throws: a `WireError` for any malformed payload, never a crash.
    static func decode(_ payload: ProtocolPayload, limits: Limits) throws(WireError) -> (message: Core.Message, authenticator: [UInt8])
    /// Encodes a message with its authenticator as one frame, appended to `buffer`.
    static func encodeFrame(_ message: Core.Message, authenticator: [UInt8], into buffer: inout ByteBuffer)
    /// The bytes the sender authenticates (domain, protocol id, kind, fields).
    static func authenticatedBytes(of message: Core.Message) -> [UInt8]
    /// The replica a message names as its sender (the ingress checks it against the link's peer).
    static func sender(of message: Core.Message) -> ReplicaID
    /// A short name of the message's kind, for logs.
    static func kindName(of message: Core.Message) -> String

    // MARK: Authentication

    /// Checks every authenticator the message carries (its own and those of messages or requests inside).
    static func verification(of message: Core.Message, authenticator: [UInt8], keyring: Keyring) -> AuthenticationVerdict
    /// What the driver does to a message before it authenticates it for every replica (PBFT: the
    /// re-proposals of a NEW-VIEW get authenticators of their own). Most messages pass unchanged.
    static func prepareForBroadcast(_ message: Core.Message, keyring: Keyring) -> Core.Message
    /// The bytes an input holds by the protocol's size model (for the driver's queue bound).
    static func estimatedBytes(of message: Core.Message) -> Int
    /// The most a correct core holds under a configuration, part by part (the memory bound and checker).
    static func retainedBytesBound(
        configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, authenticatorBytes: Int, stateBytes: Int
    ) -> ByteParts
    /// True if the core persists records (durable mode, `--data-dir`).
    static var supportsDurability: Bool { get }
    /// A write-ahead-log record as bytes (the storage frames and checksums them).
    static func encodeRecord(_ record: Core.Record) -> [UInt8]
    /// A record read back from the write-ahead log.
    static func decodeRecord(_ bytes: [UInt8], limits: Limits) throws(WireError) -> Core.Record
    /// False for a record that need not be durable before the sends of its step (it is written with the
    /// next urgent one, or within two ticks): it must be safe to lose in a crash. Default: true.
    static func isUrgent(_ record: Core.Record) -> Bool
}

/// A size split into named parts (a memory bound).
public struct ByteParts: Hashable, Sendable {
    public var parts: [Part]

    public struct Part: Hashable, Sendable {
        public let name: String
        public let bytes: Int

        public init(name: String, bytes: Int) {
            self.name = name
            self.bytes = bytes
        }
    }

    public init(_ parts: [Part]) {
        self.parts = parts
    }

    public var total: Int { parts.reduce(0) { $0 + $1.bytes } }
}

extension ProtocolPlugin where Core.Record == Never {
    public static var supportsDurability: Bool { false }
    public static func encodeRecord(_ record: Core.Record) -> [UInt8] {}
    public static func decodeRecord(_ bytes: [UInt8], limits: Limits) throws(WireError) -> Core.Record { throw .unexpectedMessage }
}

extension ProtocolPlugin {
    public static func isUrgent(_ record: Core.Record) -> Bool { true }
    public static func prepareForBroadcast(_ message: Core.Message, keyring: Keyring) -> Core.Message { message }
    public static func settingsProblem(_ settings: ProtocolSettings) -> String? { nil }
}

/// What a verifier found in a replica message.
public enum AuthenticationVerdict: Sendable, Equatable {
    /// Every authenticator that must check out does.
    case authentic
    /// The message's own authenticator checks out, but a client request inside it does not verify for this
    /// replica (`Verified.requestsUnverified`: the core must not vouch for it before f others have).
    case requestsUnverified
    /// An authenticator that must check out does not: the message is dropped.
    case forged
}

extension Keyring {
    /// True if the client's authenticator on `request` verifies for this principal.
    public func isAuthentic(_ request: Request) -> Bool {
        verify(WireCodec.authenticatedBytes(of: request), authenticator: request.authenticator, from: .client(request.client))
    }

    /// A client's read-only request (authenticated over the `readOnlyRequest` kind).
    public func isAuthentic(readOnly request: Request) -> Bool {
        verify(WireCodec.authenticatedBytes(ofReadOnly: request), authenticator: request.authenticator, from: .client(request.client))
    }

    /// Client requests, each checked once even if a message repeats it (a copy with another authenticator
    /// is a different request here and is checked too).
    public func areAuthentic(_ requests: [Request]) -> Bool {
        var checked = Set<Request>()
        for request in requests where checked.insert(request).inserted {
            guard isAuthentic(request) else { return false }
        }
        return true
    }
}

extension ValidatedCluster {
    /// Checks the rules of protocol `plugin` on this cluster: the name and fault model in the file are the
    /// plug-in's, its settings hold, and every one of its message kinds fits a frame.
    /// - Throws: `ConfigurationError.invalidField` naming the field.
    public func checked<Plugin: ProtocolPlugin>(for plugin: Plugin.Type) throws(ConfigurationError) -> ValidatedCluster {
        guard file.protocolName == Plugin.name else {
            throw .invalidField(file: source, field: "protocol", problem: .protocolMismatch(file.protocolName, running: Plugin.name))
        }
        guard file.faultModel == Plugin.faultModel else {
            throw .invalidField(file: source, field: "faultModel", problem: .faultModelMismatch(
                file.faultModel.rawValue, protocolName: Plugin.name, required: Plugin.faultModel.rawValue))
        }
        if let problem = Plugin.settingsProblem(file.settings) {
            throw .invalidField(file: source, field: "settings", problem: .invalidSettings(problem))
        }
        if !Plugin.supportsDurability, let index = file.replicas.firstIndex(where: { $0.dataDir != nil }) {
            throw .invalidField(file: source, field: "replicas[\(index)].dataDir", problem: .noDurableMode(protocolName: Plugin.name))
        }
        let sizes = file.authentication.authenticatorSizes(replicaCount: configuration.replicaCount)
        let bounds = Plugin.messageBounds(configuration: configuration, settings: file.settings, limits: file.limits, authenticators: sizes)
        if let worst = bounds.filter({ $0.payloadBytes > file.limits.frameBytesMax }).max(by: { $0.payloadBytes < $1.payloadBytes }) {
            throw .invalidField(file: source, field: "limits.frameBytesMax", problem: .messageTooLarge(
                kind: worst.kind, bytes: worst.payloadBytes, frameBytesMax: file.limits.frameBytesMax))
        }
        return self
    }
}
