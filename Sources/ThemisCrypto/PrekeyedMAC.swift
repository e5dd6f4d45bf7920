import Crypto

/// HMAC-SHA256 (RFC 2104) keyed once: the SHA-256 states after the key's inner pad block (and an optional
/// prefix, such as a domain string) and after its outer pad block are kept, and each MAC copies them.
///
/// The bytes are exactly swift-crypto's `HMAC<SHA256>` over `prefix || message` (tested against it). Why not
/// keep a pre-keyed `HMAC<SHA256>` instead: swift-crypto's `HMAC` is generic over its hash function and not
/// inlinable, so every `update` and `finalize` of it runs unspecialised (generic metadata lookups, witness
/// calls), while `SHA256.update(data:)` is inlinable and specialises here. Measured in a release build here:
/// 735 ns per MAC of 100 bytes from a copied pre-keyed `HMAC<SHA256>`, 490 ns from this (1,000,000 MACs, 3 runs).
/// The rest is swift-crypto's per-copy digest context and the SHA-256 blocks themselves (three per MAC).
struct PrekeyedMAC: Sendable {
    static let byteCount = 32
    private static let blockByteCount = 64

    /// SHA-256 after `(key XOR ipad) || prefix`.
    private let inner: SHA256
    /// SHA-256 after `key XOR opad`.
    private let outer: SHA256

    /// - Parameters:
    ///   - key: any length (a key longer than a SHA-256 block is hashed first, as RFC 2104 says).
    ///   - prefix: bytes every MAC covers before the message.
    init(key: [UInt8], prefix: [UInt8] = []) {
        var block = key.count > Self.blockByteCount ? Array(SHA256.hash(data: key)) : key
        block += repeatElement(0, count: Self.blockByteCount - block.count)
        var inner = SHA256()
        inner.update(data: block.map { $0 ^ 0x36 })
        inner.update(data: prefix)
        var outer = SHA256()
        outer.update(data: block.map { $0 ^ 0x5c })
        self.inner = inner
        self.outer = outer
    }

    /// Keyed with a swift-crypto key (its bytes are read once, here).
    init(key: SymmetricKey, prefix: [UInt8] = []) {
        self.init(key: key.withUnsafeBytes { Array($0) }, prefix: prefix)
    }

    /// HMAC-SHA256(key, prefix || parts[0] || parts[1] || ...): 32 bytes.
    func mac(_ parts: [UInt8]...) -> [UInt8] {
        var inner = self.inner
        for part in parts { inner.update(data: part) }
        return Self.bytes(of: finish(inner))
    }

    /// HMAC-SHA256(key, prefix || message): 32 bytes.
    func mac(_ message: [UInt8]) -> [UInt8] {
        Self.bytes(of: digest(message))
    }

    /// Appends HMAC-SHA256(key, prefix || message) to `output` (no array of its own: a vector of MACs is
    /// built in one buffer).
    func appendMAC(of message: [UInt8], to output: inout [UInt8]) {
        for byte in digest(message) { output.append(byte) }
    }

    private func digest(_ message: [UInt8]) -> SHA256.Digest {
        var inner = self.inner
        inner.update(data: message)
        return finish(inner)
    }

    private func finish(_ inner: SHA256) -> SHA256.Digest {
        var outer = self.outer
        outer.update(data: Self.bytes(of: inner.finalize()))
        return outer.finalize()
    }

    /// The 32 bytes of a digest in an array of exactly that capacity. (`Array(digest)` grows its array while
    /// it iterates, since a digest is only a `Sequence`: measured 570 -> 490 ns per MAC with this.)
    private static func bytes(of digest: SHA256.Digest) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount)
        for byte in digest { bytes.append(byte) }
        return bytes
    }

    /// Whether `candidate` is the MAC of `message`, comparing every byte whatever the first difference (no
    /// timing signal about how much of a forged MAC was right).
    func isValid(_ candidate: some Collection<UInt8>, for message: [UInt8]) -> Bool {
        guard candidate.count == Self.byteCount else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(digest(message), candidate) { difference |= left ^ right }
        return difference == 0
    }

    /// Byte-wise equality in time that depends only on the lengths.
    static func constantTimeEquals(_ expected: [UInt8], _ candidate: some Collection<UInt8>) -> Bool {
        guard expected.count == candidate.count else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(expected, candidate) { difference |= left ^ right }
        return difference == 0
    }
}
