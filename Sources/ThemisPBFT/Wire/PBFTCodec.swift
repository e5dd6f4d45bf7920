import NIOCore
import ThemisCore
import ThemisWire

/// PBFT's message kinds, inside its protocol payload (`WireMessage.replica`), and in the bytes its messages
/// authenticate (after the protocol id: `WireCodec.protocolAuthenticationPrefix`).
///
/// PBFT payload layout (after the frame's `version, replica, protocol id`; integers big-endian, fixed
/// width; a byte string is a UInt32 length then the bytes): `kind`, the fields below, then the sender's
/// authenticator (byte string).
///
/// | kind | fields |
/// |------|--------|
/// | relayedRequest 0x10 | relayedBy UInt32, request |
/// | prePrepare 0x11 | view, sequence, digest (32 bytes), sender, count UInt32, count × request |
/// | prepare 0x12, commit 0x13 | view, sequence, digest, sender |
/// | checkpoint 0x14 | sequence, stateDigest, sender |
/// | viewChange 0x15 | view-change body (below) |
/// | newView 0x16 | view, sender, count UInt32, count × (view-change body, authenticator), count UInt32, count × (pre-prepare header, authenticator) |
/// | fetchState 0x17 | sequence, stateDigest, offset UInt64, sender |
/// | stateChunk 0x18 | sequence, stateDigest, totalBytes UInt64, offset UInt64, bytes (byte string, at most `Limits.stateChunkBytes`), count UInt32 (at most `Limits.stateChunksMax`), count × chunk digest, sender |
/// | fetchBatches 0x19 | from (sequence), sender |
/// | committedBatches 0x1A | sender, count UInt32 (at most `Limits.committedBatchesPerMessageMax`), count × pre-prepare fields |
/// | recoveryQuery 0x1B | nonce UInt64, target (sequence), view, sender |
/// | recoveryReply 0x1C | nonce UInt64, view, lastExecuted, stableCheckpoint (sequences), stableDigest, sender, checkpoint proof (count UInt32, count × (checkpoint fields, authenticator)) |
/// | newViewRelay 0x1D | sender, NEW-VIEW fields (as newView), the new primary's authenticator (byte string) |
///
/// A request is client UInt32, timestamp UInt64, operation, authenticator (the framework's layout). A
/// view-change body is newView, stableCheckpoint, stableDigest, sender, then the checkpoint proof (count
/// UInt32, count × (checkpoint fields, authenticator)), then the prepared certificates (count UInt32, count ×
/// (pre-prepare header, authenticator, count UInt32, count × (prepare fields, authenticator))). A
/// "pre-prepare header" is view, sequence, digest, sender, request count, without the requests (the digest
/// binds them; a replica fetches a batch it lacks with FETCH-BATCHES), so VIEW-CHANGE and NEW-VIEW sizes do
/// not grow with batch sizes. "Pre-prepare fields" (prePrepare, committedBatches) are the header followed
/// by the requests. Each pre-prepare of a NEW-VIEW's O is followed by the new primary's own authenticator
/// over it (a byte string, possibly empty), so a backup can later forward it inside a prepared certificate.
/// Counts are bounded before use: see `WireCodec.certificateEntriesMax` and
/// `WireCodec.preparedCertificatesMax`. The pre-prepares of a COMMITTED-BATCHES carry no authenticator of
/// their own: the outer one covers them all.
///
/// A number, once used, MUST NOT be reused for another kind: old signatures would then verify as the new kind.
public enum PBFTKind: UInt8, CaseIterable, Sendable {
    case relayedRequest = 0x10
    case prePrepare = 0x11
    case prepare = 0x12
    case commit = 0x13
    case checkpoint = 0x14
    case viewChange = 0x15
    case newView = 0x16
    case fetchState = 0x17
    case stateChunk = 0x18
    case fetchBatches = 0x19
    case committedBatches = 0x1A
    case recoveryQuery = 0x1B
    case recoveryReply = 0x1C
    case newViewRelay = 0x1D

    public init(of message: PBFTMessage) {
        switch message {
        case .request: self = .relayedRequest
        case .prePrepare: self = .prePrepare
        case .prepare: self = .prepare
        case .commit: self = .commit
        case .checkpoint: self = .checkpoint
        case .viewChange: self = .viewChange
        case .newView: self = .newView
        case .fetchState: self = .fetchState
        case .stateChunk: self = .stateChunk
        case .fetchBatches: self = .fetchBatches
        case .committedBatches: self = .committedBatches
        case .recoveryQuery: self = .recoveryQuery
        case .recoveryReply: self = .recoveryReply
        case .newViewRelay: self = .newViewRelay
        }
    }
}

/// PBFT's codec: its messages as the payload of `WireMessage.replica` (layout on `PBFTKind`).
public enum PBFTCodec {
    /// PBFT's protocol id on the wire and in authenticated bytes.
    public static let protocolID = ProtocolID(1)

