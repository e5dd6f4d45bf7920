/// Every bound of the system in one place ("put a limit on everything").
/// Names carry their unit last.
public struct Limits: Hashable, Sendable, Codable {
    /// Largest frame accepted on any connection; a larger length prefix closes the connection.
    public var frameBytesMax: Int = 4 * 1024 * 1024
    /// Largest client operation.
    public var operationBytesMax: Int = 64 * 1024
    /// Largest application result.
    public var resultBytesMax: Int = 64 * 1024
    /// Largest authenticator (RSA-2048 signature is 256 B; a MAC vector is 32 B per replica).
    public var authenticatorBytesMax: Int = 32 * 1024
    /// Most requests in one batch (one PRE-PREPARE).
    public var batchRequestsMax: Int = 128
    /// Most batches the primary has in flight (proposed, not yet executed). A batch closes at once when
    /// nothing is in flight; while batches are in flight, only a full one (`batchRequestsMax`) is added to
    /// the pipeline, so batches grow with load (adaptive batching).
    public var pipelineDepthMax: Int = 4
    /// Most requests the primary queues before it rejects new ones (backpressure).
    public var pendingRequestsMax: Int = 16_384
    /// Most clients a replica keeps in its client table.
    public var clientsMax: Int = 65_536
    /// Bytes of state per STATE-CHUNK message.
    public var stateChunkBytes: Int = 1024 * 1024
    /// Largest state (application snapshot plus client table) a replica accepts in a state transfer.
    public var stateBytesMax: Int = 1 << 30

    /// Most chunks of one state: the length of the chunk digest list a STATE-CHUNK may carry.
    public var stateChunksMax: Int { (stateBytesMax + stateChunkBytes - 1) / max(1, stateChunkBytes) }
    /// Most batches in one COMMITTED-BATCHES message.
    public var committedBatchesPerMessageMax: Int = 32
    /// FETCH-STATE and FETCH-BATCHES requests answered per peer in a burst; afterwards one more per tick
    /// (the latest request over budget waits for it). A small request makes up to a frame of reply:
    /// without a budget a Byzantine replica could make us send frames as fast as it asks.
    public var fetchRepliesBurst: Int = 16
    /// Most connections a replica keeps open at once (replicas and clients, before and after the
    /// handshake); further ones are closed at once.
    public var connectionsMax: Int = 4096

    public init() {}

    /// Largest batch a primary proposes, by the estimate `op + authenticator + 64` bytes per request (a
    /// batch holds at least one request): a quarter of a frame, so a PRE-PREPARE always fits one.
    public var batchBytesMax: Int { frameBytesMax / 4 }

    /// Largest COMMITTED-BATCHES reply, by the estimate `96` bytes per batch plus `op + authenticator + 64`
    /// per request (a reply holds at least one batch): half a frame.
    public var committedBatchesBytesMax: Int { frameBytesMax / 2 }

    /// A description of the first value that is out of range or inconsistent with another, or nil.
    /// (Whether every message of a cluster fits a frame also depends on n, the settings and the
    /// authentication scheme: `MessageBounds` checks that when a cluster file is loaded.)
    public var problem: String? {
        let positive: [(String, Int)] = [
            ("frameBytesMax", frameBytesMax), ("operationBytesMax", operationBytesMax), ("resultBytesMax", resultBytesMax),
            ("authenticatorBytesMax", authenticatorBytesMax), ("batchRequestsMax", batchRequestsMax),
            ("pipelineDepthMax", pipelineDepthMax), ("pendingRequestsMax", pendingRequestsMax), ("clientsMax", clientsMax),
            ("stateChunkBytes", stateChunkBytes), ("stateBytesMax", stateBytesMax),
            ("committedBatchesPerMessageMax", committedBatchesPerMessageMax), ("fetchRepliesBurst", fetchRepliesBurst),
            ("connectionsMax", connectionsMax),
        ]
        for (name, value) in positive where value < 1 {
            return "\(name) must be at least 1 (is \(value))"
        }
        if frameBytesMax > Int(UInt32.max) { return "frameBytesMax (\(frameBytesMax)) must fit the 4-byte frame length" }
        if stateChunkBytes > stateBytesMax { return "stateChunkBytes (\(stateChunkBytes)) must be at most stateBytesMax (\(stateBytesMax))" }
        if pendingRequestsMax < batchRequestsMax {
            return "pendingRequestsMax (\(pendingRequestsMax)) must be at least batchRequestsMax (\(batchRequestsMax))"
        }
        return nil
    }

    public init(
        frameBytesMax: Int = 4 * 1024 * 1024, operationBytesMax: Int = 64 * 1024, resultBytesMax: Int = 64 * 1024,
        authenticatorBytesMax: Int = 32 * 1024, batchRequestsMax: Int = 128, pipelineDepthMax: Int = 4,
        pendingRequestsMax: Int = 16_384, clientsMax: Int = 65_536
    ) {
        self.frameBytesMax = frameBytesMax
        self.operationBytesMax = operationBytesMax
        self.resultBytesMax = resultBytesMax
        self.authenticatorBytesMax = authenticatorBytesMax
        self.batchRequestsMax = batchRequestsMax
        self.pipelineDepthMax = pipelineDepthMax
        self.pendingRequestsMax = pendingRequestsMax
        self.clientsMax = clientsMax
    }
}

/// Protocol parameters that every replica of a cluster must agree on.
public struct ProtocolSettings: Hashable, Sendable, Codable {
    /// K: a checkpoint is taken every K sequence numbers.
    public var checkpointInterval: UInt64 = 1000
    /// L: a replica accepts sequence numbers h < s <= h + L, h being the last stable checkpoint.
    /// Must be at least K so ordering never waits for a checkpoint that cannot be reached.
    public var watermarkWindow: UInt64 = 2000
    /// Ticks a backup waits for a pending request to execute before suspecting the primary.
    public var requestTimeoutTicks: UInt64 = 100
    /// P: parallel ordering instances (Hybster's pillars); order number o belongs to pillar o mod P.
    /// Protocols without pillars (PBFT) require 1. Optional in `cluster.json` (default 1).
    public var pillars: UInt32 = 1
    /// PBFT's tentative execution (Castro and Liskov 5.1.2): a replica executes a batch once it prepared and
    /// every earlier one committed, and replies at once, marked tentative; clients accept a quorum (2f+1) of
    /// matching tentative replies. Saves the COMMIT round of the reply's latency; a view change undoes a
    /// tentative batch that did not commit. Optional in `cluster.json` (default false); protocols without it
    /// (Hybster) refuse it.
    public var tentativeExecution = false

    public init() {}

    public init(checkpointInterval: UInt64, watermarkWindow: UInt64, requestTimeoutTicks: UInt64 = 100) {
        self.checkpointInterval = checkpointInterval
        self.watermarkWindow = watermarkWindow
        self.requestTimeoutTicks = requestTimeoutTicks
    }

    /// A typed description of what is wrong, or nil.
    public var problem: String? {
        if checkpointInterval == 0 { return "checkpointInterval must be at least 1" }
        if watermarkWindow < checkpointInterval {
            return "watermarkWindow (\(watermarkWindow)) must be at least checkpointInterval (\(checkpointInterval))"
        }
        if requestTimeoutTicks == 0 { return "requestTimeoutTicks must be at least 1" }
        if pillars == 0 || pillars > 64 { return "pillars (\(pillars)) must be between 1 and 64" }
        return nil
    }
}
