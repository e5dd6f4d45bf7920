import ThemisCore

/// The exact bytes that are signed or MACed for each kind of authenticated thing.
///
/// Every one is `"THEMIS/1"`, then the kind byte of the message that carries the authenticator (a
/// `MessageKind`, different for every kind, so a signed request can never pass as a reply; a protocol
/// plug-in's message adds the protocol id and its own kind byte: `protocolAuthenticationPrefix`), then the
/// fields, as fixed-width big-endian integers and 32-byte digests. Variable-length data is bound
/// through its digest, so the bytes are short and every kind has a fixed layout.
extension WireCodec {
    /// The domain that starts every authenticated byte string: 8 ASCII bytes.
    public static let authenticationDomain: [UInt8] = Array("THEMIS/1".utf8)

    /// The bytes a client authenticates for its request: the request digest, which already covers
    /// client, timestamp and operation.
    public static func authenticatedBytes(of request: Request) -> [UInt8] {
        var bytes = authenticationPrefix(.request, fieldBytes: digestBytes)
        bytes.appendDigest(request.digest)
        return bytes
    }

    /// The bytes a client authenticates for a read-only request: as for a request, under the
    /// `readOnlyRequest` kind byte (a read-only request can never pass as an ordered one, nor the reverse).
    public static func authenticatedBytes(ofReadOnly request: Request) -> [UInt8] {
        var bytes = authenticationPrefix(.readOnlyRequest, fieldBytes: digestBytes)
        bytes.appendDigest(request.digest)
        return bytes
    }

    /// The bytes a replica authenticates for a reply: view, timestamp, client, replica, and the
    /// SHA-256 of the result (`Digest.of(result)`), under the `tentativeReply` kind byte for a tentative one.
    public static func authenticatedBytes(of reply: Reply) -> [UInt8] {
        var bytes = authenticationPrefix(reply.tentative ? .tentativeReply : .reply, fieldBytes: 8 + 8 + 4 + 4 + digestBytes)
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

    /// The start of the bytes a protocol plug-in authenticates for one of its messages: the domain, the
    /// `replica` kind byte, the protocol id and the plug-in's own kind byte, in an array with room for
    /// `fieldBytes` more. The protocol id keeps two protocols' messages apart even where their kind numbers
    /// agree, and the `replica` byte keeps them apart from the framework's own kinds.
    @inlinable
    package static func protocolAuthenticationPrefix(_ protocolID: ProtocolID, kind: UInt8, fieldBytes: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(authenticationDomain.count + 3 + fieldBytes)
        bytes.append(contentsOf: authenticationDomain)
        bytes.append(replicaKindByte)
        bytes.append(protocolID.rawValue)
        bytes.append(kind)
        return bytes
    }

    /// The domain and kind byte, in an array with room for `fieldBytes` more.
    package static func authenticationPrefix(_ kind: MessageKind, fieldBytes: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(authenticationDomain.count + 1 + fieldBytes)
        bytes.append(contentsOf: authenticationDomain)
        bytes.append(kind.rawValue)
        return bytes
    }
}

extension [UInt8] {
    @inlinable
    package mutating func appendBigEndian<Integer: FixedWidthInteger>(_ value: Integer) {
        for shift in stride(from: Integer.bitWidth - 8, through: 0, by: -8) {
            append(UInt8(truncatingIfNeeded: value >> shift))
        }
    }

    @inlinable
    package mutating func appendDigest(_ digest: Digest) {
        appendBigEndian(digest.word0)
        appendBigEndian(digest.word1)
        appendBigEndian(digest.word2)
        appendBigEndian(digest.word3)
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
