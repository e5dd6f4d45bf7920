import NIOCore
import ThemisCore

/// The simulator's only source of randomness: SplitMix64, seeded once per run (no global generator).
/// The one seeded generator of the package: tests that need reproducible randomness use it too.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True with probability `numerator / denominator`.
    public mutating func chance(_ numerator: UInt64, in denominator: UInt64) -> Bool {
        next() % denominator < numerator
    }

    /// A value in `range`.
    public mutating func pick(_ range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + next() % (range.upperBound - range.lowerBound + 1)
    }

    /// `count` pseudo-random bytes.
    public mutating func bytes(count: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            let word = next()
            for shift in stride(from: 0, to: 64, by: 8) where bytes.count < count { bytes.append(UInt8(truncatingIfNeeded: word >> shift)) }
        }
        return bytes
    }

    /// 32 bytes, for deriving keys.
    public mutating func seedBytes() -> [UInt8] {
        (0..<4).flatMap { _ -> [UInt8] in
            let word = next()
            return (0..<8).map { UInt8(truncatingIfNeeded: word >> UInt64($0 * 8)) }
        }
    }
}

/// FNV-1a over everything that happened: two runs of one seed must give the same hash.
package struct TraceHash {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    /// Mixes one 64-bit word (a multiply-xorshift step: every packet's bytes go through here, 8 at a time).
    mutating func add(_ word: UInt64) {
        value = (value ^ word) &* 0x9E37_79B9_7F4A_7C15
        value ^= value >> 29
    }

    mutating func add(_ digest: Digest) {
        add(digest.word0)
        add(digest.word1)
        add(digest.word2)
        add(digest.word3)
    }

    /// A packet's readable bytes, 8 at a time, then the tail and the length.
    mutating func add(_ buffer: ByteBuffer) {
        var reader = buffer
        while let word: UInt64 = reader.readInteger() { add(word) }
        var tail: UInt64 = 0
        while let byte: UInt8 = reader.readInteger() { tail = tail << 8 | UInt64(byte) }
        add(tail)
        add(UInt64(buffer.readableBytes))
    }
}

