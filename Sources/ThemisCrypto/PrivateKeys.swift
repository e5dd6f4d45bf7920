import Crypto

/// One principal's private keys, parsed: a signing key of the cluster's scheme (none for `hmac`) and an
/// X25519 key-agreement key (always; it derives the pairwise link keys and proves identity in handshakes).
public struct PrivateKeys: Sendable {
    public let scheme: AuthenticationScheme
    let signing: SigningPrivateKey?
    let agreement: Curve25519.KeyAgreement.PrivateKey

    init(scheme: AuthenticationScheme, signing: SigningPrivateKey?, agreement: Curve25519.KeyAgreement.PrivateKey) {
        self.scheme = scheme
        self.signing = signing
        self.agreement = agreement
    }

    /// Fresh random keys.
    /// - Parameter scheme: the cluster's authentication scheme; RSA-2048 generation takes up to a second.
    public static func generate(scheme: AuthenticationScheme) -> PrivateKeys {
        PrivateKeys(scheme: scheme, signing: SigningPrivateKey.generate(scheme), agreement: .init())
    }

    /// Keys derived deterministically from a seed, so that a simulator run is reproducible from its seed.
    /// Each key is derived from HMAC-SHA256(seed, label) with a distinct label per key.
    /// - Parameters:
    ///   - scheme: the cluster's authentication scheme.
    ///   - seed: exactly 32 bytes.
    /// - Throws: `KeyError.invalidSeedLength` for another seed length,
    ///   `KeyError.deterministicKeysUnsupported` for RSA (its key generation draws its own randomness).
    public static func derive(scheme: AuthenticationScheme, seed: [UInt8]) throws(KeyError) -> PrivateKeys {
        guard seed.count == 32 else { throw .invalidSeedLength(seed.count) }
        let agreementBytes = derivedBytes(seed: seed, label: "themis/v1/seed/agreement")
        // Any 32 bytes are a valid X25519 scalar (it is clamped), so this cannot fail.
        guard let agreement = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: agreementBytes) else {
            preconditionFailure("X25519 rejected a 32-byte scalar")
        }
        return PrivateKeys(scheme: scheme, signing: try derivedSigningKey(scheme: scheme, seed: seed), agreement: agreement)
    }

    private static func derivedSigningKey(scheme: AuthenticationScheme, seed: [UInt8]) throws(KeyError) -> SigningPrivateKey? {
        switch scheme {
        case .hmac:
            return nil
        case .rsa:
            throw .deterministicKeysUnsupported(scheme)
        case .ed25519:
            let bytes = derivedBytes(seed: seed, label: "themis/v1/seed/signing")
            guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes) else {
                preconditionFailure("Ed25519 rejected a 32-byte seed")
            }
            return .ed25519(key)
        case .simulatedInsecure:
            return .simulatedInsecure(SimulatedKey(bytes: derivedBytes(seed: seed, label: "themis/v1/seed/signing")))
        case .ecdsa:
            // A P-256 scalar must lie in [1, order-1]; a random 32-byte string misses with probability
            // about 2^-32, in which case the next counter value is tried. Bounded, so never an endless loop.
            for attempt in 0..<64 {
                let bytes = derivedBytes(seed: seed, label: "themis/v1/seed/signing/\(attempt)")
                if let key = try? P256.Signing.PrivateKey(rawRepresentation: bytes) { return .ecdsa(key) }
            }
            preconditionFailure("64 derived P-256 scalars in a row were out of range")
        }
    }

    private static func derivedBytes(seed: [UInt8], label: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(label.utf8), using: SymmetricKey(data: seed)))
    }

    /// The base64 public signing key for the cluster file; nil for `hmac`.
    public var publicSigningKey: String? { signing?.publicKey.text }

    /// The base64 public X25519 key for the cluster file.
    public var publicAgreementKey: String { Base64.encode(agreement.publicKey.rawRepresentation) }
}

/// Why keys cannot be derived.
public enum KeyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The scheme's key generation cannot be driven by a seed (RSA).
    case deterministicKeysUnsupported(AuthenticationScheme)
    /// The seed is not 32 bytes long.
    case invalidSeedLength(Int)

    public var description: String {
        switch self {
        case .deterministicKeysUnsupported(let scheme): return "\(scheme.rawValue) keys cannot be derived from a seed"
        case .invalidSeedLength(let count): return "a key seed must be 32 bytes, got \(count)"
        }
    }
}
