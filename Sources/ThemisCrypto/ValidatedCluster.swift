import Crypto
import Synchronization
import ThemisCore
import ThemisWire

/// A principal's public keys, decoded from the cluster file.
struct PublicKeys: Sendable {
    /// nil for `hmac`.
    let signing: SigningPublicKey?
    let agreement: Curve25519.KeyAgreement.PublicKey
}

/// A cluster file whose every field has been checked and whose keys have been decoded.
public struct ValidatedCluster: Sendable {
    public let file: ClusterFile
    /// The file name used in error messages.
    public let source: String
    public let configuration: ClusterConfiguration
    /// `file.clusterTag`, computed once (it hashes the whole file).
    public let clusterTag: UInt64
    /// Indexed by replica id.
    let replicaKeys: [PublicKeys]
    let clientKeys: [ClientID: PublicKeys]

    /// The public keys listed for a principal, or nil if it is not in the cluster.
    func publicKeys(of principal: Principal) -> PublicKeys? {
        switch principal {
        case .replica(let id):
            return Int(id.rawValue) < replicaKeys.count ? replicaKeys[Int(id.rawValue)] : nil
        case .client(let id):
            return clientKeys[id]
        }
    }

    /// The host and port replica `id` listens on, or nil if there is no such replica.
    public func endpoint(of id: ReplicaID) -> (host: String, port: Int)? {
        guard let replica = file.replicas.first(where: { $0.id == id.rawValue }) else { return nil }
        return (replica.host, replica.port)
    }
}

extension ClusterFile {
    /// Checks every rule of the file format and decodes every key.
    ///
    /// Rules: version 1; a known protocol and its fault model; valid settings; replica ids exactly `0..<n` with n >= 4;
    /// ports in 1...65535; non-empty hosts; a `dataDir`, if any, non-empty; unique client ids, at most `limits.clientsMax`; every key
    /// decodes for the scheme (`signingKey` is ignored for `hmac`).
    /// - Parameter source: the file name used in error messages.
    /// - Throws: `ConfigurationError.invalidField` naming the first offending field.
    public func validated(source: String = "cluster.json") throws(ConfigurationError) -> ValidatedCluster {
        try validated(source: source, allowingSimulatedScheme: false)
    }

    /// As `validated(source:)`; the simulator (and its tests) may allow `AuthenticationScheme.simulatedInsecure`,
    /// which no other caller can: a library user cannot run a cluster whose signatures anyone can forge.
    package func validated(source: String, allowingSimulatedScheme: Bool) throws(ConfigurationError) -> ValidatedCluster {
        if !allowingSimulatedScheme, !AuthenticationScheme.deployable.contains(authentication) {
            throw .invalidField(file: source, field: "authentication", problem: .notDeployable(authentication.rawValue))
        }
        // A process that makes many clients (the load generator's 400 per-client connections) validates the
        // same file once per client: each validation decodes every principal's keys and hashes the whole file
        // for the tag, so n clients cost n^2. The last result is kept; equality is checked field by field.
        if let cached = Self.lastValidated.withLock({ $0 }), cached.source == source, cached.file == self {
            return cached
        }
        if version != 1 {
            throw .invalidField(file: source, field: "version", problem: .unsupportedVersion(version))
        }
        if !Self.knownProtocols.contains(protocolName) {
            throw .invalidField(file: source, field: "protocol", problem: .unknownProtocol(protocolName))
        }
        if let required = Self.faultModel(of: protocolName), faultModel != required {
            throw .invalidField(file: source, field: "faultModel",
                                problem: .faultModelMismatch(faultModel.rawValue, protocolName: protocolName, required: required.rawValue))
        }
        if let problem = settings.problem {
            throw .invalidField(file: source, field: "settings", problem: .invalidSettings(problem))
        }
        if let tls, !tls.certificateAuthority.contains("-----BEGIN CERTIFICATE-----") {
            throw .invalidField(file: source, field: "tls.certificateAuthority",
                                problem: .invalidKey("not a PEM certificate (-----BEGIN CERTIFICATE-----)"))
        }
        let configuration = try Self.configuration(replicaCount: replicas.count, faultModel: faultModel, source: source)
        try validateSizes(configuration, source: source)
        let replicaKeys = try validatedReplicas(source: source)
        let clientKeys = try validatedClients(source: source)
        let validated = ValidatedCluster(
            file: self, source: source, configuration: configuration, clusterTag: clusterTag,
            replicaKeys: replicaKeys, clientKeys: clientKeys)
        Self.lastValidated.withLock { $0 = validated }
        return validated
    }

