// Proves that PrekeyedMAC computes exactly HMAC-SHA256 (RFC 4231 vectors, and swift-crypto's HMAC over every
// key length class and message lengths around the block boundaries, with and without a prefix), and that its
// comparison accepts only the exact MAC.
import Crypto
import Testing
@testable import ThemisCrypto

@Suite struct PrekeyedMACTests {
    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test func rfc4231Vectors() {
        // Test case 1: key 20 x 0x0b, "Hi There".
        #expect(hex(PrekeyedMAC(key: [UInt8](repeating: 0x0b, count: 20)).mac(Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2: key "Jefe".
        #expect(hex(PrekeyedMAC(key: Array("Jefe".utf8)).mac(Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 6: a 131-byte key (longer than a block, hashed first).
        #expect(hex(PrekeyedMAC(key: [UInt8](repeating: 0xaa, count: 131))
            .mac(Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
            == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func matchesSwiftCryptoHMAC() {
        for keyLength in [0, 1, 31, 32, 63, 64, 65, 200] {
            let key = (0..<keyLength).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            for prefix in [[], Array("themis/v1/message:".utf8)] {
                let mac = PrekeyedMAC(key: key, prefix: prefix)
                for length in [0, 1, 45, 55, 56, 63, 64, 65, 100, 119, 120, 128, 300] {
                    let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ keyLength) }
                    var reference = HMAC<SHA256>(key: SymmetricKey(data: key))
                    reference.update(data: prefix)
                    reference.update(data: message)
                    let expected = Array(reference.finalize())
                    #expect(mac.mac(message) == expected, "key \(keyLength) prefix \(prefix.count) message \(length)")
                    var vector: [UInt8] = [7]
                    mac.appendMAC(of: message, to: &vector)
                    #expect(vector == [7] + expected)
                    #expect(mac.isValid(expected, for: message))
                    let split = length / 3
                    #expect(mac.mac(Array(message[..<split]), Array(message[split...])) == expected)
                }
            }
        }
        // Keyed from a SymmetricKey: the same as from its bytes.
        let bytes = (0..<32).map { UInt8($0) }
        #expect(PrekeyedMAC(key: SymmetricKey(data: bytes)).mac([1, 2, 3]) == PrekeyedMAC(key: bytes).mac([1, 2, 3]))
    }

    @Test func comparisonAcceptsOnlyTheExactMAC() {
        let mac = PrekeyedMAC(key: Array("key".utf8))
        let message: [UInt8] = [1, 2, 3]
        let good = mac.mac(message)
        #expect(mac.isValid(good, for: message))
        #expect(mac.isValid(good[...], for: message))
        #expect(!mac.isValid(good, for: [1, 2, 4]))
        for index in [0, 15, 31] {
            var forged = good
            forged[index] ^= 0x01
            #expect(!mac.isValid(forged, for: message))
        }
        #expect(!mac.isValid(Array(good.dropLast()), for: message))
        #expect(!mac.isValid(good + [0], for: message))
        #expect(!mac.isValid([], for: message))
        #expect(PrekeyedMAC.constantTimeEquals([], [UInt8]()))
    }
}
