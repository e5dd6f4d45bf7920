import ThemisCore

/// The exact bytes that are signed or MACed for each kind of authenticated thing.
///
/// Every one is `"THEMIS/1"`, then the kind byte of the message that carries the authenticator (a
/// `MessageKind`, different for every kind, so a signed PREPARE can never pass as a COMMIT), then the
/// fields, as fixed-width big-endian integers and 32-byte digests. Variable-length data is bound
/// through its digest, so the bytes are short and every kind has a fixed layout.
extension WireCodec {
    /// The domain that starts every authenticated byte string: 8 ASCII bytes.
    public static let authenticationDomain: [UInt8] = Array("THEMIS/1".utf8)

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
    /// - COMMITTED-BATCHES: sender, body digest (every pre-prepare with its whole batch).
    ///
    /// A body digest is the SHA-256 of the message's complete encoded fields (everything the codec
    /// writes between the kind byte and the outer authenticator, nested authenticators and batches
    /// included), so the outer authenticator binds every certificate and re-proposed batch inside.
    public static func authenticatedBytes(of message: PBFTMessage) -> [UInt8] {
        let kind = MessageKind(of: message)
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

    /// The bytes a client authenticates for its request: the request digest, which already covers
    /// client, timestamp and operation.
    public static func authenticatedBytes(of request: Request) -> [UInt8] {
        var bytes = authenticationPrefix(.request, fieldBytes: digestBytes)
        bytes.appendDigest(request.digest)
        return bytes
    }

    /// The bytes a replica authenticates for a reply: view, timestamp, client, replica, and the
    /// SHA-256 of the result (`Digest.of(result)`).
    public static func authenticatedBytes(of reply: Reply) -> [UInt8] {
        var bytes = authenticationPrefix(.reply, fieldBytes: 8 + 8 + 4 + 4 + digestBytes)
        bytes.appendBigEndian(reply.view.rawValue)
        bytes.appendBigEndian(reply.timestamp.rawValue)
        bytes.appendBigEndian(reply.client.rawValue)
        bytes.appendBigEndian(reply.replica.rawValue)
        bytes.appendDigest(Digest.of(reply.result))
        return bytes
    }

    /// The handshake transcript that a `HelloProof` authenticates: the prover's hello (principal,
    /// nonce, cluster tag), then the verifier's hello. Binding both nonces means a proof cannot be
    /// replayed on another connection; the order means it cannot be reflected back to its maker.
    public static func handshakeTranscript(prover: Hello, verifier: Hello) -> [UInt8] {
        helloPair(.helloProof, prover: prover, verifier: verifier)
    }

    /// What an `attachClient` proof authenticates: the attached client's Hello (its id with the connection's
    /// client nonce) and the replica's Hello, under the attachClient kind byte, so that a handshake proof
    /// can never be replayed as an attach proof or the other way round.
    public static func attachTranscript(prover: Hello, verifier: Hello) -> [UInt8] {
        helloPair(.attachClient, prover: prover, verifier: verifier)
    }

    /// The domain, `kind`, and both Hellos.
    private static func helloPair(_ kind: MessageKind, prover: Hello, verifier: Hello) -> [UInt8] {
        let helloFieldBytes = principalBytes + Hello.nonceByteCount + 8
        var bytes = authenticationPrefix(kind, fieldBytes: 2 * helloFieldBytes)
        bytes.appendHello(prover)
        bytes.appendHello(verifier)
        return bytes
    }

    /// The domain and kind byte, in an array with room for `fieldBytes` more.
    static func authenticationPrefix(_ kind: MessageKind, fieldBytes: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(authenticationDomain.count + 1 + fieldBytes)
        bytes.append(contentsOf: authenticationDomain)
        bytes.append(kind.rawValue)
        return bytes
    }
}

extension [UInt8] {
    mutating func appendBigEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        for shift in stride(from: Integer.bitWidth - 8, through: 0, by: -8) {
            append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    mutating func appendDigest(_ digest: Digest) {
        appendBigEndian(digest.word0)
        appendBigEndian(digest.word1)
        appendBigEndian(digest.word2)
        appendBigEndian(digest.word3)
    }

    fileprivate mutating func appendSlot(_ view: View, _ sequence: SequenceNumber, _ digest: Digest, _ sender: ReplicaID) {
        appendBigEndian(view.rawValue)
        appendBigEndian(sequence.rawValue)
        appendDigest(digest)
        appendBigEndian(sender.rawValue)
    }

    /// A hello in a transcript: the nonce has a fixed length, so it needs no length prefix here.
    fileprivate mutating func appendHello(_ hello: Hello) {
        switch hello.principal {
        case .replica(let id):
            append(PrincipalKind.replica.rawValue)
            appendBigEndian(id.rawValue)
        case .client(let id):
            append(PrincipalKind.client.rawValue)
            appendBigEndian(id.rawValue)
        }
        append(contentsOf: hello.nonce)
        appendBigEndian(hello.clusterTag)
    }
}
