import NIOCore
import ThemisCore
import ThemisCrypto
import ThemisWire

/// Hybster's message kinds inside its protocol payload (`WireMessage.replica`, protocol id 2).
///
/// Payload layout (integers big-endian, fixed width; a byte string is a UInt32 length then the bytes;
/// a list is a UInt32 count then the entries): `kind`, the fields below, then the link authenticator
/// (byte string).
///
/// | kind | fields |
/// |------|--------|
/// | request 0x20 | relayedBy UInt32, request |
/// | prepare 0x21 | header, count, count × request |
/// | commit 0x22 | view, order, digest, sender, certificate |
/// | checkpoint 0x23 | sequence, stateDigest, sender, certificate |
/// | viewChange 0x24 | view-change body |
/// | newView 0x25 | view, sender, count × view-change body, count × header |
/// | newViewAck 0x26 | view, reproposals digest, sender, count × certificate |
/// | fetch 0x27 | order, sender |
/// | forward 0x28 | sender, header, count × request |
/// | fetchState 0x29 | sequence, stateDigest, offset UInt64, sender |
/// | stateChunk 0x2A | sequence, stateDigest, totalBytes UInt64, offset UInt64, bytes (byte string), count × digest, sender |
/// | requestViewChange 0x2B | toView, sender |
/// | stableCheckpoint 0x2C | sequence, stateDigest, count × (checkpoint fields), sender |
///
/// A certificate is kind UInt8 (1 independent, 2 continuing, 3 MAC), replica UInt32, pillar UInt32, counter
/// UInt32, previous (view UInt64, order UInt64), value (view, order), tag (32 bytes). A header is view,
/// order, digest, sender, certificate. A view-change body is sender, fromView, toView, checkpoint,
/// checkpointDigest, count × (checkpoint fields), count × header, count × (count × certificate).
///
/// A number, once used, MUST NOT be reused for another kind.
public enum HybsterKind: UInt8, CaseIterable, Sendable {
    case request = 0x20
    case prepare = 0x21
    case commit = 0x22
    case checkpoint = 0x23
    case viewChange = 0x24
    case newView = 0x25
    case newViewAck = 0x26
    case fetch = 0x27
    case forward = 0x28
    case fetchState = 0x29
    case stateChunk = 0x2A
    case requestViewChange = 0x2B
    case stableCheckpoint = 0x2C

    public init(of message: HybsterMessage) {
        switch message {
        case .request: self = .request
        case .prepare: self = .prepare
        case .commit: self = .commit
        case .checkpoint: self = .checkpoint
        case .viewChange: self = .viewChange
        case .newView: self = .newView
        case .newViewAck: self = .newViewAck
        case .fetch: self = .fetch
        case .forward: self = .forward
        case .fetchState: self = .fetchState
        case .stateChunk: self = .stateChunk
        case .requestViewChange: self = .requestViewChange
        case .stableCheckpoint: self = .stableCheckpoint
        }
    }
}

public enum HybsterCodec {
    public static let protocolID = ProtocolID(2)
    /// Most PREPARE headers in a VIEW-CHANGE or NEW-VIEW (one per order number in the window): the
    /// settings rule keeps `watermarkWindow` at most this.
    public static let entriesMax = 4096
    /// Most pillars (settings rule: `ProtocolSettings.problem`).
    public static let pillarsMax = 64
    /// Most entries in a quorum list (checkpoint proof, VIEW-CHANGEs of a NEW-VIEW).
    public static let quorumEntriesMax = ClusterConfiguration.replicaCountMax
    /// A certificate on the wire.
    public static let certificateBytes = 1 + 4 + 4 + 4 + 4 * 8 + 32
    public static let headerBytes = 8 + 8 + Digest.byteCount + 4 + certificateBytes
    public static let checkpointBytes = 8 + Digest.byteCount + 4 + certificateBytes

