/// Decoding with defaults: a configuration file may name only the limits and settings it changes.
extension Limits {
    enum CodingKeys: String, CodingKey {
        case frameBytesMax, operationBytesMax, resultBytesMax, authenticatorBytesMax, batchRequestsMax
        case pipelineDepthMax, pendingRequestsMax, clientsMax, stateChunkBytes, stateBytesMax
        case committedBatchesPerMessageMax
        case fetchRepliesBurst
        case connectionsMax
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var limits = Limits()
        func read(_ key: CodingKeys, _ value: inout Int) throws {
            if let decoded = try container.decodeIfPresent(Int.self, forKey: key) { value = decoded }
        }
        try read(.frameBytesMax, &limits.frameBytesMax)
        try read(.operationBytesMax, &limits.operationBytesMax)
        try read(.resultBytesMax, &limits.resultBytesMax)
        try read(.authenticatorBytesMax, &limits.authenticatorBytesMax)
        try read(.batchRequestsMax, &limits.batchRequestsMax)
        try read(.pipelineDepthMax, &limits.pipelineDepthMax)
        try read(.pendingRequestsMax, &limits.pendingRequestsMax)
        try read(.clientsMax, &limits.clientsMax)
        try read(.stateChunkBytes, &limits.stateChunkBytes)
        try read(.stateBytesMax, &limits.stateBytesMax)
        try read(.committedBatchesPerMessageMax, &limits.committedBatchesPerMessageMax)
        try read(.fetchRepliesBurst, &limits.fetchRepliesBurst)
        try read(.connectionsMax, &limits.connectionsMax)
        self = limits
    }
}

extension ProtocolSettings {
    enum CodingKeys: String, CodingKey {
        case checkpointInterval, watermarkWindow, requestTimeoutTicks, pillars, tentativeExecution
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var settings = ProtocolSettings()
        if let value = try container.decodeIfPresent(UInt64.self, forKey: .checkpointInterval) { settings.checkpointInterval = value }
        if let value = try container.decodeIfPresent(UInt64.self, forKey: .watermarkWindow) {
            settings.watermarkWindow = value
        } else {
            settings.watermarkWindow = 2 * settings.checkpointInterval
        }
        if let value = try container.decodeIfPresent(UInt64.self, forKey: .requestTimeoutTicks) { settings.requestTimeoutTicks = value }
        if let value = try container.decodeIfPresent(UInt32.self, forKey: .pillars) { settings.pillars = value }
        if let value = try container.decodeIfPresent(Bool.self, forKey: .tentativeExecution) { settings.tentativeExecution = value }
        self = settings
    }

    /// `tentativeExecution` only when it is on: the cluster tag hashes this encoding (docs/WIRE.md 3.3), so a
    /// cluster file without the option keeps the tag it had before the option existed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(checkpointInterval, forKey: .checkpointInterval)
        try container.encode(watermarkWindow, forKey: .watermarkWindow)
        try container.encode(requestTimeoutTicks, forKey: .requestTimeoutTicks)
        try container.encode(pillars, forKey: .pillars)
        if tentativeExecution { try container.encode(true, forKey: .tentativeExecution) }
    }
}
