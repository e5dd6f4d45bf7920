import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// The PBFT plug-in (Castro & Liskov, OSDI'99): the pure core `PBFTReplica`, its messages (`PBFTMessage`),
/// their codec (`PBFTCodec`), sizes (`PBFTMessageBounds`) and verifier (`MessageVerifier`).
public enum PBFT: ProtocolPlugin {
    public typealias Core = PBFTReplica

    public static let name = "pbft"
    public static let protocolID = PBFTCodec.protocolID
    public static let faultModel = ClusterConfiguration.FaultModel.byzantine

    public static func makeCore(
        id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, environment: CoreEnvironment
    ) throws(TrustedCounterError) -> PBFTReplica {
        var core = PBFTReplica(id: id, configuration: configuration, settings: settings, limits: limits)
        core.recovery.nonce = environment.incarnation
        return core
    }

    public static func settingsProblem(_ settings: ProtocolSettings) -> String? {
        guard settings.pillars == 1 else { return "pbft has no pillars (settings.pillars is \(settings.pillars); only hybster runs several)" }
        guard settings.watermarkWindow <= UInt64(WireCodec.preparedCertificatesMax) else {
            return "\(settings.watermarkWindow) exceeds \(WireCodec.preparedCertificatesMax), the most certificates one VIEW-CHANGE may carry"
        }
        return nil
    }

    public static func messageBounds(
        configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
        authenticators: MessageBounds.AuthenticatorSizes
    ) -> [MessageBounds.Bound] {
        PBFTMessageBounds(configuration: configuration, settings: settings, limits: limits, authenticators: authenticators).protocolKinds
    }

    public static func decode(_ payload: ProtocolPayload, limits: Limits) throws(WireError) -> (message: PBFTMessage, authenticator: [UInt8]) {
        try PBFTCodec.decode(payload, limits: limits)
    }

    public static func encodeFrame(_ message: PBFTMessage, authenticator: [UInt8], into buffer: inout ByteBuffer) {
        PBFTCodec.encodeFrame(message, authenticator: authenticator, into: &buffer)
    }

    public static func authenticatedBytes(of message: PBFTMessage) -> [UInt8] {
        WireCodec.authenticatedBytes(of: message)
    }

    public static func sender(of message: PBFTMessage) -> ReplicaID { message.sender }

    public static func kindName(of message: PBFTMessage) -> String { message.kindName }

    public static func verification(of message: PBFTMessage, authenticator: [UInt8], keyring: Keyring) -> AuthenticationVerdict {
        MessageVerifier(keyring: keyring).verification(of: message, authenticator: authenticator)
    }

    public static func prepareForBroadcast(_ message: PBFTMessage, keyring: Keyring) -> PBFTMessage {
        MessageVerifier(keyring: keyring).prepareForBroadcast(message)
    }

    public static func estimatedBytes(of message: PBFTMessage) -> Int {
        RetainedBytes.estimate(message)
    }

    public static let supportsDurability = true

    public static func encodeRecord(_ record: PBFTRecord) -> [UInt8] {
        PBFTRecordCodec.encode(record)
    }

    /// A `committed` mark may be lost in a crash: the prepared certificates a quorum persisted before their
    /// COMMITs, and the COMMITs they repeat, commit the batch again after a restart. It rides on the next sync
    /// instead of costing one before the replies.
    /// So is a primary's own proposal (see `PBFTRecord.proposed`), and a PRE-PREPARE a backup accepted (see
    /// `PBFTRecord.prePrepare`): a replica restored from disk proposes and prepares nothing in that view.
    public static func isUrgent(_ record: PBFTRecord) -> Bool {
        switch record {
        case .committed, .proposed, .prePrepare: false
        default: true
        }
    }

    public static func decodeRecord(_ bytes: [UInt8], limits: Limits) throws(WireError) -> PBFTRecord {
        try PBFTRecordCodec.decode(bytes, limits: limits)
    }

    public static func retainedBytesBound(
        configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits, authenticatorBytes: Int, stateBytes: Int
    ) -> ByteParts {
        PBFTReplica.retainedBytesBound(
            configuration: configuration, settings: settings, limits: limits, authenticatorBytes: authenticatorBytes, stateBytes: stateBytes
        ).byteParts
    }
}