    public static func encodeFrame(_ message: HybsterMessage, authenticator: [UInt8], into buffer: inout ByteBuffer) {
        var body = ByteBuffer()
        writeBody(message, authenticator: authenticator, into: &body)
        WireCodec.encodeProtocolFrame(protocolID, bodyBytes: body.readableBytes, into: &buffer) { buffer in
            buffer.writeBuffer(&body)
        }
    }

    public static func wireMessage(_ message: HybsterMessage, authenticator: [UInt8]) -> WireMessage {
        var bytes = ByteBuffer()
        writeBody(message, authenticator: authenticator, into: &bytes)
        return .replica(ProtocolPayload(protocolID: protocolID, bytes: bytes))
    }

    static func writeBody(_ message: HybsterMessage, authenticator: [UInt8], into buffer: inout ByteBuffer) {
        buffer.writeInteger(HybsterKind(of: message).rawValue)
        buffer.writeHybsterFields(message)
        buffer.writeByteString(authenticator)
    }

    /// Decodes the payload of a `WireMessage.replica` for Hybster: the message and its link authenticator.
    /// - Throws: a `WireError` for any malformed payload, never a crash.
    public static func decode(_ payload: ProtocolPayload, limits: Limits) throws(WireError) -> (message: HybsterMessage, authenticator: [UInt8]) {
        guard payload.protocolID == protocolID else { throw .unknownProtocol(payload.protocolID.rawValue) }
        var reader = PayloadReader(buffer: payload.bytes, limits: limits)
        let rawKind = try reader.readUInt8()
        guard let kind = HybsterKind(rawValue: rawKind) else { throw .unknownMessageKind(rawKind) }
        let message = try reader.readHybsterFields(kind)
        let authenticator = try reader.readByteString(field: "authenticator", max: limits.authenticatorBytesMax)
        guard reader.buffer.readableBytes == 0 else { throw .trailingBytes(count: reader.buffer.readableBytes) }
        return (message, authenticator)
    }

    /// The bytes the link authenticator covers: the domain prefix (protocol 2, kind), then the SHA-256 of
    /// the encoded fields (for PREPARE and FORWARD without the requests: the header's digest binds them,
    /// and the core recomputes it).
    public static func authenticatedBytes(of message: HybsterMessage) -> [UInt8] {
        var fields = ByteBuffer()
        switch message {
        case .prepare(let prepare):
            fields.writeHeader(prepare.header)
            fields.writeInteger(UInt32(truncatingIfNeeded: prepare.requests.count))
        case .forward(let forward):
            fields.writeInteger(forward.sender.rawValue)
            fields.writeHeader(forward.prepare.header)
            fields.writeInteger(UInt32(truncatingIfNeeded: forward.prepare.requests.count))
        default:
            fields.writeHybsterFields(message)
        }
        var bytes = WireCodec.protocolAuthenticationPrefix(protocolID, kind: HybsterKind(of: message).rawValue, fieldBytes: Digest.byteCount)
        bytes.append(contentsOf: Digest.of(fields.readableBytesView).bytes)
        return bytes
    }
}

