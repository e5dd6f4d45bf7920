import NIOCore
import ThemisCore

extension WireCodec {
    /// Writes `version, kind, fields` straight into the buffer (the layout is on `MessageKind`).
    package static func writePayload(_ message: WireMessage, into buffer: inout ByteBuffer) {
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
        case .replica(let payload):
            buffer.writeInteger(payload.protocolID.rawValue)
            var bytes = payload.bytes
            buffer.writeBuffer(&bytes)
        case .request(let request), .readOnlyRequest(let request):
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
    @inlinable
    package mutating func writeDigest(_ digest: Digest) {
        writeInteger(digest.word0)
        writeInteger(digest.word1)
        writeInteger(digest.word2)
        writeInteger(digest.word3)
    }

    @inlinable
    package mutating func writeByteString(_ bytes: [UInt8]) {
        writeInteger(WireCodec.wireLength(bytes.count))
        writeBytes(bytes)
    }

    package mutating func writePrincipal(_ principal: Principal) {
        switch principal {
        case .replica(let id):
            writeInteger(PrincipalKind.replica.rawValue)
            writeInteger(id.rawValue)
        case .client(let id):
            writeInteger(PrincipalKind.client.rawValue)
            writeInteger(id.rawValue)
        }
    }

    package mutating func writeHello(_ hello: Hello) {
        writePrincipal(hello.principal)
        writeByteString(hello.nonce)
        writeInteger(hello.clusterTag)
    }

    package mutating func writeGoodbyeReason(_ reason: String) {
        let count = WireCodec.goodbyeReasonByteCount(reason)
        writeInteger(UInt32(count))
        writeBytes(reason.utf8.prefix(count))
    }

    @inlinable
    package mutating func writeRequest(_ request: Request) {
        writeInteger(request.client.rawValue)
        writeInteger(request.timestamp.rawValue)
        writeByteString(request.operation)
        writeByteString(request.authenticator)
    }

    package mutating func writeReply(_ reply: Reply) {
        writeInteger(reply.view.rawValue)
        writeInteger(reply.timestamp.rawValue)
        writeInteger(reply.client.rawValue)
        writeInteger(reply.replica.rawValue)
        writeByteString(reply.result)
        writeByteString(reply.authenticator)
    }

    package mutating func writeStatusReport(_ report: StatusReport) {
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
