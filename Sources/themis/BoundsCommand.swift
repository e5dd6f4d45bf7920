import ArgumentParser
import ThemisCore
import ThemisCrypto
import ThemisReplica
import ThemisReplicaCommand
import ThemisWire

/// `themis bounds --config cluster.json`: the largest message of every kind and the memory bound of a
/// replica, computed from the cluster file (issue 9).
struct BoundsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bounds",
        abstract: "Print the largest message of every kind and a replica's memory bound for a cluster file.")

    @Option(help: "Path of cluster.json.") var config: String
    @Option(help: "Largest application state in bytes (default: the cluster's stateBytesMax).") var stateBytes: Int?

    func run() async throws {
        try await reportingErrors {
            let cluster = try ClusterFile.load(path: config)
            let validated = try cluster.validated(source: config)
            if let stateBytes, stateBytes < 0 || stateBytes > cluster.limits.stateBytesMax {
                throw ValidationError("--state-bytes must be 0...\(cluster.limits.stateBytesMax) (the cluster's stateBytesMax)")
            }
            let sizes = cluster.authentication.authenticatorSizes(replicaCount: validated.configuration.replicaCount)
            let plugin = try ProtocolCatalog.plugin(named: cluster.protocolName, source: config)
            _ = try validated.checked(for: plugin)
            let messages = MessageBounds(limits: cluster.limits, authenticators: sizes).all + plugin.messageBounds(
                configuration: validated.configuration, settings: cluster.settings, limits: cluster.limits, authenticators: sizes)
            print("largest payload per message kind (frameBytesMax \(cluster.limits.frameBytesMax)):")
            for bound in messages {
                print("  \(pad(bound.kind, 18)) \(bound.payloadBytes)")
            }
            let memory = try ReplicaMemoryBound(cluster: cluster, stateBytes: stateBytes)
            print("replica memory bound (n = \(validated.configuration.replicaCount), \(cluster.clients.count) clients, "
                + "K = \(cluster.settings.checkpointInterval), L = \(cluster.settings.watermarkWindow)):")
            for part in memory.parts {
                print("  \(pad(part.name, 18)) \(ReplicaMemoryBound.mebibytes(part.bytes))")
            }
            print("  core, by part:    " + memory.core.parts.map { "\($0.name) \(ReplicaMemoryBound.mebibytes($0.bytes))" }.joined(separator: ", "))
            print("  total              \(ReplicaMemoryBound.mebibytes(memory.total))")
        }
    }
}