extension ByteBuffer {
    mutating func writeHybsterFields(_ message: HybsterMessage) {
        switch message {
        case .request(let request, let relayedBy):
            writeInteger(relayedBy.rawValue)
            writeRequest(request)
        case .prepare(let prepare):
            writeHeader(prepare.header)
            writeRequests(prepare.requests)
        case .commit(let commit):
            writeInteger(commit.view.rawValue)
            writeInteger(commit.order.rawValue)
            writeDigest(commit.digest)
            writeInteger(commit.sender.rawValue)
            writeCertificate(commit.certificate)
        case .checkpoint(let checkpoint):
            writeCheckpoint(checkpoint)
        case .viewChange(let viewChange):
            writeViewChange(viewChange)
        case .newView(let newView):
            writeInteger(newView.view.rawValue)
            writeInteger(newView.sender.rawValue)
            writeInteger(WireCodec.wireLength(newView.viewChanges.count))
            for viewChange in newView.viewChanges { writeViewChange(viewChange) }
            writeInteger(WireCodec.wireLength(newView.reproposals.count))
            for header in newView.reproposals { writeHeader(header) }
        case .newViewAck(let ack):
            writeInteger(ack.view.rawValue)
            writeDigest(ack.reproposalsDigest)
            writeInteger(ack.sender.rawValue)
            writeInteger(WireCodec.wireLength(ack.certificates.count))
            for certificate in ack.certificates { writeCertificate(certificate) }
        case .fetch(let fetch):
            writeInteger(fetch.order.rawValue)
            writeInteger(fetch.sender.rawValue)
        case .forward(let forward):
            writeInteger(forward.sender.rawValue)
            writeHeader(forward.prepare.header)
            writeRequests(forward.prepare.requests)
        case .fetchState(let fetch):
            writeInteger(fetch.sequence.rawValue)
            writeDigest(fetch.stateDigest)
            writeInteger(fetch.offset)
            writeInteger(fetch.sender.rawValue)
        case .stateChunk(let chunk):
            writeInteger(chunk.sequence.rawValue)
            writeDigest(chunk.stateDigest)
            writeInteger(chunk.totalBytes)
            writeInteger(chunk.offset)
            writeByteString(chunk.bytes)
            writeInteger(WireCodec.wireLength(chunk.chunkDigests.count))
            for digest in chunk.chunkDigests { writeDigest(digest) }
            writeInteger(chunk.sender.rawValue)
        case .requestViewChange(let request):
            writeInteger(request.toView.rawValue)
            writeInteger(request.sender.rawValue)
        case .stableCheckpoint(let stable):
            writeInteger(stable.sequence.rawValue)
            writeDigest(stable.stateDigest)
            writeInteger(WireCodec.wireLength(stable.proof.count))
            for checkpoint in stable.proof { writeCheckpoint(checkpoint) }
            writeInteger(stable.sender.rawValue)
        }
    }

    mutating func writeRequests(_ requests: [Request]) {
        writeInteger(WireCodec.wireLength(requests.count))
        for request in requests { writeRequest(request) }
    }

    mutating func writeCertificate(_ certificate: TrustedCertificate) {
        writeInteger(certificate.kind.rawValue)
        writeInteger(certificate.subsystem.replica.rawValue)
        writeInteger(certificate.subsystem.pillar)
        writeInteger(certificate.counter)
        writeInteger(certificate.previous.view)
        writeInteger(certificate.previous.order)
        writeInteger(certificate.value.view)
        writeInteger(certificate.value.order)
        precondition(certificate.tag.count == 32, "a trusted certificate's tag is 32 bytes")
        writeBytes(certificate.tag)
    }

    mutating func writeHeader(_ header: PrepareHeader) {
        writeInteger(header.view.rawValue)
        writeInteger(header.order.rawValue)
        writeDigest(header.digest)
        writeInteger(header.sender.rawValue)
        writeCertificate(header.certificate)
    }

    mutating func writeCheckpoint(_ checkpoint: HybsterCheckpoint) {
        writeInteger(checkpoint.sequence.rawValue)
        writeDigest(checkpoint.stateDigest)
        writeInteger(checkpoint.sender.rawValue)
        writeCertificate(checkpoint.certificate)
    }

    mutating func writeViewChange(_ viewChange: HybsterViewChange) {
        writeInteger(viewChange.sender.rawValue)
        writeInteger(viewChange.fromView.rawValue)
        writeInteger(viewChange.toView.rawValue)
        writeInteger(viewChange.checkpoint.rawValue)
        writeDigest(viewChange.checkpointDigest)
        writeInteger(WireCodec.wireLength(viewChange.checkpointProof.count))
        for checkpoint in viewChange.checkpointProof { writeCheckpoint(checkpoint) }
        writeInteger(WireCodec.wireLength(viewChange.entries.count))
        for header in viewChange.entries { writeHeader(header) }
        writeInteger(WireCodec.wireLength(viewChange.chains.count))
        for chain in viewChange.chains {
            writeInteger(WireCodec.wireLength(chain.count))
            for link in chain { writeCertificate(link) }
        }
    }
}