    /// Encodes one PBFT message with its authenticator as a frame, straight into `buffer`.
    public static func encodeFrame(_ message: PBFTMessage, authenticator: [UInt8], into buffer: inout ByteBuffer) {
        let body = 1 + WireCodec.pbftFieldsByteCount(message) + WireCodec.lengthPrefixBytes + authenticator.count
        WireCodec.encodeProtocolFrame(protocolID, bodyBytes: body, into: &buffer) { buffer in
            writeBody(message, authenticator: authenticator, into: &buffer)
        }
    }

    /// The message as a `WireMessage` (for code that handles framework and protocol messages alike: tests,
    /// the simulator's Byzantine replicas). The shell encodes with `encodeFrame`, which does not copy.
    public static func wireMessage(_ message: PBFTMessage, authenticator: [UInt8]) -> WireMessage {
        var bytes = ByteBuffer()
        bytes.reserveCapacity(1 + WireCodec.pbftFieldsByteCount(message) + WireCodec.lengthPrefixBytes + authenticator.count)
        writeBody(message, authenticator: authenticator, into: &bytes)
        return .replica(ProtocolPayload(protocolID: protocolID, bytes: bytes))
    }

    /// Decodes the payload of a `WireMessage.replica` for PBFT.
    /// - Returns: the message and its sender's authenticator. Requests are rebuilt (their digests
    ///   recomputed); a pre-prepare keeps the digest it carried, which the core MUST check against its batch.
    /// - Throws: a `WireError` for any malformed payload (`.unknownMessageKind` for another protocol's
    ///   payload, `.trailingBytes` if bytes remain).
    public static func decode(_ payload: ProtocolPayload, limits: Limits) throws(WireError) -> (message: PBFTMessage, authenticator: [UInt8]) {
        guard payload.protocolID == protocolID else { throw .unknownProtocol(payload.protocolID.rawValue) }
        var reader = PayloadReader(buffer: payload.bytes, limits: limits)
        let rawKind = try reader.readUInt8()
        guard let kind = PBFTKind(rawValue: rawKind) else { throw .unknownMessageKind(rawKind) }
        let message = try reader.readPBFTFields(kind)
        let authenticator = try reader.readByteString(field: "authenticator", max: limits.authenticatorBytesMax)
        guard reader.buffer.readableBytes == 0 else { throw .trailingBytes(count: reader.buffer.readableBytes) }
        return (message, authenticator)
    }

    /// Decodes a whole payload (as `WireCodec.decode`) that must be a PBFT message.
    public static func decode(_ payload: inout ByteBuffer, limits: Limits) throws(WireError) -> (message: PBFTMessage, authenticator: [UInt8]) {
        guard case .replica(let inner) = try WireCodec.decode(&payload, limits: limits) else { throw .unexpectedMessage }
        return try decode(inner, limits: limits)
    }

    static func writeBody(_ message: PBFTMessage, authenticator: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeInteger(PBFTKind(of: message).rawValue)
        buffer.writePBFTFields(message)
        buffer.writeByteString(authenticator)
    }
}

extension WireCodec {
    /// Most entries in one quorum certificate on the wire: the CHECKPOINT messages proving a
    /// VIEW-CHANGE's stable checkpoint, the PREPAREs of one prepared certificate, the VIEW-CHANGEs of
    /// a NEW-VIEW. Each comes from a distinct replica and `ClusterConfiguration` caps the replica
    /// count at 1024, so a longer list is malformed.
    public static let certificateEntriesMax = 1024
    /// Most prepared certificates in one VIEW-CHANGE, and most PRE-PREPAREs in one NEW-VIEW: one per
    /// sequence number above the stable checkpoint. A transport bound only, twice the default
    /// watermark window (2000); the protocol core checks the sequence numbers against its own window.
    public static let preparedCertificatesMax = 4096
    /// view, sequence, digest, sender.
    static let slotBytes = 8 + 8 + digestBytes + 4
    static let checkpointBytes = 8 + digestBytes + 4

    /// The PBFT prefix of authenticated bytes: domain, `replica`, PBFT's protocol id, `kind`.
    static func authenticationPrefix(_ kind: PBFTKind, fieldBytes: Int) -> [UInt8] {
        protocolAuthenticationPrefix(PBFTCodec.protocolID, kind: kind.rawValue, fieldBytes: fieldBytes)
    }

