import Crypto

/// A SHA-256 digest, stored as four words so that comparing and hashing it allocates nothing.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public let word0: UInt64
    public let word1: UInt64
    public let word2: UInt64
    public let word3: UInt64

    public static let zero = Digest(word0: 0, word1: 0, word2: 0, word3: 0)

    public init(word0: UInt64, word1: UInt64, word2: UInt64, word3: UInt64) {
        self.word0 = word0
        self.word1 = word1
        self.word2 = word2
        self.word3 = word3
    }

    /// Reads 32 big-endian bytes; returns nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Digest.byteCount else { return nil }
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in bytes.enumerated() {
            words[index / 8] = (words[index / 8] << 8) | UInt64(byte)
        }
        self.init(word0: words[0], word1: words[1], word2: words[2], word3: words[3])
    }

    /// The 32 bytes, big-endian.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(Digest.byteCount)
        for word in [word0, word1, word2, word3] {
            for shift in stride(from: 56, through: 0, by: -8) {
                result.append(UInt8(truncatingIfNeeded: word >> UInt64(shift)))
            }
        }
        return result
    }

    /// SHA-256 of the given bytes.
    public static func of(_ bytes: some Sequence<UInt8>) -> Digest {
        var builder = DigestBuilder(domain: nil)
        builder.append(contentsOf: bytes)
        return builder.finish()
    }

    /// SHA-256 of the given bytes (an array goes to the hasher in one update, with no buffer in between).
    public static func of(_ bytes: [UInt8]) -> Digest {
        var hasher = SHA256()
        hasher.update(data: bytes)
        return Digest(hasher.finalize())
    }

    /// The words of a swift-crypto digest (read big-endian, through one iteration).
    init(_ digest: SHA256.Digest) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for (index, byte) in digest.enumerated() {
            switch index / 8 {
            case 0: words.0 = words.0 << 8 | UInt64(byte)
            case 1: words.1 = words.1 << 8 | UInt64(byte)
            case 2: words.2 = words.2 << 8 | UInt64(byte)
            default: words.3 = words.3 << 8 | UInt64(byte)
            }
        }
        self.init(word0: words.0, word1: words.1, word2: words.2, word3: words.3)
    }

    public var description: String {
        let hex = bytes.prefix(6).map { byte -> String in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }
        return hex.joined()
    }

    /// Full lowercase hex of the 32 bytes.
    public var hex: String {
        bytes.map { byte -> String in
            let text = String(byte, radix: 16)
            return text.count == 1 ? "0" + text : text
        }.joined()
    }
}

/// Incremental SHA-256 over a canonical, unambiguous encoding: fixed-width big-endian integers and
/// length-prefixed byte strings. A domain string separates digests of different kinds of things.
///
/// Request digests are computed once per request on the hot path: small fields collect in one buffer
/// and reach the hasher in a single update, instead of one small array per integer.
public struct DigestBuilder {
    private var hasher = SHA256()
    private var pending: [UInt8] = []

    public init(domain: String?) {
        pending.reserveCapacity(128)
        if let domain {
            // As `append(bytes:)` of the domain's UTF-8, without making an array of it first.
            let utf8 = domain.utf8
            append(UInt64(utf8.count))
            pending.append(contentsOf: utf8)
        }
    }

    public mutating func append(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) {
            pending.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    public mutating func append(_ value: UInt32) { append(UInt64(value)) }

    public mutating func append(_ digest: Digest) {
        append(digest.word0)
        append(digest.word1)
        append(digest.word2)
        append(digest.word3)
    }

    /// Appends a length-prefixed byte string.
    public mutating func append(bytes: [UInt8]) {
        append(UInt64(bytes.count))
        if bytes.count <= 256 {
            pending.append(contentsOf: bytes)
        } else {
            flush()
            hasher.update(data: bytes)
        }
    }

    /// Appends raw bytes without a length prefix (for `Digest.of`).
    public mutating func append(contentsOf bytes: some Sequence<UInt8>) {
        pending.append(contentsOf: bytes)
        if pending.count >= 4096 { flush() }
    }

    private mutating func flush() {
        guard !pending.isEmpty else { return }
        hasher.update(data: pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// The digest. Consuming: the builder's hasher and buffer are finished in place, not copied first
    /// (a builder used again after `finish()` is copied by the compiler, as any value).
    public consuming func finish() -> Digest {
        if !pending.isEmpty { hasher.update(data: pending) }
        return Digest(hasher.finalize())
    }
}
