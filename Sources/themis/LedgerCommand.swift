import ArgumentParser
import ThemisApps
import ThemisClient
import ThemisCore
import ThemisCrypto
import ThemisReplicaCommand
import ThemisWire

/// `themis ledger`: the client of the hash-chained ledger (`themis replica --app ledger`, `Ledger`).
struct LedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Ledger client: append TEXT | get FROM [COUNT] | head | verify.",
        discussion: """
            append TEXT      appends an entry; prints its block index and hash
            get FROM [COUNT] prints blocks FROM, FROM+1, ... (at most COUNT, default 10): index, client, hash, entry
            head             prints the height (number of blocks) and the last block's hash
            verify           reads the whole chain (f+1 matching replies per range), checks every hash and link from
                             block 0 to the head, then asks every replica for its state digest and checks that
                             each one is the digest of a snapshot of exactly this chain; exits non-zero if the chain
                             is broken or a replica's state differs or does not answer
            """)

    @Option(help: "Path of cluster.json.") var config: String
    @Option(help: "Client id.") var client: UInt32
    @Option(help: "Private key file (default: client-<id>.key next to cluster.json).") var key: String?
    @Option(help: "Seconds to wait for f+1 matching replies.") var timeout = 10.0
    @Argument(help: "append TEXT, get FROM [COUNT], head or verify.") var words: [String]

    func run() async throws {
        try await reportingErrors {
            let (cluster, keys) = try loadClusterAndKeys(config: config, key: key, principal: .client(ClientID(client)))
            var options = ThemisClient.Options()
            options.deadlineMilliseconds = Int64(timeout * 1000)
            let themis = try ThemisClient(cluster: cluster, id: ClientID(client), keys: keys, options: options)
            do {
                try await perform(themis, cluster: cluster)
            } catch {
                await themis.close()
                throw error
            }
            await themis.close()
        }
    }

    func perform(_ themis: ThemisClient, cluster: ClusterFile) async throws {
        switch (words.first, words.count) {
        case ("append", 2):
            guard case .appended(let index, let hash) = try await invoke(themis, .append(Array(words[1].utf8))) else { return }
            print("block \(index) \(hash.hex)")
        case ("get", 2), ("get", 3):
            guard let from = UInt64(words[1]), let count = words.count == 3 ? UInt32(words[2]) : 10 else {
                throw ValidationError("get FROM [COUNT]: FROM and COUNT are numbers")
            }
            guard case .blocks(let blocks) = try await invoke(themis, .get(from: from, count: count), readOnly: true) else { return }
            for block in blocks {
                // Entries are client data: control characters are shown as `?`, never sent to the terminal.
                let text = String(decoding: block.entry, as: UTF8.self).unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : String($0) }.joined()
                print("\(block.index)  client \(block.client.rawValue)  \(block.hash.hex)  \(text)")
            }
        case ("head", 1):
            guard case .head(let height, let hash) = try await invoke(themis, .head, readOnly: true) else { return }
            print("height \(height) head \(hash.hex)")
        case ("verify", 1):
            guard try await verify(themis, cluster: cluster) else { throw ExitCode.failure }
        default:
            throw ValidationError("expected append TEXT, get FROM [COUNT], head or verify")
        }
    }

    /// One operation; a refusal by the ledger is an error.
    func invoke(_ themis: ThemisClient, _ operation: Ledger.Operation, readOnly: Bool = false) async throws -> Ledger.Result {
        let bytes = readOnly ? try await themis.invokeReadOnly(operation.encoded()) : try await themis.invoke(operation.encoded())
        let result = try Ledger.Result(decoding: bytes)
        if case .error(let message) = result { throw ValidationError("the ledger refused the operation: \(message)") }
        return result
    }

    /// Reads and checks the whole chain, then compares every replica's state digest with the digest of its
    /// snapshot. Appends running meanwhile move the head: the check is tried again (3 times at most).
    func verify(_ themis: ThemisClient, cluster: ClusterFile) async throws -> Bool {
        var attempt = 0
        while true {
            attempt += 1
            guard case .head(let height, let headHash) = try await invoke(themis, .head) else { return false }
            var blocks: [Ledger.Block] = []
            while UInt64(blocks.count) < height {
                guard case .blocks(let range) = try await invoke(themis, .get(from: UInt64(blocks.count), count: UInt32(Ledger.blocksPerGetMax)), readOnly: true),
                    !range.isEmpty
                else { break }
                blocks += range
            }
            blocks = Array(blocks.prefix(Int(clamping: height)))
            if let broken = Ledger.firstBreak(in: blocks) {
                print("ledger: the chain breaks at block \(broken) of \(height)")
                return false
            }
            guard UInt64(blocks.count) == height, (blocks.last?.hash ?? .zero) == headHash else {
                print("ledger: read \(blocks.count) blocks, but the head says \(height) blocks ending in \(headHash.hex)")
                return false
            }
            // The same chain rebuilt here from the entries alone: its snapshot is what every replica must hold.
            var ledger = Ledger()
            for block in blocks { _ = ledger.apply(.append(block.entry), from: block.client) }
            guard ledger.headHash == headHash else {
                print("ledger: the entries rebuild a chain whose head is \(ledger.headHash.hex), not \(headHash.hex)")
                return false
            }
            let digest = Digest.of(ledger.snapshotBytes())
            print("ledger: \(height) blocks, head \(headHash.hex), every hash and link checked")
            var differing: [String] = []
            var unreachable: [String] = []
            var lines: [String] = []
            for replica in cluster.configuration.replicas {
                var report: StatusReport?
                // A replica may still be executing the last appends: ask again for up to 2 s.
                for _ in 0..<20 {
                    report = try? await themis.status(of: replica, timeoutMilliseconds: 1_000)
                    if report?.applicationDigest == digest || report == nil { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                guard let report else {
                    unreachable.append("replica \(replica.rawValue) unreachable")
                    lines.append("replica \(replica.rawValue): unreachable")
                    continue
                }
                if report.applicationDigest == digest {
                    lines.append("replica \(replica.rawValue): its state is this chain (digest \(digest.description), executed \(report.lastExecuted.rawValue))")
                } else {
                    differing.append("replica \(replica.rawValue) differs")
                    lines.append("replica \(replica.rawValue): its state differs (digest \(report.applicationDigest.description), executed \(report.lastExecuted.rawValue))")
                }
            }
            if !differing.isEmpty, attempt < 3 {
                print("ledger: \(differing.joined(separator: ", ")); the head may have moved, checking again")
                continue
            }
            lines.forEach { print($0) }
            differing += unreachable
            if differing.isEmpty {
                print("verdict: OK, all \(cluster.configuration.replicas.count) replicas hold this chain of \(height) blocks")
                return true
            }
            print("verdict: FAILED, \(differing.joined(separator: ", "))")
            return false
        }
    }
}
