// Proves that malformed payloads are rejected with the right typed error and never crash: every
// strict prefix of every sample, trailing bytes, lengths over their limit (checked before anything is
// allocated, with UInt32.max length fields), unknown versions, kinds and principals, bad nonces and
// bad UTF-8, each built by hand from the documented layout.
import NIOCore
import Testing
import ThemisCore
import ThemisPBFT
import ThemisWire

@Suite struct MalformedInputTests {
    let limits = Fixtures.limits
    let maxLength: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
    let tooLong = Int(UInt32.max)

    @Test(arguments: Fixtures.samples)
    func everyStrictPrefixThrowsTruncated(message: WireMessage) {
        let bytes = Fixtures.bytes(message)
        for length in 0..<bytes.count {
            #expect(throws: WireError.truncated) { try Fixtures.decode(Array(bytes.prefix(length))) }
        }
    }

    @Test(arguments: Fixtures.samples)
    func trailingBytesThrow(message: WireMessage) {
        let bytes = Fixtures.bytes(message)
        #expect(throws: WireError.trailingBytes(count: 1)) { try Fixtures.decode(bytes + [0]) }
        #expect(throws: WireError.trailingBytes(count: 3)) { try Fixtures.decode(bytes + [1, 2, 3]) }
    }

    @Test func failedDecodeLeavesThePayloadUnconsumed() {
        var payload = ByteBuffer(bytes: Fixtures.bytes(.statusQuery(StatusQuery(nonce: 1))) + [0])
        #expect(throws: WireError.trailingBytes(count: 1)) { try WireCodec.decode(&payload, limits: limits) }
        #expect(payload.readerIndex == 0)
    }