    /// The file this process validated last (see `validated(source:allowingSimulatedScheme:)`).
    private static let lastValidated = Mutex<ValidatedCluster?>(nil)

    /// Limits on their own, then against n and the scheme: the authenticators fit `authenticatorBytesMax`,
    /// and every framework message kind fits a frame. (The protocol's own kinds are checked by
    /// `ValidatedCluster.checked(for:)`, which knows them.)
    private func validateSizes(_ configuration: ClusterConfiguration, source: String) throws(ConfigurationError) {
        if let problem = limits.problem {
            throw .invalidField(file: source, field: "limits", problem: .invalidLimits(problem))
        }
        let sizes = authentication.authenticatorSizes(replicaCount: configuration.replicaCount)
        let largest = max(sizes.broadcast, sizes.request, sizes.pairwise)
        if largest > limits.authenticatorBytesMax {
            throw .invalidField(file: source, field: "limits.authenticatorBytesMax", problem: .invalidLimits(
                "\(limits.authenticatorBytesMax) bytes, but \(authentication.rawValue) with \(configuration.replicaCount) replicas makes authenticators of \(largest) bytes"))
        }
        let bounds = MessageBounds(limits: limits, authenticators: sizes)
        if let worst = bounds.all.filter({ $0.payloadBytes > limits.frameBytesMax }).max(by: { $0.payloadBytes < $1.payloadBytes }) {
            throw .invalidField(file: source, field: "limits.frameBytesMax", problem: .messageTooLarge(
                kind: worst.kind, bytes: worst.payloadBytes, frameBytesMax: limits.frameBytesMax))
        }
    }

    private func validatedReplicas(source: String) throws(ConfigurationError) -> [PublicKeys] {
        var keysByID: [PublicKeys?] = Array(repeating: nil, count: replicas.count)
        for (index, replica) in replicas.enumerated() {
            let field = "replicas[\(index)]"
            guard Int(replica.id) < replicas.count else {
                throw .invalidField(file: source, field: field + ".id", problem: .idOutOfRange(replica.id, count: replicas.count))
            }
            guard keysByID[Int(replica.id)] == nil else {
                throw .invalidField(file: source, field: field + ".id", problem: .duplicateID(replica.id))
            }
            guard (1...65535).contains(replica.port) else {
                throw .invalidField(file: source, field: field + ".port", problem: .invalidPort(replica.port))
            }
            guard !replica.host.isEmpty else {
                throw .invalidField(file: source, field: field + ".host", problem: .emptyHost)
            }
            if let path = replica.dataDir, path.isEmpty || path.utf8.contains(0) {
                throw .invalidField(file: source, field: field + ".dataDir", problem: .invalidPath(path))
            }
            keysByID[Int(replica.id)] = try publicKeys(
                signing: replica.signingKey, agreement: replica.agreementKey, field: field, source: source)
        }
        // n entries with distinct ids below n: every slot is filled.
        return keysByID.compactMap { $0 }
    }

    private func validatedClients(source: String) throws(ConfigurationError) -> [ClientID: PublicKeys] {
        guard clients.count <= limits.clientsMax else {
            throw .invalidField(file: source, field: "clients", problem: .tooMany(count: clients.count, maximum: limits.clientsMax))
        }
        var keys: [ClientID: PublicKeys] = [:]
        for (index, client) in clients.enumerated() {
            let field = "clients[\(index)]"
            guard keys[ClientID(client.id)] == nil else {
                throw .invalidField(file: source, field: field + ".id", problem: .duplicateID(client.id))
            }
            keys[ClientID(client.id)] = try publicKeys(
                signing: client.signingKey, agreement: client.agreementKey, field: field, source: source)
        }
        return keys
    }

    private func publicKeys(signing: String?, agreement: String, field: String, source: String) throws(ConfigurationError) -> PublicKeys {
        var signingKey: SigningPublicKey?
        if authentication.usesSignatures {
            guard let signing else {
                throw .invalidField(file: source, field: field + ".signingKey", problem: .missingKey)
            }
            do {
                signingKey = try SigningPublicKey(scheme: authentication, text: signing)
            } catch {
                throw .invalidField(file: source, field: field + ".signingKey", problem: error)
            }
        }
        do {
            return PublicKeys(signing: signingKey, agreement: try AgreementKeys.publicKey(text: agreement))
        } catch {
            throw .invalidField(file: source, field: field + ".agreementKey", problem: error)
        }
    }
}
