import ThemisCore
import ThemisCrypto
import ThemisProtocolKit

extension HybsterReplica {
    /// What the core holds now by the shared size model, in the parts of `Hybster.retainedBytesBound`
    /// (the simulator's memory checker compares the two).
    public var retainedBytes: ByteParts {
        let header = HybsterCodec.headerBytes
        var logBytes = 0
        for slot in log.values {
            logBytes += SizeModel.slotOverhead + slot.commits.count * SizeModel.recordOverhead + (slot.prepare == nil ? 0 : header)
            logBytes += slot.batch.map { SizeModel.bytes($0) } ?? 0
            if slot.ownCommit != nil { logBytes += SizeModel.entryOverhead }
        }
        logBytes += executing.reduce(0) { $0 + SizeModel.slotOverhead + SizeModel.bytes($1.requests) }
        let requests = pendingRequests.retainedBytes + (queuedClients.count + proposedTimestamps.count) * SizeModel.recordOverhead
            + waiting.values.reduce(0) { $0 + SizeModel.bytes($1) }
        let checkpointBytes = checkpoints.own.values.reduce(0) { $0 + $1.state.count + $1.chunks.count * Digest.byteCount + SizeModel.entryOverhead }
            + (checkpoints.latest.count + checkpoints.stableProof.count) * SizeModel.entryOverhead
        func viewChangeBytes(_ message: HybsterViewChange) -> Int {
            SizeModel.slotOverhead + (message.entries.count + message.checkpointProof.count) * (SizeModel.entryOverhead + header)
                + message.chains.reduce(0) { $0 + $1.count * HybsterCodec.certificateBytes }
        }
        var viewChangeTotal = viewChange.received.values.reduce(0) { $0 + viewChangeBytes($1) }
        viewChangeTotal += viewChange.own.map(viewChangeBytes) ?? 0
        viewChangeTotal += viewChange.newView.map { $0.viewChanges.reduce(SizeModel.slotOverhead + $0.reproposals.count * header) { $0 + viewChangeBytes($1) } } ?? 0
        viewChangeTotal += viewChange.held.values.reduce(0) { $0 + SizeModel.bytes($1) }
        viewChangeTotal += (viewChange.earlyAcks.count + viewChange.requests.count) * SizeModel.entryOverhead
        let transfer = stateTransfer.fetch.map { $0.received.count + ($0.chunkDigests?.count ?? 0) * Digest.byteCount } ?? 0
        return ByteParts([
            .init(name: "log", bytes: logBytes),
            .init(name: "requests", bytes: requests),
            .init(name: "clients", bytes: clientTable.retainedBytes),
            .init(name: "checkpoints", bytes: checkpointBytes),
            .init(name: "viewChange", bytes: viewChangeTotal),
            .init(name: "stateTransfer", bytes: transfer),
        ])
    }
}
