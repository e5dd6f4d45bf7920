import FoundationEssentials
import ThemisCore
import ThemisWire

/// Creates a cluster: fresh keys for every principal, `cluster.json` and one key file per principal.
public enum KeyGeneration {
    /// Generates keys and writes `<directory>/cluster.json`, `replica-<i>.key` and `client-<i>.key`.
    ///
    /// Key files are created with mode 0600. RSA key generation takes up to a second per principal.
    /// - Parameters:
    ///   - directory: created (with intermediate directories) if missing; existing files are replaced.
    ///   - replicas: n, at least 4.
    ///   - clients: how many client identities to create.
    ///   - hosts: one host for every replica, or one per replica.
    ///   - basePort: replica i listens on `basePort + i`.
    ///   - scheme: the authentication scheme.
    ///   - plugin: the protocol (its name and fault model are written to the file; its message sizes set
    ///     the default frame limit, and its rules are checked).
    ///   - settings: the protocol settings written to the file.
    ///   - dataDirectory: durable mode: each replica's `dataDir`, with `{id}` replaced by its id (relative paths
    ///     are relative to `directory` when the replica runs); two replicas on one host must not share one.
    ///   - limits: the limits written to the file; nil: the defaults, with `frameBytesMax` raised (to whole
    ///     MiB) if the largest message of this configuration needs more (`defaultLimits`).
    /// - Returns: the cluster file written.
    /// - Throws: `ConfigurationError.invalidField` (field named as in cluster.json) if the arguments cannot
    ///   make a valid cluster, `.unwritable` if the directory or a file cannot be written.
    public static func writeCluster<Plugin: ProtocolPlugin>(
        directory: String, replicas: Int, clients: Int, hosts: [String], basePort: Int,
        scheme: AuthenticationScheme, plugin: Plugin.Type, settings: ProtocolSettings = .init(), limits: Limits? = nil,
        dataDirectory: String? = nil
    ) throws(ConfigurationError) -> ClusterFile {
        let clusterPath = directory + "/cluster.json"
        let protocolName = Plugin.name
        let faultModel = Plugin.faultModel
        // Also refuses a negative count, before it could make an invalid range below.
        let configuration = try ClusterFile.configuration(replicaCount: replicas, faultModel: faultModel, source: clusterPath)
        let limits = limits ?? defaultLimits(configuration, scheme: scheme, settings: settings, plugin: plugin)
        guard clients >= 0 else {
            throw .invalidField(file: clusterPath, field: "clients", problem: .negativeCount(clients))
        }
        guard hosts.count == 1 || hosts.count == replicas else {
            throw .invalidField(file: clusterPath, field: "replicas", problem: .hostCountMismatch(hosts: hosts.count, replicas: replicas))
        }
        var cluster = ClusterFile(protocolName: protocolName, faultModel: faultModel, authentication: scheme, settings: settings,
                                  limits: limits, replicas: [], clients: [])
        var keyFiles: [PrivateKeyFile] = []
        for index in 0..<replicas {
            let keys = PrivateKeys.generate(scheme: scheme)
            cluster.replicas.append(ClusterFile.Replica(
                id: UInt32(index), host: hosts.count == 1 ? hosts[0] : hosts[index], port: basePort + index,
                signingKey: keys.publicSigningKey, agreementKey: keys.publicAgreementKey,
                dataDir: dataDirectory.map { substituting(index, forIDIn: $0) }))
            keyFiles.append(PrivateKeyFile(principal: .replica(ReplicaID(UInt32(index))), keys: keys))
        }
        for index in 0..<clients {
            let keys = PrivateKeys.generate(scheme: scheme)
            cluster.clients.append(ClusterFile.Client(
                id: UInt32(index), signingKey: keys.publicSigningKey, agreementKey: keys.publicAgreementKey))
            keyFiles.append(PrivateKeyFile(principal: .client(ClientID(UInt32(index))), keys: keys))
        }
        // Check everything before the first byte is written, so a bad argument leaves no half cluster.
        _ = try cluster.validated(source: clusterPath).checked(for: plugin)
        var placed: Set<[String]> = []
        for (index, replica) in cluster.replicas.enumerated() {
            if let path = replica.dataDir, !placed.insert([replica.host, path]).inserted {
                throw .invalidField(file: clusterPath, field: "replicas[\(index)].dataDir", problem: .sharedDataDirectory(path))
            }
        }
        try createDirectory(directory)
        try cluster.write(to: clusterPath)
        for keyFile in keyFiles {
            try keyFile.write(to: keyPath(directory: directory, principal: keyFile.principal))
        }
        if faultModel == .hybrid {
            // The trusted subsystems' shared key (its own file: only the subsystems should hold it).
            try TrustedSubsystemKeyFile.generate().write(to: directory + "/trusted-subsystem.key")
        }
        return cluster
    }

    /// `template` with every `{id}` replaced by `id` (by hand: no string-processing runtime in the replica).
    static func substituting(_ id: Int, forIDIn template: String) -> String {
        let pattern = Array("{id}".utf8)
        let bytes = Array(template.utf8)
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index...].starts(with: pattern) {
                result.append(contentsOf: "\(id)".utf8)
                index += pattern.count
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The default limits, with `frameBytesMax` raised to the next whole MiB if the largest message of this
    /// configuration (n, L and the scheme's authenticator sizes; see `MessageBounds` and the plug-in's
    /// `messageBounds`) needs more.
    public static func defaultLimits<Plugin: ProtocolPlugin>(
        _ configuration: ClusterConfiguration, scheme: AuthenticationScheme, settings: ProtocolSettings, plugin: Plugin.Type
    ) -> Limits {
        var limits = Limits()
        let sizes = scheme.authenticatorSizes(replicaCount: configuration.replicaCount)
        let needed = frameBytesNeeded(configuration, settings: settings, limits: limits, authenticators: sizes, plugin: plugin)
        if needed > limits.frameBytesMax {
            let mebibyte = 1 << 20
            limits.frameBytesMax = (needed + mebibyte - 1) / mebibyte * mebibyte
        }
        return limits
    }

    /// The smallest `frameBytesMax` that every message of the configuration fits (whatever
    /// `limits.frameBytesMax` is now). Batches and state-transfer replies are cut at a fraction of the frame,
    /// so their bounds follow the frame: the answer is the fixed point of "the largest message under this
    /// frame", found by iterating from a small frame (each step at least halves the distance).
    public static func frameBytesNeeded<Plugin: ProtocolPlugin>(
        _ configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
        authenticators: MessageBounds.AuthenticatorSizes, plugin: Plugin.Type
    ) -> Int {
        var frame = 1024
        for _ in 0..<128 {
            var trial = limits
            trial.frameBytesMax = frame
            let bounds = MessageBounds(limits: trial, authenticators: authenticators).all
                + Plugin.messageBounds(configuration: configuration, settings: settings, limits: trial, authenticators: authenticators)
            let needed = bounds.map(\.payloadBytes).max() ?? 0
            if needed <= frame { return frame }
            frame = needed
        }
        return frame
    }

    /// Where `writeCluster` puts a principal's key file: `<directory>/replica-<i>.key` or `client-<i>.key`.
    public static func keyPath(directory: String, principal: Principal) -> String {
        switch principal {
        case .replica(let id): return "\(directory)/replica-\(id.rawValue).key"
        case .client(let id): return "\(directory)/client-\(id.rawValue).key"
        }
    }

    private static func createDirectory(_ directory: String) throws(ConfigurationError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: nil)
        } catch {
            throw .unwritable(file: directory, reason: "\(error)")
        }
    }
}
