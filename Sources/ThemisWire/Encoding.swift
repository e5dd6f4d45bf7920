import NIOCore
import ThemisCore

extension WireCodec {
    /// Writes `version, kind, fields` straight into the buffer (the layout is on `MessageKind`).
    static func writePayload(_ message: WireMessage, into buffer: inout ByteBuffer) {
        buffer.writeInteger(version)
        buffer.writeInteger(MessageKind(of: message).rawValue)
        switch message {
        case .hello(let hello):
            buffer.writeHello(hello)
        case .helloProof(let helloProof):
            buffer.writeByteString(helloProof.proof)
        case .goodbye(let reason):
            buffer.writeGoodbyeReason(reason)
        case .attachClient(let attach):
            buffer.writeInteger(attach.client.rawValue)
            buffer.writeByteString(attach.proof)
        case .pbft(let pbftMessage, let authenticator):
            buffer.writePBFTFields(pbftMessage)
            buffer.writeByteString(authenticator)
        case .request(let request):
            buffer.writeRequest(request)
        case .reply(let reply):
            buffer.writeReply(reply)
        case .statusQuery(let query):
            buffer.writeInteger(query.nonce)
        case .statusReport(let report):
            buffer.writeStatusReport(report)
        }
    }

    /// How many UTF-8 bytes of `reason` are sent: all of them, or the longest prefix of at most
    /// `goodbyeReasonBytesMax` bytes that ends on a scalar boundary (so it stays valid UTF-8).
    static func goodbyeReasonByteCount(_ reason: String) -> Int {
        let utf8 = reason.utf8
        guard utf8.count > goodbyeReasonBytesMax else { return utf8.count }
        var cut = goodbyeReasonBytesMax
        // A continuation byte (0b10xxxxxx) at the cut means the cut splits a scalar: back up.
        while cut > 0, utf8[utf8.index(utf8.startIndex, offsetBy: cut)] & 0xC0 == 0x80 {
            cut -= 1
        }
        return cut
    }
}

/// Field writers: fixed-width big-endian integers, 32-byte digests, UInt32-length-prefixed byte strings.
extension ByteBuffer {
    mutating func writeDigest(_ digest: Digest) {
        writeInteger(digest.word0)
        writeInteger(digest.word1)
        writeInteger(digest.word2)
        writeInteger(digest.word3)
    }

    mutating func writeByteString(_ bytes: [UInt8]) {
        writeInteger(WireCodec.wireLength(bytes.count))
        writeBytes(bytes)
    }

    mutating func writePrincipal(_ principal: Principal) {
        switch principal {
        case .replica(let id):
            writeInteger(PrincipalKind.replica.rawValue)
            writeInteger(id.rawValue)
        case .client(let id):
            writeInteger(PrincipalKind.client.rawValue)
            writeInteger(id.rawValue)
        }
    }

    mutating func writeHello(_ hello: Hello) {
        writePrincipal(hello.principal)
        writeByteString(hello.nonce)
        writeInteger(hello.clusterTag)
    }

    mutating func writeGoodbyeReason(_ reason: String) {
        let count = WireCodec.goodbyeReasonByteCount(reason)
        writeInteger(UInt32(count))
        writeBytes(reason.utf8.prefix(count))
    }

    mutating func writeRequest(_ request: Request) {
        writeInteger(request.client.rawValue)
        writeInteger(request.timestamp.rawValue)
        writeByteString(request.operation)
        writeByteString(request.authenticator)
    }

    mutating func writeReply(_ reply: Reply) {
        writeInteger(reply.view.rawValue)
        writeInteger(reply.timestamp.rawValue)
        writeInteger(reply.client.rawValue)
        writeInteger(reply.replica.rawValue)
        writeByteString(reply.result)
        writeByteString(reply.authenticator)
    }

    /// The fields of a PBFT message, without its kind and authenticator.
    mutating func writePBFTFields(_ message: PBFTMessage) {
        switch message {
        case .request(let request, let relayedBy):
            writeInteger(relayedBy.rawValue)
            writeRequest(request)
        case .prePrepare(let prePrepare):
            writePrePrepare(prePrepare)
        case .prepare(let prepare):
            writeSlot(prepare.view, prepare.sequence, prepare.digest, prepare.sender)
        case .commit(let commit):
            writeSlot(commit.view, commit.sequence, commit.digest, commit.sender)
        case .checkpoint(let checkpoint):
            writeInteger(checkpoint.sequence.rawValue)
            writeDigest(checkpoint.stateDigest)
            writeInteger(checkpoint.sender.rawValue)
        case .viewChange(let viewChange):
            writeViewChange(viewChange)
        case .newView(let newView):
            writeNewView(newView)
        case .fetchState(let fetchState):
            writeFetchState(fetchState)
        case .stateChunk(let stateChunk):
            writeStateChunk(stateChunk)
        case .fetchBatches(let fetchBatches):
            writeInteger(fetchBatches.from.rawValue)
            writeInteger(fetchBatches.sender.rawValue)
        case .committedBatches(let committedBatches):
            writeCommittedBatches(committedBatches)
        }
    }

    /// A pre-prepare's fields: slot, request count, requests (also inside certificates and NEW-VIEWs).
    mutating func writePrePrepare(_ prePrepare: PrePrepare) {
        writeSlot(prePrepare.view, prePrepare.sequence, prePrepare.digest, prePrepare.sender)
        writeInteger(WireCodec.wireLength(prePrepare.requests.count))
        for request in prePrepare.requests {
            writeRequest(request)
        }
    }

    /// A pre-prepare header: slot, request count (the requests themselves are not written).
    mutating func writePrePrepareHeader(_ header: PrePrepareHeader) {
        writeSlot(header.view, header.sequence, header.digest, header.sender)
        writeInteger(WireCodec.wireLength(header.requestCount))
    }

    /// The (view, sequence, digest, sender) fields shared by the three normal-case messages.
    mutating func writeSlot(_ view: View, _ sequence: SequenceNumber, _ digest: Digest, _ sender: ReplicaID) {
        writeInteger(view.rawValue)
        writeInteger(sequence.rawValue)
        writeDigest(digest)
        writeInteger(sender.rawValue)
    }

    mutating func writeStatusReport(_ report: StatusReport) {
        writeInteger(report.nonce)
        writeInteger(report.replica.rawValue)
        writeInteger(report.view.rawValue)
        writeInteger(report.lastExecuted.rawValue)
        writeInteger(report.lastStableCheckpoint.rawValue)
        writeDigest(report.applicationDigest)
        writeInteger(report.connectedReplicas)
        writeInteger(report.batchesExecuted)
        writeInteger(report.requestsExecuted)
        writeInteger(report.peakResidentBytes)
    }
}
