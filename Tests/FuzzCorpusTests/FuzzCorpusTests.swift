// Replays the fuzz corpus in git (Fuzz/corpus/TARGET/*: the seeds, and any input a fuzzing run found and
// someone added as a regression) through the fuzz targets, so `swift test` keeps them passing without
// libFuzzer. scripts/fuzz.sh runs the same targets under libFuzzer.
import Foundation
import Testing
import ThemisFuzzTargets

@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    static func inputs(of target: FuzzTarget) throws -> [(name: String, bytes: [UInt8])] {
        let folder = corpus.appendingPathComponent(target.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { name in (name, Array(try Data(contentsOf: folder.appendingPathComponent(name)))) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func corpusPasses(target: FuzzTarget) throws {
        let inputs = try Self.inputs(of: target)
        #expect(!inputs.isEmpty, "no corpus for \(target.rawValue)")
        for input in inputs {
            do {
                try target.run(input.bytes)
            } catch {
                Issue.record("\(target.rawValue)/\(input.name): \(error)")
            }
        }
    }

    /// Every corpus input also goes through the byte-level targets: a core record stream and a
    /// client session are byte streams a peer could send too.
    @Test func everyInputThroughTheWireTargets() throws {
        for target in FuzzTarget.allCases {
            for input in try Self.inputs(of: target) {
                try FuzzTarget.frame.run(input.bytes)
                try FuzzTarget.message.run(input.bytes)
            }
        }
    }
}
