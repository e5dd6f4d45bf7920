import ArgumentParser
import ThemisClient
import ThemisCore
import ThemisCrypto
import ThemisReplicaCommand
import ThemisWire

/// `themis status`: one table for the whole cluster, whichever replicas are down.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every replica of a cluster: up or unreachable, view, primary, executed, lag, stable checkpoint, links.")

    @Option(help: "Path of cluster.json.") var config: String
    @Option(help: "The client identity that asks (its key file is client-<id>.key next to cluster.json).") var client: UInt32 = 0
    @Option(help: "Private key file (default: client-<id>.key next to cluster.json).") var key: String?
    @Option(help: "Milliseconds to wait for each replica's answer.") var timeout: Int64 = 1000
    @Flag(help: "Print one JSON object per replica instead of the table.") var json = false

    func run() async throws {
        try await reportingErrors {
            guard (1...60_000).contains(timeout) else { throw ValidationError("--timeout must be 1...60000 ms") }
            let (cluster, keys) = try loadClusterAndKeys(config: config, key: key, principal: .client(ClientID(client)))
            let themis = try ThemisClient(cluster: cluster, id: ClientID(client), keys: keys)
            let replicas = cluster.configuration.replicas
            let reports = await queryAll(themis, replicas: replicas, timeoutMilliseconds: timeout)
            await themis.close()
            let table = StatusTable(cluster: cluster, reports: reports)
            print(json ? table.json : table.text)
            let up = reports.compactMap { $0 }.count
            if up < cluster.configuration.quorumSize {
                throw ValidationError("\(up) of \(replicas.count) replicas answered: fewer than a quorum (\(cluster.configuration.quorumSize)), the cluster cannot order requests")
            }
        }
    }
}

/// Every replica's status report, nil for one that did not answer within the timeout (queried concurrently;
/// a query that fails at once, before the client's link to that replica is up, is repeated until then).
func queryAll(_ client: ThemisClient, replicas: [ReplicaID], timeoutMilliseconds: Int64) async -> [StatusReport?] {
    let deadline = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
    return await withTaskGroup(of: (Int, StatusReport?).self) { group in
        for (index, replica) in replicas.enumerated() {
            group.addTask {
                while true {
                    let now = monotonicNanoseconds()
                    guard now < deadline else { return (index, nil) }
                    if let report = try? await client.status(of: replica, timeoutMilliseconds: Int64((deadline - now) / 1_000_000) + 1) {
                        return (index, report)
                    }
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        var reports = [StatusReport?](repeating: nil, count: replicas.count)
        for await (index, report) in group { reports[index] = report }
        return reports
    }
}

/// The table `themis status` prints: one row per replica (reports in replica-id order, nil = unreachable).
struct StatusTable {
    let cluster: ClusterFile
    let reports: [StatusReport?]

    /// The highest last-executed sequence number among those that answered: lag is measured from it.
    var head: UInt64 { reports.compactMap { $0?.lastExecuted.rawValue }.max() ?? 0 }

    var text: String {
        let configuration = cluster.configuration
        let up = reports.compactMap { $0 }.count
        var lines = ["\(cluster.protocolName) cluster of \(configuration.replicaCount) (f = \(configuration.faultsTolerated)): "
            + "\(up) up, \(configuration.replicaCount - up) unreachable"]
        let header = ["replica", "address", "state", "view", "primary", "executed", "lag", "stable", "links", "peak RSS MiB"]
        var rows: [[String]] = []
        for (index, replica) in cluster.replicas.sorted(by: { $0.id < $1.id }).enumerated() {
            let address = "\(replica.host):\(replica.port)"
            guard index < reports.count, let report = reports[index] else {
                rows.append(["\(replica.id)", address, "unreachable", "-", "-", "-", "-", "-", "-", "-"])
                continue
            }
            rows.append([
                "\(replica.id)", address, "up", "\(report.view.rawValue)", "\(configuration.primary(of: report.view).rawValue)",
                "\(report.lastExecuted.rawValue)", "\(head - min(head, report.lastExecuted.rawValue))",
                "\(report.lastStableCheckpoint.rawValue)", "\(report.connectedReplicas)/\(configuration.replicaCount - 1)",
                report.peakResidentBytes == 0 ? "-" : formatted(Double(report.peakResidentBytes) / 1_048_576, decimals: 1),
            ])
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            var line = row.indices.map { pad(row[$0], widths[$0]) }.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        var lines: [String] = []
        for (index, replica) in cluster.replicas.sorted(by: { $0.id < $1.id }).enumerated() {
            guard index < reports.count, let report = reports[index] else {
                lines.append("{\"replica\":\(replica.id),\"up\":false}")
                continue
            }
            lines.append("{\"replica\":\(replica.id),\"up\":true,\"view\":\(report.view.rawValue),"
                + "\"primary\":\(cluster.configuration.primary(of: report.view).rawValue),\"last_executed\":\(report.lastExecuted.rawValue),"
                + "\"lag\":\(head - min(head, report.lastExecuted.rawValue)),\"stable_checkpoint\":\(report.lastStableCheckpoint.rawValue),"
                + "\"connected_replicas\":\(report.connectedReplicas),\"peak_rss_bytes\":\(report.peakResidentBytes)}")
        }
        return lines.joined(separator: "\n")
    }
}
