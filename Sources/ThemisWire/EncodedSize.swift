import ThemisCore

/// Exact payload sizes, computed before encoding so the buffer grows once per message.
extension WireCodec {
    /// Version and kind bytes.
    static let payloadHeaderBytes = 2
    /// A byte string's length prefix.
    static let lengthPrefixBytes = 4
    static let digestBytes = Digest.byteCount
    /// Principal kind byte and UInt32 id.
    static let principalBytes = 1 + 4
    static let helloBytes = principalBytes + lengthPrefixBytes + Hello.nonceByteCount + 8
    /// view, sequence, digest, sender.
    static let slotBytes = 8 + 8 + digestBytes + 4
    static let checkpointBytes = 8 + digestBytes + 4
    static let statusReportBytes = 8 + 4 + 8 + 8 + 8 + digestBytes + 4 + 8 + 8 + 8
    /// The smallest encoded request: client, timestamp, two empty byte strings.
    static let requestBytesMin = 4 + 8 + lengthPrefixBytes + lengthPrefixBytes

    /// The exact number of bytes `encode(_:into:)` writes for `message`.
    static func payloadByteCount(of message: WireMessage) -> Int {
        let fields: Int
        switch message {
        case .hello: fields = helloBytes
        case .helloProof(let helloProof): fields = lengthPrefixBytes + helloProof.proof.count
        case .goodbye(let reason): fields = lengthPrefixBytes + goodbyeReasonByteCount(reason)
        case .attachClient(let attach): fields = 4 + lengthPrefixBytes + attach.proof.count
        case .pbft(let pbftMessage, let authenticator):
            fields = pbftFieldsByteCount(pbftMessage) + lengthPrefixBytes + authenticator.count
        case .request(let request): fields = requestByteCount(request)
        case .reply(let reply):
            fields = 8 + 8 + 4 + 4 + lengthPrefixBytes + reply.result.count + lengthPrefixBytes + reply.authenticator.count
        case .statusQuery: fields = 8
        case .statusReport: fields = statusReportBytes
        }
        return payloadHeaderBytes + fields
    }

    static func requestByteCount(_ request: Request) -> Int {
        requestBytesMin + request.operation.count + request.authenticator.count
    }

    static func pbftFieldsByteCount(_ message: PBFTMessage) -> Int {
        switch message {
        case .request(let request, _):
            return 4 + requestByteCount(request)
        case .prePrepare(let prePrepare):
            return prePrepareByteCount(prePrepare)
        case .prepare, .commit:
            return slotBytes
        case .checkpoint:
            return checkpointBytes
        case .viewChange(let viewChange):
            return viewChangeByteCount(viewChange)
        case .newView(let newView):
            return newViewByteCount(newView)
        case .fetchState:
            return fetchStateBytes
        case .stateChunk(let stateChunk):
            return stateChunkFixedBytes + stateChunk.bytes.count + digestBytes * stateChunk.chunkDigests.count
        case .fetchBatches:
            return fetchBatchesBytes
        case .committedBatches(let committedBatches):
            return committedBatchesByteCount(committedBatches)
        }
    }

    /// Slot, request count, requests.
    static func prePrepareByteCount(_ prePrepare: PrePrepare) -> Int {
        var total = slotBytes + 4
        for request in prePrepare.requests {
            total += requestByteCount(request)
        }
        return total
    }
}