    /// The bytes a replica authenticates for a PBFT message:
    /// - relayed request: relayer, request digest;
    /// - PRE-PREPARE: view, sequence, digest, sender, request count (not the requests: the digest
    ///   binds them and the protocol core recomputes it);
    /// - PREPARE and COMMIT: view, sequence, digest, sender;
    /// - CHECKPOINT: sequence, state digest, sender;
    /// - VIEW-CHANGE: sender, newView, stableCheckpoint, stableDigest, body digest;
    /// - NEW-VIEW: sender, view, body digest (the body includes O's pre-prepares and their authenticators);
    /// - FETCH-STATE: sender, sequence, state digest, offset;
    /// - STATE-CHUNK: sender, sequence, state digest, totalBytes, offset, SHA-256 of the chunk's bytes;
    /// - FETCH-BATCHES: sender, from;
    /// - COMMITTED-BATCHES: sender, body digest (every pre-prepare with its whole batch);
    /// - RECOVERY-QUERY: sender, nonce, target, view;
    /// - RECOVERY-REPLY: sender, nonce, body digest (the proof's authenticators included);
    /// - NEW-VIEW-RELAY: sender, body digest (the NEW-VIEW and the new primary's authenticator included).
    ///
    /// A body digest is the SHA-256 of the message's complete encoded fields (everything the codec
    /// writes between the kind byte and the outer authenticator, nested authenticators and batches
    /// included), so the outer authenticator binds every certificate and re-proposed batch inside.
    public static func authenticatedBytes(of message: PBFTMessage) -> [UInt8] {
        let kind = PBFTKind(of: message)
        switch message {
        case .request(let request, let relayedBy):
            var bytes = authenticationPrefix(kind, fieldBytes: 4 + digestBytes)
            bytes.appendBigEndian(relayedBy.rawValue)
            bytes.appendDigest(request.digest)
            return bytes
        case .prePrepare(let prePrepare):
            return authenticatedBytes(of: prePrepare.header)
        case .prepare(let prepare):
            var bytes = authenticationPrefix(kind, fieldBytes: slotBytes)
            bytes.appendSlot(prepare.view, prepare.sequence, prepare.digest, prepare.sender)
            return bytes
        case .commit(let commit):
            var bytes = authenticationPrefix(kind, fieldBytes: slotBytes)
            bytes.appendSlot(commit.view, commit.sequence, commit.digest, commit.sender)
            return bytes
        case .checkpoint(let checkpoint):
            var bytes = authenticationPrefix(kind, fieldBytes: checkpointBytes)
            bytes.appendBigEndian(checkpoint.sequence.rawValue)
            bytes.appendDigest(checkpoint.stateDigest)
            bytes.appendBigEndian(checkpoint.sender.rawValue)
            return bytes
        case .viewChange(let viewChange):
            return viewChangeAuthenticatedBytes(viewChange, bodyDigest: bodyDigest(of: message))
        case .newView(let newView):
            return newViewAuthenticatedBytes(newView, bodyDigest: bodyDigest(of: message))
        case .fetchState(let fetchState):
            return fetchStateAuthenticatedBytes(fetchState)
        case .stateChunk(let stateChunk):
            return stateChunkAuthenticatedBytes(stateChunk)
        case .fetchBatches(let fetchBatches):
            return fetchBatchesAuthenticatedBytes(fetchBatches)
        case .committedBatches(let committedBatches):
            return committedBatchesAuthenticatedBytes(committedBatches, bodyDigest: bodyDigest(of: message))
        case .recoveryQuery(let query):
            return recoveryQueryAuthenticatedBytes(query)
        case .recoveryReply(let reply):
            return recoveryReplyAuthenticatedBytes(reply, bodyDigest: bodyDigest(of: message))
        case .newViewRelay(let relay):
            return newViewRelayAuthenticatedBytes(relay, bodyDigest: bodyDigest(of: message))
        }
    }

    /// The bytes a primary authenticates for a PRE-PREPARE, with or without its batch: view, sequence,
    /// digest, sender, request count. The same authenticator therefore proves a pre-prepare header
    /// forwarded in a prepared certificate or sent in a NEW-VIEW's O.
    public static func authenticatedBytes(of header: PrePrepareHeader) -> [UInt8] {
        var bytes = authenticationPrefix(.prePrepare, fieldBytes: slotBytes + 4)
        bytes.appendSlot(header.view, header.sequence, header.digest, header.sender)
        bytes.appendBigEndian(wireLength(header.requestCount))
        return bytes
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
        case .recoveryQuery:
            return recoveryQueryBytes
        case .recoveryReply(let reply):
            return recoveryReplyByteCount(reply)
        case .newViewRelay(let relay):
            return newViewRelayByteCount(relay)
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

extension ByteBuffer {
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
        case .recoveryQuery(let query):
            writeRecoveryQuery(query)
        case .recoveryReply(let reply):
            writeRecoveryReply(reply)
        case .newViewRelay(let relay):
            writeNewViewRelay(relay)
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
}

extension [UInt8] {
    mutating func appendSlot(_ view: View, _ sequence: SequenceNumber, _ digest: Digest, _ sender: ReplicaID) {
        appendBigEndian(view.rawValue)
        appendBigEndian(sequence.rawValue)
        appendDigest(digest)
        appendBigEndian(sender.rawValue)
    }
}
