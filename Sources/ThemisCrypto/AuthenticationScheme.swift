import ThemisWire

/// How principals authenticate messages, chosen once per cluster in `cluster.json`.
///
/// The signature schemes produce transferable authenticators (any principal can check them, so they can
/// be forwarded inside certificates); `hmac` produces pairwise MACs that only the addressee can check,
/// which is much cheaper but not transferable.
public enum AuthenticationScheme: String, Codable, Sendable, CaseIterable {
    /// HMAC-SHA256 with pairwise link keys; no signing key pair.
    case hmac
    /// Ed25519 signatures (64 bytes).
    case ed25519
    /// ECDSA over P-256 with SHA-256, raw `r || s` signatures (64 bytes).
    case ecdsa
    /// RSA-2048, PSS padding with SHA-256 and a 32-byte salt (256-byte signatures).
    case rsa
    /// NOT SECURE, for the simulator only: a "signature" is HMAC-SHA256 under the signer's key, and the
    /// "public" key in the cluster file is that same key, so anyone who reads the file can forge. It
    /// behaves like a signature scheme (transferable, one 32-byte tag checked by anyone) at the cost of a
    /// MAC, and the simulator's Byzantine replicas only sign with their own key. `validated(source:)` (and
    /// so `ClusterFile.load`, every public `Keyring` initializer and every command) refuses it, and no
    /// command line accepts it (`init(deployable:)`); only the simulator's package path allows it.
    case simulatedInsecure = "simulated-insecure"

    /// The schemes a cluster may be deployed with (not `simulatedInsecure`).
    public static let deployable: [AuthenticationScheme] = [.hmac, .ed25519, .ecdsa, .rsa]

    /// A scheme named on a command line or in a cluster file; nil for unknown names and for the
    /// simulator-only scheme.
    public init?(deployable name: String) {
        guard let scheme = AuthenticationScheme(rawValue: name), Self.deployable.contains(scheme) else { return nil }
        self = scheme
    }

    /// The sizes of the authenticators this scheme makes in a cluster of `replicaCount` replicas: a MAC
    /// vector has one 32-byte MAC per replica, a single MAC 32 bytes; a signature has a fixed size.
    public func authenticatorSizes(replicaCount: Int) -> MessageBounds.AuthenticatorSizes {
        switch self {
        case .hmac: return .init(broadcast: 32 * replicaCount, request: 32 * replicaCount, pairwise: 32)
        case .ed25519, .ecdsa: return .init(broadcast: 64, request: 64, pairwise: 64)
        case .rsa: return .init(broadcast: 256, request: 256, pairwise: 256)
        case .simulatedInsecure: return .init(broadcast: 32, request: 32, pairwise: 32)
        }
    }

    /// True if the scheme signs with a key pair (everything but `hmac`).
    public var usesSignatures: Bool {
        switch self {
        case .hmac: return false
        case .ed25519, .ecdsa, .rsa, .simulatedInsecure: return true
        }
    }
}
