import Crypto
import ThemisCore

/// The JSON model of a private key file (`replica-<i>.key`, `client-<i>.key`):
/// ```json
/// { "kind": "replica", "id": 2, "scheme": "ed25519", "signingKey": "<base64>", "agreementKey": "<base64>" }
/// ```
/// `signingKey` is absent for `hmac`. The public halves live in the cluster file.
public struct PrivateKeyFile: Codable, Sendable, Hashable {
    /// Whether the key file belongs to a replica or a client.
    public enum Kind: String, Codable, Sendable, Hashable {
        case replica
        case client
    }

    public var kind: Kind
    public var id: UInt32
    public var scheme: AuthenticationScheme
    /// Base64 private signing key: raw 32 bytes (Ed25519, P-256) or PKCS#1 DER (RSA; PEM text accepted).
    public var signingKey: String?
    /// Base64 raw 32-byte X25519 private key.
    public var agreementKey: String

    public init(kind: Kind, id: UInt32, scheme: AuthenticationScheme, signingKey: String?, agreementKey: String) {
        self.kind = kind
        self.id = id
        self.scheme = scheme
        self.signingKey = signingKey
        self.agreementKey = agreementKey
    }

    /// The file for a principal's keys.
    public init(principal: Principal, keys: PrivateKeys) {
        switch principal {
        case .replica(let id): self.kind = .replica; self.id = id.rawValue
        case .client(let id): self.kind = .client; self.id = id.rawValue
        }
        self.scheme = keys.scheme
        self.signingKey = keys.signing?.text
        self.agreementKey = Base64.encode(keys.agreement.rawRepresentation)
    }

    public var principal: Principal {
        switch kind {
        case .replica: return .replica(ReplicaID(id))
        case .client: return .client(ClientID(id))
        }
    }

    /// Parses the keys.
    /// - Parameter source: the file name used in error messages.
    /// - Throws: `ConfigurationError.invalidField` naming the key that does not decode.
    public func keys(source: String = "key file") throws(ConfigurationError) -> PrivateKeys {
        var signing: SigningPrivateKey?
        if scheme.usesSignatures {
            guard let signingKey else {
                throw .invalidField(file: source, field: "signingKey", problem: .missingKey)
            }
            do {
                signing = try SigningPrivateKey(scheme: scheme, text: signingKey)
            } catch {
                throw .invalidField(file: source, field: "signingKey", problem: error)
            }
        }
        let agreement: Curve25519.KeyAgreement.PrivateKey
        do {
            agreement = try AgreementKeys.privateKey(text: agreementKey)
        } catch {
            throw .invalidField(file: source, field: "agreementKey", problem: error)
        }
        return PrivateKeys(scheme: scheme, signing: signing, agreement: agreement)
    }

    /// Loads and parses a key file.
    /// - Throws: `ConfigurationError` if the file is missing, unreadable, not JSON of this shape, or a key
    ///   does not decode.
    public static func load(path: String) throws(ConfigurationError) -> PrivateKeyFile {
        let file: PrivateKeyFile = try JSONFile.read(path: path)
        _ = try file.keys(source: path)
        return file
    }

    /// Writes the key file, readable by its owner only (mode 0600).
    /// - Throws: `ConfigurationError.unwritable`.
    public func write(to path: String) throws(ConfigurationError) {
        try JSONFile.write(self, path: path, ownerOnly: true)
    }
}
