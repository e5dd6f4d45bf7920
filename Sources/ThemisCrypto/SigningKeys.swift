import Crypto
import FoundationEssentials
import _CryptoExtras

/// A principal's private signing key, for one of the signature schemes.
///
/// Encodings in key files: Ed25519 and P-256 use the 32-byte raw scalar, RSA the PKCS#1 DER
/// (a PEM string is accepted too).
enum SigningPrivateKey: Sendable {
    case ed25519(Curve25519.Signing.PrivateKey)
    case ecdsa(P256.Signing.PrivateKey)
    case rsa(_RSA.Signing.PrivateKey)
    /// The simulator's stand-in (`AuthenticationScheme.simulatedInsecure`): 32 key bytes, public too.
    case simulatedInsecure(SimulatedKey)

    /// A fresh random key; nil for `hmac`, which signs nothing.
    static func generate(_ scheme: AuthenticationScheme) -> SigningPrivateKey? {
        switch scheme {
        case .hmac:
            return nil
        case .ed25519:
            return .ed25519(Curve25519.Signing.PrivateKey())
        case .ecdsa:
            return .ecdsa(P256.Signing.PrivateKey())
        case .rsa:
            // Key generation fails only if BoringSSL cannot allocate: nothing sensible is left to do then.
            guard let key = try? _RSA.Signing.PrivateKey(keySize: .bits2048) else {
                preconditionFailure("RSA-2048 key generation failed")
            }
            return .rsa(key)
        case .simulatedInsecure:
            return .simulatedInsecure(SimulatedKey(bytes: (0..<32).map { _ in UInt8.random(in: .min ... .max) }))
        }
    }

    /// Parses a key file's text for the scheme.
    /// - Throws: `FieldProblem.invalidBase64` or `.invalidKey` if the text does not hold such a key.
    init(scheme: AuthenticationScheme, text: String) throws(FieldProblem) {
        switch scheme {
        case .hmac:
            throw .invalidKey("hmac uses no signing key")
        case .ed25519:
            let bytes = try Base64.decode(text)
            guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes) else {
                throw .invalidKey("expected a 32-byte Ed25519 private key, got \(bytes.count) bytes")
            }
            self = .ed25519(key)
        case .ecdsa:
            let bytes = try Base64.decode(text)
            guard let key = try? P256.Signing.PrivateKey(rawRepresentation: bytes) else {
                throw .invalidKey("expected a 32-byte P-256 private scalar, got \(bytes.count) bytes")
            }
            self = .ecdsa(key)
        case .rsa:
            if text.hasPrefix("-----BEGIN") {
                guard let key = try? _RSA.Signing.PrivateKey(pemRepresentation: text) else {
                    throw .invalidKey("not an RSA private key of at least 2048 bits in PEM")
                }
                self = .rsa(key)
            } else {
                let bytes = try Base64.decode(text)
                guard let key = try? _RSA.Signing.PrivateKey(derRepresentation: bytes) else {
                    throw .invalidKey("not an RSA private key of at least 2048 bits in DER")
                }
                self = .rsa(key)
            }
        case .simulatedInsecure:
            self = .simulatedInsecure(try SigningPublicKey.simulatedKey(text))
        }
    }

    /// The base64 text written to key files.
    var text: String {
        switch self {
        case .ed25519(let key): return Base64.encode(key.rawRepresentation)
        case .ecdsa(let key): return Base64.encode(key.rawRepresentation)
        case .rsa(let key): return Base64.encode(key.derRepresentation)
        case .simulatedInsecure(let key): return Base64.encode(key.bytes)
        }
    }

    var publicKey: SigningPublicKey {
        switch self {
        case .ed25519(let key): return .ed25519(key.publicKey)
        case .ecdsa(let key): return .ecdsa(key.publicKey)
        case .rsa(let key): return .rsa(key.publicKey)
        case .simulatedInsecure(let key): return .simulatedInsecure(key)
        }
    }

    /// Signs the bytes; returns nil only if the crypto library fails internally (out of memory).
    func signature(for bytes: [UInt8]) -> [UInt8]? {
        switch self {
        case .ed25519(let key):
            return (try? key.signature(for: bytes)).map { Array($0) }
        case .ecdsa(let key):
            return (try? key.signature(for: bytes)).map { Array($0.rawRepresentation) }
        case .rsa(let key):
            return (try? key.signature(for: bytes, padding: .PSS)).map { Array($0.rawRepresentation) }
        case .simulatedInsecure(let key):
            return key.tag(bytes)
        }
    }
}

