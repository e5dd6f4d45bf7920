// Proves the command-line contract scripts rely on: `themis kv` prints OK / the value / (nil) with exit
// status 0, reusing one client id across separate processes still orders every request exactly once, and
// wrong input (bad config path, unknown command) gives a one-line error and a non-zero status.
import Foundation
import Testing
import ThemisCrypto
import ThemisReplica

/// Runs the themis binary and returns (status, stdout, stderr).
func themis(_ arguments: [String]) throws -> (Int32, String, String) {
    try runToExit(try ReplicaProcesses.themisBinary(), arguments)
}

/// Runs `binary` to its exit and returns (status, stdout, stderr).
func runToExit(_ binary: String, _ arguments: [String]) throws -> (Int32, String, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    let output = Pipe()
    let error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

extension IntegrationSuite {
@Suite("Command line")
struct CommandLineTests {
    @Test("themis demo --down 2 runs without a replica (f = 1), says so, injects no crash and ends CONSISTENT; two down is refused")
    func demoWithAReplicaDown() throws {
        let (status, out, err) = try themis(["demo", "--down", "2", "--operations", "200", "--clients", "4", "--auth", "hmac"])
        #expect(status == 0, "stdout: \(out) stderr: \(err)")
        #expect(out.contains("down: replica 2 (left down with --down); no crash injected"), "\(out)")
        #expect(out.contains("verdict: CONSISTENT") && !out.contains("view change:"), "\(out)")
        #expect(!out.contains("replica 2: view"), "replica 2 is not compared: \(out)")
        let (refused, _, refusal) = try themis(["demo", "--down", "1,2", "--operations", "10"])
        #expect(refused != 0 && refusal.contains("more than f = 1"), "\(refusal)")
    }

    @Test("themis kv put/get/del from separate processes reusing one client id")
    func kvAcrossProcesses() async throws {
        let processes = try ReplicaProcesses()
        defer { processes.stopAll() }
        let group = NIOSingleThreaded.group
        let probe = try processes.client(5, group: group)
        try await processes.waitUntilReady(probe)
        await probe.close()
        let config = processes.directory + "/cluster.json"
        func kv(_ words: String...) throws -> (Int32, String) {
            let (status, out, err) = try themis(["kv", "--config", config, "--client", "3"] + words)
            return (status, status == 0 ? out : err)
        }
        #expect(try kv("get", "color") == (0, "(nil)\n"))
        #expect(try kv("put", "color", "blue") == (0, "OK\n"))
        #expect(try kv("get", "color") == (0, "blue\n"))
        #expect(try kv("put", "color", "green") == (0, "OK\n"))
        #expect(try kv("get", "color") == (0, "green\n"))
        #expect(try kv("del", "color") == (0, "OK\n"))
        #expect(try kv("get", "color") == (0, "(nil)\n"))
    }

    @Test("Wrong input gives a one-line error and a non-zero exit status")
    func errorsAreOneLine() throws {
        let (status, _, err) = try themis(["kv", "--config", "/nonexistent/cluster.json", "--client", "0", "get", "x"])
        #expect(status != 0)
        #expect(err.contains("/nonexistent/cluster.json"))
        #expect(err.split(separator: "\n").count == 1, "stderr was: \(err)")
        let (badStatus, _, _) = try themis(["kv", "--config", "/nonexistent/cluster.json", "--client", "0", "frobnicate"])
        #expect(badStatus != 0)
    }

    @Test("keygen writes the protocol and its fault model; an unknown protocol or the simulator-only scheme is a one-line error")
    func keygenProtocolAndScheme() throws {
        let out = NSTemporaryDirectory() + "themis-keygen-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, text, error) = try themis(["keygen", "--protocol", "pbft", "--replicas", "4", "--clients", "1", "--auth", "hmac", "--out", out])
        #expect(status == 0, "stderr: \(error)")
        #expect(text.contains("pbft, byzantine fault model, f = 1"), "\(text)")
        let cluster = try ClusterFile.load(path: out + "/cluster.json")
        #expect(cluster.protocolName == "pbft" && cluster.faultModel == .byzantine)
        for (flag, value, expected) in [("--protocol", "raft", "unknown protocol \"raft\""), ("--auth", "simulated-insecure", "--auth must be one of")] {
            let (bad, _, badError) = try themis(["keygen", flag, value, "--out", out + "-bad"])
            #expect(bad != 0 && badError.contains(expected) && badError.split(separator: "\n").count == 1, "stderr: \(badError)")
            #expect(!FileManager.default.fileExists(atPath: out + "-bad/cluster.json"))
        }
    }

    @Test("keygen --protocol hybster writes the hybrid fault model and the trusted subsystems' key; a Hybster replica without that key, or with a corrupt counter file, stops with a one-line error")
    func keygenHybster() throws {
        let out = NSTemporaryDirectory() + "themis-keygen-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (status, text, error) = try themis(["keygen", "--protocol", "hybster", "--replicas", "3", "--clients", "1", "--auth", "hmac", "--out", out])
        #expect(status == 0, "stderr: \(error)")
        #expect(text.contains("hybster, hybrid fault model, f = 1"), "\(text)")
        #expect(try ClusterFile.load(path: out + "/cluster.json").faultModel == .hybrid)
        #expect(FileManager.default.fileExists(atPath: out + "/trusted-subsystem.key"))
        // A corrupt counter file: refusing to start beats starting from 0 (which could reuse values).
        _ = FileManager.default.createFile(atPath: out + "/replica-1.counters.0", contents: Data("garbage".utf8))
        let (corrupt, _, corruptError) = try themis(["replica", "--config", out + "/cluster.json", "--id", "1"])
        #expect(corrupt != 0 && corruptError.contains("corrupt") && corruptError.split(separator: "\n").count == 1, "stderr: \(corruptError)")
        try FileManager.default.removeItem(atPath: out + "/trusted-subsystem.key")
        let (bad, _, badError) = try themis(["replica", "--config", out + "/cluster.json", "--id", "0"])
        #expect(bad != 0 && badError.contains("trusted-subsystem.key") && badError.split(separator: "\n").count == 1, "stderr: \(badError)")
    }

    @Test("themis bounds prints every message kind and a memory bound that grows with the window; a bad flag is a clear error")
    func bounds() throws {
        let directory = NSTemporaryDirectory() + "themis-bounds-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var totals: [Int] = []
        for interval in ["50", "500"] {
            let out = directory + "-" + interval
            defer { try? FileManager.default.removeItem(atPath: out) }
            let (keygen, _, keygenError) = try themis(["keygen", "--replicas", "4", "--clients", "3", "--auth", "hmac", "--out", out,
                                                      "--checkpoint-interval", interval])
            #expect(keygen == 0, "stderr: \(keygenError)")
            let (status, text, error) = try themis(["bounds", "--config", out + "/cluster.json"])
            #expect(status == 0, "stderr: \(error)")
            for kind in ["prePrepare", "viewChange", "newView", "committedBatches", "stateChunk", "request", "reply"] {
                #expect(text.contains("  \(kind) "), "\(kind) missing from: \(text)")
            }
            let cluster = try ClusterFile.load(path: out + "/cluster.json")
            let bound = try ReplicaMemoryBound(cluster: cluster)
            #expect(text.contains("total              \(ReplicaMemoryBound.mebibytes(bound.total))"), "\(text)")
            totals.append(bound.total)
        }
        #expect(totals[1] > totals[0])
        let (bad, _, badError) = try themis(["bounds", "--config", "/nonexistent/cluster.json"])
        #expect(bad != 0 && !badError.isEmpty)
    }
}
}
