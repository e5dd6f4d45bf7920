import ArgumentParser
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisReplicaCommand
import ThemisCrypto

struct KVCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv", abstract: "Key-value client: put KEY VALUE | get KEY | del KEY.")

    @Option(help: "Path of cluster.json.") var config: String
    @Option(help: "Client id.") var client: UInt32
    @Option(help: "Private key file (default: client-<id>.key next to cluster.json).") var key: String?
    @Option(help: "Seconds to wait for f+1 matching replies.") var timeout = 10.0
    @Flag(help: "Order a get like a write (by default a get is a read-only request: answered by every replica from its state, and ordered only if their answers differ or one does not answer).") var ordered = false
    @Argument(help: "put KEY VALUE, get KEY or del KEY.") var words: [String]

    func run() async throws {
        try await reportingErrors {
            let operation = try parseOperation()
            let (cluster, keys) = try loadClusterAndKeys(config: config, key: key, principal: .client(ClientID(client)))
            var options = ThemisClient.Options()
            options.deadlineMilliseconds = Int64(timeout * 1000)
            let themis = try ThemisClient(cluster: cluster, id: ClientID(client), keys: keys, options: options)
            let result: KeyValueResult
            do {
                let readOnly: Bool
                if case .get = operation { readOnly = !ordered } else { readOnly = false }
                let bytes = readOnly ? try await themis.invokeReadOnly(operation.encoded()) : try await themis.invoke(operation.encoded())
                result = try KeyValueResult(decoding: bytes)
            } catch {
                await themis.close()
                throw error
            }
            await themis.close()
            switch result {
            case .ok: print("OK")
            case .value(let value): print(value.map { String(decoding: $0, as: UTF8.self) } ?? "(nil)")
            case .error(let message): throw ValidationError("the store refused the operation: \(message)")
            }
        }
    }

    func parseOperation() throws -> KeyValueOperation {
        switch (words.first, words.count) {
        case ("put", 3): return .put(key: words[1], value: Array(words[2].utf8))
        case ("get", 2): return .get(key: words[1])
        case ("del", 2): return .delete(key: words[1])
        default: throw ValidationError("expected put KEY VALUE, get KEY or del KEY")
        }
    }
}
