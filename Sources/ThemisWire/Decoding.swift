import NIOCore
import ThemisCore

/// Reads one payload field by field. Every length and count is checked against its limit before
/// anything is read or allocated; every read checks that the bytes are there.
package struct PayloadReader {
    package var buffer: ByteBuffer
    package let limits: Limits

    @inlinable
    package init(buffer: ByteBuffer, limits: Limits) {
        self.buffer = buffer
        self.limits = limits
    }

    package mutating func readMessage() throws(WireError) -> WireMessage {
        let version = try readUInt8()
        guard version == WireCodec.version else { throw .unsupportedVersion(version) }
        let rawKind = try readUInt8()
        guard let kind = MessageKind(rawValue: rawKind) else { throw .unknownMessageKind(rawKind) }
        switch kind {
        case .hello:
            return .hello(try readHello())
        case .helloProof:
            return .helloProof(HelloProof(proof: try readByteString(field: "hello proof", max: limits.authenticatorBytesMax)))
        case .goodbye:
            return .goodbye(reason: try readGoodbyeReason())
        case .attachClient:
            let client = ClientID(try readUInt32())
            return .attachClient(AttachClient(client: client, proof: try readByteString(field: "attach proof", max: limits.authenticatorBytesMax)))
        case .replica:
            let protocolID = ProtocolID(try readUInt8())
            // The rest of the payload is the plug-in's; it has at least its kind byte.
            guard buffer.readableBytes > 0, let bytes = buffer.readSlice(length: buffer.readableBytes) else { throw .truncated }
            return .replica(ProtocolPayload(protocolID: protocolID, bytes: bytes))
        case .request:
            return .request(try readRequest())
        case .readOnlyRequest:
            return .readOnlyRequest(try readRequest())
        case .reply:
            return .reply(try readReply())
        case .tentativeReply:
            return .reply(try readReply(tentative: true))
        case .statusQuery:
            return .statusQuery(StatusQuery(nonce: try readUInt64()))
        case .statusReport:
            return .statusReport(try readStatusReport())
        }
    }

    // MARK: Scalars

    @inlinable
    package mutating func readUInt8() throws(WireError) -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else { throw .truncated }
        return value
    }

    @inlinable
    package mutating func readUInt32() throws(WireError) -> UInt32 {
        guard let value = buffer.readInteger(as: UInt32.self) else { throw .truncated }
        return value
    }

    @inlinable
    package mutating func readUInt64() throws(WireError) -> UInt64 {
        guard let value = buffer.readInteger(as: UInt64.self) else { throw .truncated }
        return value
    }

    @inlinable
    package mutating func readDigest() throws(WireError) -> Digest {
        // One bounds check for all four words.
        guard buffer.readableBytes >= Digest.byteCount else { throw .truncated }
        return Digest(word0: try readUInt64(), word1: try readUInt64(), word2: try readUInt64(), word3: try readUInt64())
    }

    @inlinable
    package mutating func readReplicaID() throws(WireError) -> ReplicaID { ReplicaID(try readUInt32()) }
    @inlinable
    package mutating func readClientID() throws(WireError) -> ClientID { ClientID(try readUInt32()) }
    @inlinable
    package mutating func readView() throws(WireError) -> View { View(try readUInt64()) }
    @inlinable
    package mutating func readSequence() throws(WireError) -> SequenceNumber { SequenceNumber(try readUInt64()) }
    @inlinable
    package mutating func readTimestamp() throws(WireError) -> Timestamp { Timestamp(try readUInt64()) }

    // MARK: Length-prefixed fields

    /// Reads a UInt32 length, checks it against `max` (before reading or allocating), then the bytes.
    @inlinable
    package mutating func readByteString(field: String, max: Int) throws(WireError) -> [UInt8] {
        let length = try readLength(field: field, max: max)
        guard let bytes = buffer.readBytes(length: length) else { throw .truncated }
        return bytes
    }

    /// Reads a UInt32 length or count and checks it against `max`. `Int(clamping:)` keeps a 32-bit
    /// platform from trapping on a huge length.
    @inlinable
    package mutating func readLength(field: String, max: Int) throws(WireError) -> Int {
        let length = Int(clamping: try readUInt32())
        guard length <= max else { throw .lengthTooLarge(field: field, length: length, max: max) }
        return length
    }

    /// How many entries to reserve for a list of `count`: no more than the remaining bytes can hold
    /// at `entryBytesMin` each, so a lying count allocates little.
    @inlinable
    package func reservation(_ count: Int, entryBytesMin: Int) -> Int {
        Swift.min(count, buffer.readableBytes / entryBytesMin)
    }

    package mutating func readGoodbyeReason() throws(WireError) -> String {
        let length = try readLength(field: "goodbye reason", max: WireCodec.goodbyeReasonBytesMax)
        guard let slice = buffer.readSlice(length: length) else { throw .truncated }
        guard let reason = String(validating: slice.readableBytesView, as: UTF8.self) else { throw .invalidUTF8 }
        return reason
    }

    // MARK: Messages

    package mutating func readPrincipal() throws(WireError) -> Principal {
        let rawKind = try readUInt8()
        guard let kind = PrincipalKind(rawValue: rawKind) else { throw .unknownPrincipalKind(rawKind) }
        switch kind {
        case .replica: return .replica(try readReplicaID())
        case .client: return .client(try readClientID())
        }
    }

    package mutating func readHello() throws(WireError) -> Hello {
        let principal = try readPrincipal()
        guard try readUInt32() == UInt32(Hello.nonceByteCount) else { throw .invalidNonce }
        guard let nonce = buffer.readBytes(length: Hello.nonceByteCount) else { throw .truncated }
        let clusterTag = try readUInt64()
        return Hello(principal: principal, nonce: nonce, clusterTag: clusterTag)
    }

    @inlinable
    package mutating func readRequest() throws(WireError) -> Request {
        let client = try readClientID()
        let timestamp = try readTimestamp()
        let operation = try readByteString(field: "operation", max: limits.operationBytesMax)
        let authenticator = try readByteString(field: "request authenticator", max: limits.authenticatorBytesMax)
        return Request(client: client, timestamp: timestamp, operation: operation, authenticator: authenticator)
    }

    package mutating func readReply(tentative: Bool = false) throws(WireError) -> Reply {
        let view = try readView()
        let timestamp = try readTimestamp()
        let client = try readClientID()
        let replica = try readReplicaID()
        let result = try readByteString(field: "result", max: limits.resultBytesMax)
        let authenticator = try readByteString(field: "reply authenticator", max: limits.authenticatorBytesMax)
        return Reply(view: view, timestamp: timestamp, client: client, replica: replica, result: result, authenticator: authenticator,
                     tentative: tentative)
    }

    package mutating func readStatusReport() throws(WireError) -> StatusReport {
        let nonce = try readUInt64()
        let replica = try readReplicaID()
        let view = try readView()
        let lastExecuted = try readSequence()
        let lastStableCheckpoint = try readSequence()
        let applicationDigest = try readDigest()
        let connectedReplicas = try readUInt32()
        let batchesExecuted = try readUInt64()
        let requestsExecuted = try readUInt64()
        let peakResidentBytes = try readUInt64()
        return StatusReport(
            nonce: nonce, replica: replica, view: view, lastExecuted: lastExecuted,
            lastStableCheckpoint: lastStableCheckpoint, applicationDigest: applicationDigest,
            connectedReplicas: connectedReplicas, batchesExecuted: batchesExecuted, requestsExecuted: requestsExecuted,
            peakResidentBytes: peakResidentBytes
        )
    }
}