/// A principal's public signing key, as listed in the cluster file.
///
/// Encodings: Ed25519 the 32 raw bytes, P-256 the 65-byte uncompressed X9.63 point, RSA the
/// SubjectPublicKeyInfo DER (a PEM string is accepted too).
enum SigningPublicKey: Sendable {
    case ed25519(Curve25519.Signing.PublicKey)
    case ecdsa(P256.Signing.PublicKey)
    case rsa(_RSA.Signing.PublicKey)
    /// The simulator's stand-in: the signer's key itself (`AuthenticationScheme.simulatedInsecure`).
    case simulatedInsecure(SimulatedKey)

    /// Parses a cluster file's text for the scheme.
    /// - Throws: `FieldProblem.invalidBase64` or `.invalidKey` if the text does not hold such a key.
    init(scheme: AuthenticationScheme, text: String) throws(FieldProblem) {
        switch scheme {
        case .hmac:
            throw .invalidKey("hmac uses no signing key")
        case .ed25519:
            let bytes = try Base64.decode(text)
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes) else {
                throw .invalidKey("expected a 32-byte Ed25519 public key, got \(bytes.count) bytes")
            }
            self = .ed25519(key)
        case .ecdsa:
            let bytes = try Base64.decode(text)
            guard let key = try? P256.Signing.PublicKey(x963Representation: bytes) else {
                throw .invalidKey("expected a 65-byte uncompressed P-256 point, got \(bytes.count) bytes")
            }
            self = .ecdsa(key)
        case .rsa:
            if text.hasPrefix("-----BEGIN") {
                guard let key = try? _RSA.Signing.PublicKey(pemRepresentation: text) else {
                    throw .invalidKey("not an RSA public key of at least 2048 bits in PEM")
                }
                self = .rsa(key)
            } else {
                let bytes = try Base64.decode(text)
                guard let key = try? _RSA.Signing.PublicKey(derRepresentation: bytes) else {
                    throw .invalidKey("not an RSA public key of at least 2048 bits in DER")
                }
                self = .rsa(key)
            }
        case .simulatedInsecure:
            self = .simulatedInsecure(try Self.simulatedKey(text))
        }
    }

    /// The 32 bytes of a simulator-only key.
    static func simulatedKey(_ text: String) throws(FieldProblem) -> SimulatedKey {
        let bytes = try Base64.decode(text)
        guard bytes.count == 32 else { throw .invalidKey("expected a 32-byte simulator key, got \(bytes.count) bytes") }
        return SimulatedKey(bytes: bytes)
    }

    /// The canonical bytes of the key, used to compare keys whatever text they were read from.
    var canonicalBytes: [UInt8] {
        switch self {
        case .ed25519(let key): return Array(key.rawRepresentation)
        case .ecdsa(let key): return Array(key.x963Representation)
        case .rsa(let key): return Array(key.derRepresentation)
        case .simulatedInsecure(let key): return key.bytes
        }
    }

    /// The base64 text written to cluster files.
    var text: String { Base64.encode(canonicalBytes) }

    /// Checks a signature; any malformed signature is simply invalid.
    func isValidSignature(_ signature: [UInt8], for bytes: [UInt8]) -> Bool {
        switch self {
        case .ed25519(let key):
            return key.isValidSignature(signature, for: bytes)
        case .ecdsa(let key):
            guard let parsed = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: bytes)
        case .rsa(let key):
            let parsed = _RSA.Signing.RSASignature(rawRepresentation: signature)
            return key.isValidSignature(parsed, for: bytes, padding: .PSS)
        case .simulatedInsecure(let key):
            return key.tag(bytes) == signature
        }
    }
}

/// The simulator's stand-in for a signing key (`AuthenticationScheme.simulatedInsecure`): its 32 bytes are
/// both the private and the "public" key, and a tag is HMAC-SHA256 under them (a copy of a pre-keyed HMAC,
/// under a microsecond).
struct SimulatedKey: Sendable {
    let bytes: [UInt8]
    private let keyed: PrekeyedMAC

    init(bytes: [UInt8]) {
        self.bytes = bytes
        self.keyed = PrekeyedMAC(key: bytes)
    }

    func tag(_ message: [UInt8]) -> [UInt8] {
        keyed.mac(message)
    }
}
