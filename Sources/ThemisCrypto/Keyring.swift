import Crypto
import ThemisCore

/// Everything one process needs to authenticate its messages and check its peers': immutable, built once
/// at start-up, shared freely across threads. A class: it is handed to every connection handler and
/// verifier, and copying a struct of this many key references retained each of them per message.
///
/// Peers: a replica talks to every other replica and every client; a client talks to every replica.
/// A link key is derived with each peer up front (see `LinkKey`).
public final class Keyring: Sendable {
    public let me: Principal
    public let scheme: AuthenticationScheme
    public let cluster: ValidatedCluster
    let signer: SigningPrivateKey?
    /// Indexed by replica id; nil for myself.
    private let replicaLinks: [LinkKey?]
    /// Empty for a client.
    private let clientLinks: [ClientID: LinkKey]
    /// A replica's key with itself (X25519 of its own key pair): the own entry of its MAC vectors, so that
    /// it can recognise its own message when another replica forwards it as proof (VIEW-CHANGE).
    let selfLink: LinkKey?
    /// The simulator's memo of good signatures (shared by a world's keyrings); nil everywhere else.
    let signatureMemo: SignatureMemo?
    /// The verifier of trusted-subsystem certificates (hybrid protocols: Hybster); nil if the cluster's
    /// protocol has none.
    public let trusted: TrustedVerifier?

    /// Validates the cluster, checks that the keys are mine and derives the link keys.
    /// - Parameters:
    ///   - cluster: the cluster file (validated here).
    ///   - me: the principal this process runs as.
    ///   - keys: my private keys, from my key file.
    ///   - source: the cluster file's name, for error messages.
    /// - Throws: any `validated(source:)` error, then as `init(validated:me:keys:)`.
    public convenience init(cluster file: ClusterFile, me: Principal, keys: PrivateKeys, source: String = "cluster.json",
                            trusted: TrustedVerifier? = nil) throws(ConfigurationError) {
        try self.init(validated: try file.validated(source: source), me: me, keys: keys, signatureMemo: nil, trusted: trusted)
    }

    /// Checks that the keys are mine and derives the link keys with every peer.
    /// - Parameters:
    ///   - cluster: a validated cluster file.
    ///   - me: the principal this process runs as.
    ///   - keys: my private keys, from my key file.
    /// - Throws: `.unknownPrincipal` if I am not in the cluster; `.schemeMismatch`; `.keyMismatch` if my
    ///   public keys in the cluster file are not those of `keys`; `.invalidField` if a peer's agreement key
    ///   is a low-order point.
    public convenience init(validated cluster: ValidatedCluster, me: Principal, keys: PrivateKeys) throws(ConfigurationError) {
        try self.init(validated: cluster, me: me, keys: keys, signatureMemo: nil)
    }

    /// As `init(validated:me:keys:)`, with a memo of signatures already found good (the simulator's: a
    /// broadcast is verified once, not by each of n - 1 replicas; verification is a pure function, so a
    /// run is the same with or without it).
    package init(validated cluster: ValidatedCluster, me: Principal, keys: PrivateKeys, signatureMemo: SignatureMemo?,
                 trusted: TrustedVerifier? = nil) throws(ConfigurationError) {
        let file = cluster.file
        let source = cluster.source
        guard keys.scheme == file.authentication else {
            throw .schemeMismatch(keys: keys.scheme, cluster: file.authentication, file: source)
        }
        guard let listed = cluster.publicKeys(of: me) else { throw .unknownPrincipal(me, file: source) }
        let signingMatches = listed.signing?.canonicalBytes == keys.signing?.publicKey.canonicalBytes
        guard signingMatches, listed.agreement.rawRepresentation == keys.agreement.publicKey.rawRepresentation else {
            throw .keyMismatch(me, file: source)
        }
        var replicaLinks: [LinkKey?] = []
        for replica in cluster.configuration.replicas {
            let peer = Principal.replica(replica)
            replicaLinks.append(peer == me ? nil : try Self.link(me: me, keys: keys, peer: peer, cluster: cluster))
        }
        var clientLinks: [ClientID: LinkKey] = [:]
        if case .replica = me {
            for client in cluster.file.clients {
                let peer = ClientID(client.id)
                clientLinks[peer] = try Self.link(me: me, keys: keys, peer: .client(peer), cluster: cluster)
            }
        }
        self.me = me
        self.scheme = file.authentication
        self.cluster = cluster
        self.signer = keys.signing
        self.replicaLinks = replicaLinks
        self.clientLinks = clientLinks
        self.signatureMemo = signatureMemo
        self.trusted = trusted
        if case .replica = me {
            self.selfLink = LinkKey(me: me, myKey: keys.agreement, peer: me, peerKey: keys.agreement.publicKey)
        } else {
            self.selfLink = nil
        }
    }

    private static func link(me: Principal, keys: PrivateKeys, peer: Principal, cluster: ValidatedCluster) throws(ConfigurationError) -> LinkKey {
        // The peer is listed: the callers iterate over the cluster's own principals.
        guard let peerKeys = cluster.publicKeys(of: peer) else { throw .unknownPrincipal(peer, file: cluster.source) }
        guard let link = LinkKey(me: me, myKey: keys.agreement, peer: peer, peerKey: peerKeys.agreement) else {
            throw .invalidField(file: cluster.source, field: Self.fieldName(of: peer, in: cluster.file) + ".agreementKey",
                                problem: .invalidKey("low-order X25519 point"))
        }
        return link
    }

    private static func fieldName(of principal: Principal, in file: ClusterFile) -> String {
        switch principal {
        case .replica(let id):
            return "replicas[\(file.replicas.firstIndex { $0.id == id.rawValue } ?? Int(id.rawValue))]"
        case .client(let id):
            return "clients[\(file.clients.firstIndex { $0.id == id.rawValue } ?? Int(id.rawValue))]"
        }
    }

    /// The link with a peer, or nil if I do not talk to it (myself, a client when I am a client, strangers).
    func link(with peer: Principal) -> LinkKey? {
        switch peer {
        case .replica(let id):
            return Int(id.rawValue) < replicaLinks.count ? replicaLinks[Int(id.rawValue)] : nil
        case .client(let id):
            return clientLinks[id]
        }
    }

    /// The tag identifying the cluster in handshakes (computed once at validation).
    public var clusterTag: UInt64 { cluster.clusterTag }

    /// My index as a replica, or nil if I am a client.
    var myReplicaIndex: Int? {
        if case .replica(let id) = me { return Int(id.rawValue) }
        return nil
    }
}