extension PayloadReader {
    mutating func readHybsterFields(_ kind: HybsterKind) throws(WireError) -> HybsterMessage {
        switch kind {
        case .request:
            let relayedBy = try readReplicaID()
            return .request(try readRequest(), relayedBy: relayedBy)
        case .prepare:
            let header = try readHeader()
            return .prepare(HybsterPrepare(header: header, requests: try readRequests()))
        case .commit:
            let view = try readView()
            let order = try readSequence()
            let digest = try readDigest()
            let sender = try readReplicaID()
            return .commit(HybsterCommit(view: view, order: order, digest: digest, sender: sender, certificate: try readCertificate()))
        case .checkpoint:
            return .checkpoint(try readCheckpoint())
        case .viewChange:
            return .viewChange(try readViewChange())
        case .newView:
            let view = try readView()
            let sender = try readReplicaID()
            let count = try readLength(field: "view changes", max: HybsterCodec.quorumEntriesMax)
            var viewChanges: [HybsterViewChange] = []
            viewChanges.reserveCapacity(reservation(count, entryBytesMin: 64))
            for _ in 0..<count { viewChanges.append(try readViewChange()) }
            let headerCount = try readLength(field: "re-proposals", max: HybsterCodec.entriesMax)
            var headers: [PrepareHeader] = []
            headers.reserveCapacity(reservation(headerCount, entryBytesMin: HybsterCodec.headerBytes))
            for _ in 0..<headerCount { headers.append(try readHeader()) }
            return .newView(HybsterNewView(view: view, sender: sender, viewChanges: viewChanges, reproposals: headers))
        case .newViewAck:
            let view = try readView()
            let digest = try readDigest()
            let sender = try readReplicaID()
            let count = try readLength(field: "acknowledgement certificates", max: HybsterCodec.pillarsMax)
            var certificates: [TrustedCertificate] = []
            for _ in 0..<count { certificates.append(try readCertificate()) }
            return .newViewAck(HybsterNewViewAck(view: view, reproposalsDigest: digest, sender: sender, certificates: certificates))
        case .fetch:
            let order = try readSequence()
            return .fetch(HybsterFetch(order: order, sender: try readReplicaID()))
        case .forward:
            let sender = try readReplicaID()
            let header = try readHeader()
            return .forward(HybsterForward(prepare: HybsterPrepare(header: header, requests: try readRequests()), sender: sender))
        case .fetchState:
            let sequence = try readSequence()
            let digest = try readDigest()
            let offset = try readUInt64()
            return .fetchState(HybsterFetchState(sequence: sequence, stateDigest: digest, offset: offset, sender: try readReplicaID()))
        case .stateChunk:
            let sequence = try readSequence()
            let digest = try readDigest()
            let totalBytes = try readUInt64()
            let offset = try readUInt64()
            let bytes = try readByteString(field: "state chunk", max: limits.stateChunkBytes)
            let count = try readLength(field: "chunk digests", max: limits.stateChunksMax)
            var digests: [Digest] = []
            digests.reserveCapacity(reservation(count, entryBytesMin: Digest.byteCount))
            for _ in 0..<count { digests.append(try readDigest()) }
            return .stateChunk(HybsterStateChunk(sequence: sequence, stateDigest: digest, totalBytes: totalBytes, offset: offset, bytes: bytes,
                                                 chunkDigests: digests, sender: try readReplicaID()))
        case .requestViewChange:
            let toView = try readView()
            return .requestViewChange(HybsterViewChangeRequest(toView: toView, sender: try readReplicaID()))
        case .stableCheckpoint:
            let sequence = try readSequence()
            let digest = try readDigest()
            let count = try readLength(field: "checkpoint proof", max: HybsterCodec.quorumEntriesMax)
            var proof: [HybsterCheckpoint] = []
            proof.reserveCapacity(reservation(count, entryBytesMin: HybsterCodec.checkpointBytes))
            for _ in 0..<count { proof.append(try readCheckpoint()) }
            return .stableCheckpoint(HybsterStableCheckpoint(sequence: sequence, stateDigest: digest, proof: proof, sender: try readReplicaID()))
        }
    }

