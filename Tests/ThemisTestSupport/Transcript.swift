// The protocol-neutral transcript harness (etcd raft's data-driven tests): a transcript is a list of commands,
// each followed by "----" and the output it must print; comment lines start with "#". A protocol's tests give
// a `TranscriptRunning` type that interprets its command set (PBFT: Tests/ThemisPBFTTests/Transcript.swift);
// the parsing, the comparison (a mismatch names its file and line) and the rewrite (THEMIS_REWRITE=1) are here.
import Foundation

/// Interprets a protocol's transcript commands and returns what each printed.
public protocol TranscriptRunning {
    init()
    mutating func run(_ command: String) -> String
}

public enum Transcript {
    /// Runs every command of a transcript with a fresh `runner`; returns a message per block whose output
    /// differs from the recorded one, and the transcript with the outputs the commands printed.
    public static func check<Runner: TranscriptRunning>(_ text: String, file: String, runner: Runner.Type)
        throws -> (mismatches: [String], rewritten: String) {
        var runner = Runner()
        var mismatches: [String] = []
        var rewritten = ""
        for block in try TranscriptBlock.parse(text, file: file) {
            let output = runner.run(block.command)
            if output != block.expected {
                mismatches.append("\(file):\(block.line): \(block.command)\n--- expected\n\(block.expected)--- printed\n\(output)")
            }
            rewritten += block.leading + block.command + "\n----\n" + output + "\n"
        }
        return (mismatches, rewritten.trimmingCharacters(in: .newlines) + "\n")
    }

    /// The `.txt` files of a directory, sorted.
    public static func files(in directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
    }

    /// True when the transcripts should be rewritten with what their commands printed (THEMIS_REWRITE=1).
    public static var rewriting: Bool { ProcessInfo.processInfo.environment["THEMIS_REWRITE"] == "1" }
}

/// One command with the comment lines before it and the output recorded after it.
public struct TranscriptBlock {
    public var leading: String
    public var command: String
    public var expected: String
    public var line: Int

    public static func parse(_ text: String, file: String) throws -> [TranscriptBlock] {
        var blocks: [TranscriptBlock] = []
        var leading = ""
        let lines = text.components(separatedBy: "\n")
        var index = 0
        while index < lines.count {
            let line = lines[index]
            if line.hasPrefix("#") {
                leading += line + "\n"
                index += 1
                continue
            }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { index += 1; continue }
            guard index + 1 < lines.count, lines[index + 1] == "----" else {
                throw TranscriptError("\(file):\(index + 1): a command must be followed by a line \"----\"")
            }
            var expected = ""
            var cursor = index + 2
            while cursor < lines.count, !lines[cursor].isEmpty {
                expected += lines[cursor] + "\n"
                cursor += 1
            }
            blocks.append(TranscriptBlock(leading: leading, command: line, expected: expected, line: index + 1))
            leading = ""
            index = cursor
        }
        return blocks
    }
}

public struct TranscriptError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

