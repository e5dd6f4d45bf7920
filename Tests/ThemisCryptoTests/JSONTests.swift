// Proves that the Foundation-free JSON (ThemisCrypto/JSON.swift) agrees with Foundation's where both accept
// the input: the canonical encoding is byte for byte JSONEncoder's (.sortedKeys, .withoutEscapingSlashes),
// so cluster tags do not change; decoding gives the same files; and that it rejects what is not JSON with
// the line and column of the problem. Base64 likewise against Foundation's.
import Foundation
import Testing
import ThemisCore
@testable import ThemisCrypto

@Suite struct JSONTests {
    static func foundationCanonical(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// Every shape a cluster file takes: each scheme, Hybster with pillars, data directories, edited limits.
    static var clusterFiles: [ClusterFile] {
        var files = AuthenticationScheme.allCases.filter { $0 != .simulatedInsecure }.map { TestCluster(scheme: $0).file }
        var hybster = TestCluster(scheme: .hmac).file
        hybster.protocolName = "hybster"
        hybster.faultModel = .hybrid
        hybster.settings.pillars = 4
        files.append(hybster)
        var durable = TestCluster(scheme: .ed25519, replicas: 7, clients: 5).file
        for index in durable.replicas.indices {
            durable.replicas[index].dataDir = "data/replica \(index)/\"quoted\"\\é\t"
            durable.replicas[index].host = "host-\(index).example.org"
        }
        durable.limits.stateBytesMax = 1 << 40
        durable.settings.checkpointInterval = 128
        files.append(durable)
        return files
    }

    @Test("The canonical encoding is JSONEncoder's, byte for byte, so every cluster tag is unchanged")
    func canonicalEncodingMatchesFoundation() throws {
        for file in Self.clusterFiles {
            let ours = try JSON.canonical(file)
            #expect(ours == (try Self.foundationCanonical(file)))
            var tag: UInt64 = 0
            for byte in Digest.of(ours).bytes.prefix(8) {  // SHA-256, recomputed apart from clusterTag
                tag = tag << 8 | UInt64(byte)
            }
            #expect(tag == file.clusterTag)
        }
        // Key order (UTF-8 bytes: upper case first), escapes, non-ASCII as is, '/' not escaped.
        let tricky = ["b": 1, "B": 2, "a10": 3, "a9": 4, "_x": 5, "Z": 6, "aB": 7, "ab": 8, "é": 9,
                      "s/\u{1}\n\r\u{8}\u{c}\u{7f}é\"\\\t": 10, "": 11]
        #expect(try JSON.canonical(tricky) == (try Self.foundationCanonical(tricky)))
        let nested: [String: [[String: [Int]]]] = ["x": [["b": [1, -2], "a": []], [:]], "y": []]
        #expect(try JSON.canonical(nested) == (try Self.foundationCanonical(nested)))
        #expect(try JSON.canonical([UInt64.max, 0]) == Array("[18446744073709551615,0]".utf8))
        #expect(try JSON.canonical([Int64.min]) == Array("[-9223372036854775808]".utf8))
        #expect(try JSON.canonical([true, false]) == Array("[true,false]".utf8))
        #expect(throws: EncodingError.self) { try JSON.canonical([1.5]) }
    }

    @Test("Decoding gives what JSONDecoder gives, for the pretty files keygen writes and the compact form")
    func decodingMatchesFoundation() throws {
        for file in Self.clusterFiles {
            for text in [file.json, try JSON.canonical(file)] {
                let ours = try JSON.decode(ClusterFile.self, from: text)
                #expect(ours == (try JSONDecoder().decode(ClusterFile.self, from: Data(text))))
                #expect(ours == file)
            }
        }
        #expect(try JSON.decode([String: String].self, from: Array(#"{"a\u00e9\ud83d\ude00\/\n":"\"x\""}"#.utf8))
            == ["aé😀/\n": "\"x\""])
        #expect(try JSON.decode([Int?].self, from: Array(" [ 1 , null ,-0 ] ".utf8)) == [1, nil, 0])
        #expect(try JSON.decode([Double].self, from: Array("[1.5e3, -0.25, 0]".utf8)) == [1500, -0.25, 0])
    }