    mutating func readRequests() throws(WireError) -> [Request] {
        let count = try readLength(field: "batch", max: limits.batchRequestsMax)
        var requests: [Request] = []
        requests.reserveCapacity(reservation(count, entryBytesMin: 4 + 8 + 4 + 4))
        for _ in 0..<count { requests.append(try readRequest()) }
        return requests
    }

    mutating func readCertificate() throws(WireError) -> TrustedCertificate {
        let rawKind = try readUInt8()
        guard let kind = CertificateKind(rawValue: rawKind) else { throw .invalidValue(field: "certificate kind", value: UInt64(rawKind)) }
        let replica = try readReplicaID()
        let pillar = try readUInt32()
        let counter = try readUInt32()
        let previous = CounterValue(view: try readUInt64(), order: try readUInt64())
        let value = CounterValue(view: try readUInt64(), order: try readUInt64())
        guard let tag = buffer.readBytes(length: 32) else { throw .truncated }
        return TrustedCertificate(kind: kind, subsystem: TrustedSubsystemID(replica: replica, pillar: pillar), counter: counter,
                                  previous: previous, value: value, tag: tag)
    }

    mutating func readHeader() throws(WireError) -> PrepareHeader {
        let view = try readView()
        let order = try readSequence()
        let digest = try readDigest()
        let sender = try readReplicaID()
        return PrepareHeader(view: view, order: order, digest: digest, sender: sender, certificate: try readCertificate())
    }

    mutating func readCheckpoint() throws(WireError) -> HybsterCheckpoint {
        let sequence = try readSequence()
        let digest = try readDigest()
        let sender = try readReplicaID()
        return HybsterCheckpoint(sequence: sequence, stateDigest: digest, sender: sender, certificate: try readCertificate())
    }

    mutating func readViewChange() throws(WireError) -> HybsterViewChange {
        let sender = try readReplicaID()
        let fromView = try readView()
        let toView = try readView()
        let checkpoint = try readSequence()
        let checkpointDigest = try readDigest()
        let proofCount = try readLength(field: "checkpoint proof", max: HybsterCodec.quorumEntriesMax)
        var proof: [HybsterCheckpoint] = []
        proof.reserveCapacity(reservation(proofCount, entryBytesMin: HybsterCodec.checkpointBytes))
        for _ in 0..<proofCount { proof.append(try readCheckpoint()) }
        let entryCount = try readLength(field: "view-change entries", max: HybsterCodec.entriesMax)
        var entries: [PrepareHeader] = []
        entries.reserveCapacity(reservation(entryCount, entryBytesMin: HybsterCodec.headerBytes))
        for _ in 0..<entryCount { entries.append(try readHeader()) }
        let chainCount = try readLength(field: "chains", max: HybsterCodec.pillarsMax)
        var chains: [[TrustedCertificate]] = []
        for _ in 0..<chainCount {
            let links = try readLength(field: "chain links", max: HybsterViewChangeState.chainLinksMax)
            var chain: [TrustedCertificate] = []
            chain.reserveCapacity(reservation(links, entryBytesMin: HybsterCodec.certificateBytes))
            for _ in 0..<links { chain.append(try readCertificate()) }
            chains.append(chain)
        }
        return HybsterViewChange(sender: sender, fromView: fromView, toView: toView, checkpoint: checkpoint, checkpointDigest: checkpointDigest,
                                 checkpointProof: proof, entries: entries, chains: chains)
    }
}
