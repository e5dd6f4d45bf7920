// Proves that no input crashes the decoder or the frame splitter: thousands of random payloads and
// mutations of valid encodings from a seeded SplitMix64 either throw a WireError or decode to a
// message that re-encodes to exactly the same bytes (the encoding is canonical).
import NIOCore
import Testing
import ThemisCore
import ThemisPBFT
import ThemisSimulator
import ThemisWire

@Suite struct FuzzTests {
    static let knownKinds: [UInt8] = [0x01, 0x02, 0x03, 0x04, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x40]
    static let pbftKinds: [UInt8] = [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A]

    /// Decodes; on success the message MUST re-encode to the same bytes.
    func check(_ bytes: [UInt8]) {
        guard let message = try? Fixtures.decode(bytes) else { return }
        #expect(Fixtures.bytes(message) == bytes)
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func randomPayloadsNeverCrash(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for _ in 0..<3000 {
            var bytes = random.bytes(count: Int.random(in: 0..<160, using: &random))
            // Mostly a valid header, so the fields behind it get exercised too.
            if bytes.count >= 2, Int.random(in: 0..<4, using: &random) != 0 {
                bytes[0] = WireCodec.version
                bytes[1] = Self.knownKinds[Int.random(in: 0..<Self.knownKinds.count, using: &random)]
                // A protocol message: mostly PBFT's id and one of its kinds.
                if bytes[1] == 0x40, bytes.count >= 4, Int.random(in: 0..<4, using: &random) != 0 {
                    bytes[2] = PBFTCodec.protocolID.rawValue
                    bytes[3] = Self.pbftKinds[Int.random(in: 0..<Self.pbftKinds.count, using: &random)]
                }
            }
            check(bytes)
        }
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func mutatedEncodingsNeverCrash(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let encodings = Fixtures.samples.map(Fixtures.bytes)
        for _ in 0..<2000 {
            var bytes = encodings[Int.random(in: 0..<encodings.count, using: &random)]
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                mutate(&bytes, using: &random)
            }
            check(bytes)
        }
    }

    /// VIEW-CHANGE and NEW-VIEW encodings with random byte flips (plus the other mutations): none
    /// crashes, and a flip that still decodes to another message changes its authenticated bytes.
    @Test(arguments: [UInt64(21), 22, 23])
    func mutatedViewChangeEncodingsNeverCrash(seed: UInt64) {
        // Flips inside digests, numbers and authenticators keep the message well formed: the property is exercised.
        #expect(flipAndCheckAuthenticatedBytes(Fixtures.viewChangeSamples, seed: seed) > 100)
    }

    /// The same for the state-transfer messages: every field of theirs is authenticated (a chunk's
    /// bytes and the committed batches through their digest), so any accepted change is detected.
    @Test(arguments: [UInt64(31), 32, 33])
    func mutatedStateTransferEncodingsNeverCrash(seed: UInt64) {
        #expect(flipAndCheckAuthenticatedBytes(Fixtures.stateTransferSamples, seed: seed) > 100)
    }

    /// Mutates encodings of `messages` (mostly byte flips) 2000 times; checks that each either throws
    /// or re-encodes canonically, and that one decoding to a different message has different
    /// authenticated bytes. Returns how many mutations decoded to a different message.
    func flipAndCheckAuthenticatedBytes(_ messages: [WireMessage], seed: UInt64) -> Int {
        var random = SplitMix64(seed: seed)
        var alteredButValid = 0
        for _ in 0..<2000 {
            let original = messages[Int.random(in: 0..<messages.count, using: &random)]
            var bytes = Fixtures.bytes(original)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                if Int.random(in: 0..<4, using: &random) == 0 {
                    mutate(&bytes, using: &random)
                } else if !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                }
            }
            check(bytes)
            guard let sent = original.pbft?.message, let received = (try? Fixtures.decode(bytes))?.pbft?.message, received != sent else { continue }
            alteredButValid += 1
            #expect(WireCodec.authenticatedBytes(of: received) != WireCodec.authenticatedBytes(of: sent))
        }
        return alteredButValid
    }

    func mutate(_ bytes: inout [UInt8], using random: inout SplitMix64) {
        guard !bytes.isEmpty else { return bytes.append(UInt8.random(in: 0...255, using: &random)) }
        let index = Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<4, using: &random) {
        case 0: bytes[index] = UInt8.random(in: 0...255, using: &random)
        case 1: bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
        case 2: bytes.removeSubrange(index...)
        default: bytes.insert(UInt8.random(in: 0...255, using: &random), at: index)
        }
    }

    @Test func randomStreamsNeverCrashTheFrameSplitter() {
        var random = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            var stream = ByteBuffer(bytes: random.bytes(count: Int.random(in: 0..<64, using: &random)))
            // Small lengths are likely when the first bytes are zero; force some.
            if stream.readableBytes >= 4, Bool.random(using: &random) {
                stream.setInteger(UInt32.random(in: 0..<64, using: &random), at: 0)
            }
            while let frame = try? FrameDecoder.nextFrame(from: &stream, maxFrameBytes: 48) {
                #expect(frame.readableBytes > 0 && frame.readableBytes <= 48)
            }
        }
    }
}