    @Test func maximalLengthFieldsThrowLengthTooLarge() {
        let slot = Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(2)) + Fixtures.digest(1).bytes + [0, 0, 0, 1]
        let requestHead = Fixtures.bigEndian(UInt32(5)) + Fixtures.bigEndian(UInt64(6))
        let replyHead = Fixtures.bigEndian(UInt64(1)) + Fixtures.bigEndian(UInt64(2)) + [0, 0, 0, 3, 0, 0, 0, 4]
        let cases: [(bytes: [UInt8], field: String, max: Int)] = [
            ([2, 0x20] + requestHead + maxLength, "operation", limits.operationBytesMax),
            ([2, 0x20] + requestHead + [0, 0, 0, 0] + maxLength, "request authenticator", limits.authenticatorBytesMax),
            ([2, 0x21] + replyHead + maxLength, "result", limits.resultBytesMax),
            ([2, 0x21] + replyHead + [0, 0, 0, 0] + maxLength, "reply authenticator", limits.authenticatorBytesMax),
            ([2, 0x40, 1, 0x12] + slot + maxLength, "authenticator", limits.authenticatorBytesMax),
            ([2, 0x40, 1, 0x11] + slot + maxLength, "batch", limits.batchRequestsMax),
            ([2, 0x40, 1, 0x10, 0, 0, 0, 1] + requestHead + maxLength, "operation", limits.operationBytesMax),
            ([2, 0x02] + maxLength, "hello proof", limits.authenticatorBytesMax),
            ([2, 0x03] + maxLength, "goodbye reason", WireCodec.goodbyeReasonBytesMax),
        ]
        for (bytes, field, max) in cases {
            #expect(throws: WireError.lengthTooLarge(field: field, length: tooLong, max: max)) { try Fixtures.decode(bytes) }
        }
    }

    @Test func lengthsAreCheckedAgainstTheConfiguredLimits() throws {
        let small = Limits(operationBytesMax: 100, resultBytesMax: 10, authenticatorBytesMax: 8, batchRequestsMax: 2)
        let atLimit = WireMessage.request(Fixtures.request(1, operation: [UInt8](repeating: 1, count: 100), authenticator: [UInt8](repeating: 2, count: 8)))
        #expect(try Fixtures.decode(Fixtures.bytes(atLimit), limits: small) == atLimit)
        let cases: [(WireMessage, WireError)] = [
            (.request(Fixtures.request(1, operation: [UInt8](repeating: 1, count: 101))), .lengthTooLarge(field: "operation", length: 101, max: 100)),
            (.request(Fixtures.request(1, authenticator: [UInt8](repeating: 1, count: 9))), .lengthTooLarge(field: "request authenticator", length: 9, max: 8)),
            (.reply(Reply(view: View(0), timestamp: Timestamp(0), client: ClientID(0), replica: ReplicaID(0), result: [UInt8](repeating: 0, count: 11))), .lengthTooLarge(field: "result", length: 11, max: 10)),
            (.pbft(.prePrepare(Fixtures.prePrepare), authenticator: []), .lengthTooLarge(field: "batch", length: 3, max: 2)),
            (.pbft(.commit(Fixtures.commit), authenticator: [UInt8](repeating: 0, count: 9)), .lengthTooLarge(field: "authenticator", length: 9, max: 8)),
            (.helloProof(HelloProof(proof: [UInt8](repeating: 0, count: 9))), .lengthTooLarge(field: "hello proof", length: 9, max: 8)),
        ]
        for (message, error) in cases {
            #expect(throws: error) { try Fixtures.decode(Fixtures.bytes(message), limits: small) }
        }
    }

    @Test func payloadLargerThanTheFrameLimitThrows() {
        let bytes = Fixtures.bytes(.helloProof(HelloProof(proof: [UInt8](repeating: 0, count: 100))))
        let limits = Limits(frameBytesMax: 50)
        #expect(throws: WireError.frameTooLarge(length: bytes.count, max: 50)) { try Fixtures.decode(bytes, limits: limits) }
    }

    @Test func unknownVersionThrows() {
        let bytes = Fixtures.bytes(.statusQuery(StatusQuery(nonce: 1)))
        for version: UInt8 in [0, 1, 3, 255] {
            #expect(throws: WireError.unsupportedVersion(version)) { try Fixtures.decode([version] + bytes.dropFirst()) }
        }
    }

    @Test func unknownKindThrows() {
        let known: Set<UInt8> = [0x01, 0x02, 0x03, 0x04, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x40]
        for kind in UInt8.min...UInt8.max where !known.contains(kind) {
            #expect(throws: WireError.unknownMessageKind(kind)) { try Fixtures.decode([2, kind, 0, 0, 0, 0]) }
        }
        // Inside a protocol message: PBFT's kinds are its own (0x10-0x1A), and another protocol's id is refused.
        let pbftKnown = Set(PBFTKind.allCases.map(\.rawValue))
        for kind in UInt8.min...UInt8.max where !pbftKnown.contains(kind) {
            #expect(throws: WireError.unknownMessageKind(kind)) { try Fixtures.decode([2, 0x40, 1, kind, 0, 0, 0, 0]) }
        }
        for id: UInt8 in [0, 2, 255] {
            #expect(throws: WireError.unknownProtocol(id)) { try Fixtures.decode([2, 0x40, id, 0x12, 0, 0, 0, 0]) }
        }
        // A protocol message with nothing after the protocol id is truncated.
        #expect(throws: WireError.truncated) { try Fixtures.decode([2, 0x40, 1]) }
    }

    @Test func unknownPrincipalKindThrows() {
        var bytes = Fixtures.bytes(.hello(Fixtures.hello))
        bytes[2] = 2
        #expect(throws: WireError.unknownPrincipalKind(2)) { try Fixtures.decode(bytes) }
    }

    @Test func nonceOfAnyOtherLengthThrowsInvalidNonce() {
        let head: [UInt8] = [2, 0x01, 0, 0, 0, 0, 1]
        for length: UInt32 in [0, 31, 33, UInt32.max] {
            let bytes = head + Fixtures.bigEndian(length) + [UInt8](repeating: 0, count: 40)
            #expect(throws: WireError.invalidNonce) { try Fixtures.decode(bytes) }
        }
    }

    @Test func goodbyeReasonMustBeValidUTF8AndShort() {
        #expect(throws: WireError.invalidUTF8) { try Fixtures.decode([2, 0x03, 0, 0, 0, 2, 0xFF, 0xFE]) }
        // A scalar cut in half is invalid too.
        #expect(throws: WireError.invalidUTF8) { try Fixtures.decode([2, 0x03, 0, 0, 0, 2, 0xE2, 0x82]) }
        let long = [2, 0x03, 0, 0, 0x02, 0x01] + [UInt8](repeating: 0x61, count: 513)
        #expect(throws: WireError.lengthTooLarge(field: "goodbye reason", length: 513, max: 512)) { try Fixtures.decode(long) }
    }

    @Test func everyErrorHasAOneLineDescription() {
        let errors: [WireError] = [
            .truncated, .trailingBytes(count: 2), .unsupportedVersion(9), .unknownMessageKind(9), .unknownPrincipalKind(9),
            .lengthTooLarge(field: "operation", length: 9, max: 1), .frameTooLarge(length: 9, max: 1), .emptyFrame,
            .invalidNonce, .invalidUTF8, .unknownProtocol(9), .unexpectedMessage,
        ]
        for error in errors {
            #expect(!error.description.isEmpty)
            #expect(!error.description.contains("\n"))
        }
        #expect(Set(errors.map(\.description)).count == errors.count)
    }
}
