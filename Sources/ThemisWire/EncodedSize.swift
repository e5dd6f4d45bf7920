import NIOCore
import ThemisCore

/// Exact payload sizes, computed before encoding so the buffer grows once per message.
extension WireCodec {
    /// Version and kind bytes.
    @usableFromInline package static let payloadHeaderBytes = 2
    /// A byte string's length prefix.
    @usableFromInline package static let lengthPrefixBytes = 4
    @usableFromInline package static let digestBytes = Digest.byteCount
    /// Principal kind byte and UInt32 id.
    package static let principalBytes = 1 + 4
    package static let helloBytes = principalBytes + lengthPrefixBytes + Hello.nonceByteCount + 8
    package static let statusReportBytes = 8 + 4 + 8 + 8 + 8 + digestBytes + 4 + 8 + 8 + 8
    /// The smallest encoded request: client, timestamp, two empty byte strings.
    @usableFromInline package static let requestBytesMin = 4 + 8 + lengthPrefixBytes + lengthPrefixBytes

    /// The exact number of bytes `encode(_:into:)` writes for `message`.
    package static func payloadByteCount(of message: WireMessage) -> Int {
        let fields: Int
        switch message {
        case .hello: fields = helloBytes
        case .helloProof(let helloProof): fields = lengthPrefixBytes + helloProof.proof.count
        case .goodbye(let reason): fields = lengthPrefixBytes + goodbyeReasonByteCount(reason)
        case .attachClient(let attach): fields = 4 + lengthPrefixBytes + attach.proof.count
        case .replica(let payload): fields = 1 + payload.bytes.readableBytes
        case .request(let request), .readOnlyRequest(let request): fields = requestByteCount(request)
        case .reply(let reply):
            fields = 8 + 8 + 4 + 4 + lengthPrefixBytes + reply.result.count + lengthPrefixBytes + reply.authenticator.count
        case .statusQuery: fields = 8
        case .statusReport: fields = statusReportBytes
        }
        return payloadHeaderBytes + fields
    }

    @inlinable
    package static func requestByteCount(_ request: Request) -> Int {
        requestBytesMin + request.operation.count + request.authenticator.count
    }
}
