import Crypto
import ThemisCore

/// The pre-keyed MACs of the link between this process and one peer.
///
/// Link key = HKDF-SHA256(X25519 shared secret, salt "themis/v1/link", info = both principals encoded
/// lower first, 32 bytes). Keying HMAC costs more than MACing a small message (measured 1.45 us keyed each
/// time vs 0.64 us copied), so each MAC is keyed once here, already fed with its domain string, and copied
/// per use (`PrekeyedMAC`). The two domains keep a message MAC from ever being taken for a handshake proof.
struct LinkKey: Sendable {
    static let salt = Array("themis/v1/link".utf8)
    static let messageDomain = Array("themis/v1/message:".utf8)
    static let handshakeDomain = Array("themis/v1/handshake:".utf8)
    static let macByteCount = 32

    /// Keyed with the link key and fed `messageDomain`.
    let message: PrekeyedMAC
    /// Keyed with the link key and fed `handshakeDomain`.
    let handshake: PrekeyedMAC

    /// Derives the link key between `me` and `peer`.
    /// - Returns: nil if the peer's public key is a low-order point (the shared secret would be zero).
    init?(me: Principal, myKey: Curve25519.KeyAgreement.PrivateKey, peer: Principal, peerKey: Curve25519.KeyAgreement.PublicKey) {
        guard let secret = try? myKey.sharedSecretFromKeyAgreement(with: peerKey) else { return nil }
        let (lower, higher) = me.linkOrder < peer.linkOrder ? (me, peer) : (peer, me)
        let info = lower.linkEncoding + higher.linkEncoding
        let key = secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: Self.salt, sharedInfo: info, outputByteCount: 32)
        // swift-crypto does not reject the all-zero X25519 output of a low-order public key (for parity
        // with CryptoKit); such a link key would be known to everyone, so refuse it here.
        let zeroSecretKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: [UInt8](repeating: 0, count: 32)), salt: Self.salt, info: info, outputByteCount: 32)
        guard key != zeroSecretKey else { return nil }
        self.message = PrekeyedMAC(key: key, prefix: Self.messageDomain)
        self.handshake = PrekeyedMAC(key: key, prefix: Self.handshakeDomain)
    }

    /// HMAC(link key, message domain || bytes): 32 bytes.
    func messageMAC(_ bytes: [UInt8]) -> [UInt8] {
        message.mac(bytes)
    }

    /// Appends HMAC(link key, message domain || bytes) to `output`.
    func appendMessageMAC(_ bytes: [UInt8], to output: inout [UInt8]) {
        message.appendMAC(of: bytes, to: &output)
    }

    /// Whether `candidate` is HMAC(link key, message domain || bytes) (constant-time comparison).
    func isValidMessageMAC(_ candidate: some Collection<UInt8>, for bytes: [UInt8]) -> Bool {
        message.isValid(candidate, for: bytes)
    }

    /// HMAC(link key, handshake domain || prover || transcript): 32 bytes. Naming the prover stops a
    /// proof from being reflected back to the principal that made it.
    func handshakeMAC(prover: Principal, transcript: [UInt8]) -> [UInt8] {
        handshake.mac(prover.linkEncoding, transcript)
    }
}

extension Principal {
    /// Canonical 5 bytes: a kind byte (0 replica, 1 client) and the id as a big-endian UInt32.
    var linkEncoding: [UInt8] {
        let order = linkOrder
        let id = order.id
        return [order.kind, UInt8(truncatingIfNeeded: id >> 24), UInt8(truncatingIfNeeded: id >> 16),
                UInt8(truncatingIfNeeded: id >> 8), UInt8(truncatingIfNeeded: id)]
    }

    /// Replicas before clients, then by id.
    var linkOrder: LinkOrder {
        switch self {
        case .replica(let id): return LinkOrder(kind: 0, id: id.rawValue)
        case .client(let id): return LinkOrder(kind: 1, id: id.rawValue)
        }
    }
}

/// The canonical order of principals in a link's key derivation.
struct LinkOrder: Comparable {
    let kind: UInt8
    let id: UInt32

    static func < (lhs: LinkOrder, rhs: LinkOrder) -> Bool {
        (lhs.kind, lhs.id) < (rhs.kind, rhs.id)
    }
}
