// Proves that key-value operations and results round-trip through their binary encoding and that every
// malformed or out-of-bound encoding is refused with a typed error, by encoding, decoding and corrupting
// examples of each case.
import Testing
import ThemisApps

@Suite struct KeyValueEncodingTests {
    static let operations: [KeyValueOperation] = [
        .put(key: "x", value: [1, 2, 3]), .put(key: "", value: []), .put(key: "ключ🔑", value: [UInt8](repeating: 9, count: 65_536)),
        .get(key: "x"), .get(key: String(repeating: "k", count: 1024)), .delete(key: "x"),
    ]

    @Test(arguments: operations)
    func operationsRoundTrip(operation: KeyValueOperation) throws {
        #expect(try KeyValueOperation(decoding: operation.encoded()) == operation)
    }

    @Test(arguments: [KeyValueResult.ok, .value(nil), .value([]), .value([0, 255]), .error("malformed"), .error("")])
    func resultsRoundTrip(result: KeyValueResult) throws {
        #expect(try KeyValueResult(decoding: result.encoded()) == result)
    }

    @Test func theEncodingIsCompact() {
        #expect(KeyValueOperation.put(key: "ab", value: [7]).encoded() == [1, 0, 2, 97, 98, 0, 0, 0, 1, 7])
        #expect(KeyValueOperation.get(key: "ab").encoded() == [2, 0, 2, 97, 98])
        #expect(KeyValueOperation.delete(key: "").encoded() == [3, 0, 0])
        #expect(KeyValueResult.value([5]).encoded() == [1, 0, 0, 0, 1, 5])
    }

    @Test func malformedOperationsAreTyped() {
        #expect(throws: KeyValueError.empty) { try KeyValueOperation(decoding: []) }
        #expect(throws: KeyValueError.unknownTag(9)) { try KeyValueOperation(decoding: [9, 0, 0]) }
        #expect(throws: KeyValueError.truncated) { try KeyValueOperation(decoding: [2, 0]) }
        #expect(throws: KeyValueError.truncated) { try KeyValueOperation(decoding: [2, 0, 5, 97]) }
        #expect(throws: KeyValueError.truncated) { try KeyValueOperation(decoding: [1, 0, 1, 97, 0, 0, 0, 2, 1]) }
        #expect(throws: KeyValueError.trailingBytes(1)) { try KeyValueOperation(decoding: [2, 0, 1, 97, 0]) }
        #expect(throws: KeyValueError.invalidUTF8) { try KeyValueOperation(decoding: [2, 0, 1, 0xFF]) }
        #expect(throws: KeyValueError.keyTooLong(1025)) {
            try KeyValueOperation(decoding: KeyValueOperation.get(key: String(repeating: "k", count: 1025)).encoded())
        }
        #expect(throws: KeyValueError.valueTooLarge(65_537)) {
            try KeyValueOperation(decoding: KeyValueOperation.put(key: "k", value: [UInt8](repeating: 0, count: 65_537)).encoded())
        }
        // A huge declared length with few bytes behind it is refused before anything is allocated.
        #expect(throws: KeyValueError.valueTooLarge(Int(UInt32.max))) {
            try KeyValueOperation(decoding: [1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF])
        }
    }

    @Test func malformedResultsAreTyped() {
        #expect(throws: KeyValueError.empty) { try KeyValueResult(decoding: []) }
        #expect(throws: KeyValueError.unknownTag(4)) { try KeyValueResult(decoding: [4]) }
        #expect(throws: KeyValueError.trailingBytes(1)) { try KeyValueResult(decoding: [0, 0]) }
        #expect(throws: KeyValueError.truncated) { try KeyValueResult(decoding: [1, 0, 0, 0, 3, 1]) }
        #expect(throws: KeyValueError.truncated) { try KeyValueResult(decoding: [3, 0, 0, 0xFF, 0xFF]) }
        #expect(throws: KeyValueError.invalidUTF8) { try KeyValueResult(decoding: [3, 0, 0, 0, 1, 0xC3]) }
    }
}
