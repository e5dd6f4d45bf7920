import ThemisCore
import ThemisCrypto
import ThemisWire

/// The most memory a replica process of a cluster can hold, whatever its peers, its clients and strangers
/// on its port send (issue 9): a formula of the cluster file, part by part. `themis bounds` prints it.
///
/// - process: the binary, the Swift runtime, NIO and crypto when idle (measured 21-25 MiB RSS here with
///   the release build), rounded up to 32 MiB.
/// - core: the protocol plug-in's `retainedBytesBound` (PBFT: log, queued requests, client table, checkpoints, view
///   change, state transfer), with the clients of the cluster file (no other client can authenticate).
/// - connections: per connection, what it may buffer: a partial frame being read (`frameBytesMax` from
///   a replica, the largest client message from a client, 4 KiB before the handshake), NIO's reads of one event (4 x 64 KiB), its write buffer up to the high
///   watermark plus one frame (replica links: 2 frames + 1 MiB; client links: 4 replies), and 16 KiB of
///   channel and handler state. Strangers: `connectionsMax` connections that never finish the handshake.
///   Peers: 2 links per other replica, one per listed client.
/// - inputs: verified inputs waiting for the protocol loop (read backpressure pauses at 64 MiB; each
///   connection's read burst, counted above, can come on top).
/// - execution: batches handed to the application and their results (at most L batches), and read-only
///   requests with the application (at most `readOnlyInFlightMax`, each an operation, an authenticator and a result).
/// - application: the application's own state (`stateBytes`; two copies while a snapshot is taken).
public struct ReplicaMemoryBound: Sendable, CustomStringConvertible {
    public static let processBaselineBytes = 32 << 20
    public static let connectionOverheadBytes = 16 << 10
    public static let readBurstBytes = 4 * (64 << 10)

    public let process: Int
    public let core: ByteParts
    public let strangers: Int
    public let replicaLinks: Int
    public let clientLinks: Int
    public let inputs: Int
    public let execution: Int
    public let application: Int

    public var total: Int { process + core.total + strangers + replicaLinks + clientLinks + inputs + execution + application }

    public var parts: [(name: String, bytes: Int)] {
        [("process", process), ("core", core.total), ("strangers", strangers), ("replica links", replicaLinks),
         ("client links", clientLinks), ("inputs", inputs), ("execution", execution), ("application", application)]
    }

    public var description: String {
        parts.map { "\($0.name) \(Self.mebibytes($0.bytes))" }.joined(separator: ", ") + "; total \(Self.mebibytes(total))"
    }

    public static func mebibytes(_ bytes: Int) -> String {
        let tenths = (bytes * 10 + (1 << 20) - 1) >> 20
        return "\(tenths / 10).\(tenths % 10) MiB"
    }

    /// The largest frame a replica accepts from a client after the handshake (`MessageBounds.clientFrameBytesMax`).
    public static func clientFrameBytesMax(_ cluster: ClusterFile) throws(ClusterConfiguration.Error) -> Int {
        let configuration = try ClusterConfiguration(replicaCount: cluster.replicas.count, faultModel: cluster.faultModel)
        let sizes = cluster.authentication.authenticatorSizes(replicaCount: configuration.replicaCount)
        return MessageBounds(limits: cluster.limits, authenticators: sizes).clientFrameBytesMax
    }

    /// - Parameter stateBytes: the largest state the application holds (snapshot plus client table); at
    ///   most `limits.stateBytesMax` for state transfer to work, which is the default.
    /// - Throws: `ConfigurationError` for a protocol no plug-in implements or a bad replica count.
    public init(cluster: ClusterFile, stateBytes: Int? = nil) throws(ConfigurationError) {
        let plugin = try ProtocolCatalog.plugin(named: cluster.protocolName, source: "cluster.json")
        let configuration = try ClusterFile.configuration(replicaCount: cluster.replicas.count, faultModel: cluster.faultModel, source: "cluster.json")
        let limits = cluster.limits
        let state = stateBytes ?? limits.stateBytesMax
        let sizes = cluster.authentication.authenticatorSizes(replicaCount: configuration.replicaCount)
        let authenticator = max(sizes.broadcast, sizes.request, sizes.pairwise)
        var coreLimits = limits
        coreLimits.clientsMax = min(limits.clientsMax, cluster.clients.count)
        process = Self.processBaselineBytes
        core = plugin.retainedBytesBound(configuration: configuration, settings: cluster.settings, limits: coreLimits,
                                         authenticatorBytes: authenticator, stateBytes: state)
        let read = Self.readBurstBytes + Self.connectionOverheadBytes
        strangers = limits.connectionsMax * (WireCodec.handshakeFrameBytesMax + read + 1024)
        // A link buffers writes up to its high watermark, and one more frame passes the writability check.
        let replicaWrite = ProtocolDriverLimits.writeHighWatermark(for: .replica(ReplicaID(0)), limits: limits) + limits.frameBytesMax
        replicaLinks = 2 * (configuration.replicaCount - 1) * (limits.frameBytesMax + read + replicaWrite)
        let clientWrite = ProtocolDriverLimits.writeHighWatermark(for: .client(ClientID(0)), limits: limits) + limits.resultBytesMax + 1024
        // A client's frames are cut at the largest message a client sends (FrameDecoder.clientFrameBytesMax).
        let clientFrame = MessageBounds(limits: limits, authenticators: sizes).clientFrameBytesMax
        clientLinks = cluster.clients.count * (min(limits.frameBytesMax, clientFrame) + read + clientWrite)
        inputs = ProtocolDriverLimits.inputBytesQueuedHigh
        let window = Int(cluster.settings.watermarkWindow)
        let reads = ProtocolDriverLimits.readOnlyInFlightMax * (limits.operationBytesMax + sizes.request + limits.resultBytesMax + 256)
        execution = window * (limits.batchBytesMax + limits.batchRequestsMax * (limits.resultBytesMax + 64)) + reads
        application = 2 * state
    }
}