    @Test("Text that is not JSON is rejected with the line and column of the problem")
    func syntaxErrorsNameWhere() throws {
        let cases: [(String, Int, Int, String)] = [
            ("", 1, 1, "the text ends where a value should be"),
            ("{ \"a\": 1, }", 1, 11, "expected a key in double quotes"),
            ("{\n  \"a\": 1\n  \"b\": 2\n}", 3, 3, "expected ',' or '}'"),
            ("{\"a\": 1, \"a\": 2}", 1, 10, "the key \"a\" appears twice"),
            ("[1, 2] x", 1, 8, "text after the end of the value"),
            ("[01]", 1, 3, "expected ',' or ']'"),
            ("[1.]", 1, 4, "expected a digit after '.'"),
            ("[1e]", 1, 4, "expected a digit in the exponent"),
            ("[-]", 1, 3, "expected a digit"),
            ("[tru]", 1, 2, "expected a value"),
            ("[\"a\u{1}\"]", 1, 4, "a control character in a string (escape it)"),
            ("[\"\\x\"]", 1, 4, "an unknown escape in a string"),
            ("[\"\\ud800\"]", 1, 9, "a \\u escape of a lone surrogate"),
            ("[\"\\u12\"]", 1, 7, "a \\u escape needs four hexadecimal digits"),
            ("[\"abc", 1, 6, "a string is not closed"),
            (String(repeating: "[", count: 65) + String(repeating: "]", count: 65), 1, 65, "nested deeper than 64 levels"),
        ]
        for (text, line, column, problem) in cases {
            #expect(throws: JSON.SyntaxError(line: line, column: column, problem: problem), "\(text)") {
                try JSON.parse(Array(text.utf8))
            }
        }
        #expect(throws: JSON.SyntaxError(line: 1, column: 5, problem: "a string that is not UTF-8")) {
            try JSON.parse([UInt8(ascii: "\""), 0x61, 0xC3, 0x28, UInt8(ascii: "\"")])
        }
        // 64 levels are accepted.
        _ = try JSON.parse(Array((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8))
    }

    @Test("Shape errors name the field as before: wrong type, null, missing, out of range")
    func shapeErrorsNameTheField() throws {
        var text = String(decoding: TestCluster(scheme: .hmac).file.json, as: UTF8.self)
        text = text.replacingOccurrences(of: "\"port\" : 7002", with: "\"port\" : null")
        #expect(throws: ConfigurationError.malformedJSON(file: "cluster.json", field: "replicas[2].port", reason: "expected an integer, found null")) {
            try ClusterFile.decode(json: Array(text.utf8))
        }
        var range = String(decoding: TestCluster(scheme: .hmac).file.json, as: UTF8.self)
        range = range.replacingOccurrences(of: "\"id\" : 1,", with: "\"id\" : 4294967296,")
        #expect(throws: ConfigurationError.malformedJSON(file: "cluster.json", field: "replicas[1].id",
                                                         reason: "4294967296 is not an integer from 0 to 4294967295")) {
            try ClusterFile.decode(json: Array(range.utf8))
        }
        #expect(throws: ConfigurationError.malformedJSON(file: "cluster.json", field: nil, reason: "not valid JSON (line 1, column 2: expected a key in double quotes)")) {
            try ClusterFile.decode(json: Array("{,}".utf8))
        }
    }

    @Test("Base64 agrees with Foundation's both ways, and rejects what Foundation rejects")
    func base64MatchesFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = Base64.encode(bytes)
            #expect(text == Data(bytes).base64EncodedString())
            #expect(try Base64.decode(text) == bytes)
        }
        for bad in ["A", "AB", "ABC", "A===", "AB\nC", "AB CD", "ABC*", "QUJD\n", "AB==AB=="] {
            #expect(Data(base64Encoded: bad) == nil, "Foundation accepts \(bad)")
            #expect(throws: FieldProblem.invalidBase64, "\(bad)") { try Base64.decode(bad) }
        }
        // Stricter than Foundation, which decodes these two to [0, 2] and [0]: padding only at the end.
        for bad in ["AB=C", "===="] {
            #expect(throws: FieldProblem.invalidBase64, "\(bad)") { try Base64.decode(bad) }
        }
    }
}
