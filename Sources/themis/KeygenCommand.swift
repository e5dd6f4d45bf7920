import ArgumentParser
import ThemisCore
import ThemisReplicaCommand
import ThemisCrypto
import ThemisReplica

struct KeygenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a cluster configuration and one private key file per replica and client.")

    @Option(name: .customLong("protocol"), help: "Protocol: pbft (Byzantine fault model, n >= 3f + 1) or hybster (hybrid, n >= 2f + 1, with a trusted counter).") var protocolName = "pbft"
    @Option(help: "Number of replicas (n >= 3f + 1 for pbft, n >= 2f + 1 for hybster).") var replicas = 4
    @Option(help: "Number of clients.") var clients = 8
    @Option(help: "Output directory.") var out: String
    @Option(help: "Port of replica 0; replica i listens on base-port + i.") var basePort = 7000
    @Option(help: "Comma-separated hosts: one for all replicas or one per replica.") var hosts = "127.0.0.1"
    @Option(help: "Authentication: hmac, ed25519, ecdsa or rsa.") var auth = "ed25519"
    @Option(help: "K: sequence numbers between checkpoints.") var checkpointInterval: UInt64 = 1000
    @Option(help: "L: the watermark window (at least K).") var watermarkWindow: UInt64?
    @Option(help: "P: Hybster's parallel ordering instances (pillars), 1 to 64.") var pillars: UInt32 = 1
    @Option(help: "Durable mode: each replica's data directory, written to cluster.json as its dataDir; {id} is replaced by the replica's id (e.g. data/replica-{id}: relative to the directory of cluster.json).") var dataDir: String?

    @Flag(help: "TLS on every link: also write a certificate authority (its certificate into cluster.json, its key to tls-ca.key: keep it offline) and replica-<id>.tls.pem per replica (a certificate for its host and the private key).") var tls = false

    @Flag(help: "PBFT's tentative execution: a replica executes a batch once it prepared and replies at once, marked tentative; clients accept 2f + 1 matching tentative replies. A reply saves the COMMIT round; a view change undoes what did not commit.") var tentativeExecution = false

    func run() async throws {
        try await reportingErrors {
            guard let scheme = AuthenticationScheme(deployable: auth) else {
                throw ValidationError("--auth must be one of hmac, ed25519, ecdsa, rsa (got \(auth))")
            }
            var settings = ProtocolSettings(checkpointInterval: checkpointInterval,
                                            watermarkWindow: watermarkWindow ?? 2 * checkpointInterval)
            settings.pillars = pillars
            settings.tentativeExecution = tentativeExecution
            if let problem = settings.problem { throw ValidationError(problem) }
            let hostList = hosts.split(separator: ",").map(String.init)
            let plugin = try ProtocolCatalog.plugin(named: protocolName, source: "\(out)/cluster.json")
            var cluster = try KeyGeneration.writeCluster(
                directory: out, replicas: replicas, clients: clients, hosts: hostList, basePort: basePort,
                scheme: scheme, plugin: plugin, settings: settings, dataDirectory: dataDir)
            if tls { cluster = try TLSCertificates.issue(directory: out, cluster: cluster) }
            print("wrote \(out)/cluster.json, \(replicas) replica keys and \(clients) client keys (\(cluster.protocolName), "
                + "\(cluster.faultModel.rawValue) fault model, f = \(cluster.configuration.faultsTolerated), \(scheme.rawValue))"
                + (dataDir.map { "\ndurable mode: every replica keeps its log and snapshots in its dataDir \($0) ({id}: its id; a relative path is relative to \(out))" } ?? "")
                + (tls ? "\nTLS: wrote replica-<id>.tls.pem per replica (its certificate and key: copy it to that replica's host only) and tls-ca.key (the authority's key: keep it offline; nothing running needs it)" : "")
                + (cluster.faultModel == .hybrid ? "\nwrote \(out)/trusted-subsystem.key: the key of the replicas' trusted subsystems (software counters: not tamper-proof)" : ""))
            if cluster.limits.frameBytesMax != Limits().frameBytesMax {
                print("frameBytesMax is \(cluster.limits.frameBytesMax) bytes: the largest VIEW-CHANGE or NEW-VIEW of n = \(replicas), "
                    + "L = \(settings.watermarkWindow) with \(scheme.rawValue) needs more than the default \(Limits().frameBytesMax)")
            }
        }
    }
}
