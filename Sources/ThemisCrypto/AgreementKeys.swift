import Crypto

/// Parsing of the X25519 key-agreement keys: base64 of the raw 32 bytes, in key files and cluster files.
enum AgreementKeys {
    /// - Throws: `FieldProblem.invalidBase64` or `.invalidKey`.
    static func privateKey(text: String) throws(FieldProblem) -> Curve25519.KeyAgreement.PrivateKey {
        let bytes = try Base64.decode(text)
        guard let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: bytes) else {
            throw .invalidKey("expected a 32-byte X25519 private key, got \(bytes.count) bytes")
        }
        return key
    }

    /// - Throws: `FieldProblem.invalidBase64` or `.invalidKey`.
    static func publicKey(text: String) throws(FieldProblem) -> Curve25519.KeyAgreement.PublicKey {
        let bytes = try Base64.decode(text)
        guard let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: bytes) else {
            throw .invalidKey("expected a 32-byte X25519 public key, got \(bytes.count) bytes")
        }
        return key
    }
}
