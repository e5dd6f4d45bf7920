// TLS under the authenticated handshake: when cluster.json has `"tls"`, every link (replica to replica,
// client to replica) runs TLS 1.3 first and the Themis handshake inside it. The replica that accepts
// presents its certificate (issued by the cluster's authority for its host); whoever connects verifies it
// against that authority and the host it dialled. No client certificates: who is on each end is proven by the
// Themis handshake (its keys), as without TLS; TLS adds confidentiality and keeps a man in the middle out of
// the byte stream.
import NIOCore
import NIOSSL
import ThemisCrypto
import ThemisTransport

/// Why TLS cannot be set up: names the file or field and what is wrong with it.
public struct TLSSetupError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The TLS side of one process: a context for the connections it accepts (replicas only) and one for those
/// it opens. Built once at start-up; the contexts are shared by every connection.
public struct TLSContexts: Sendable {
    /// For accepted connections: nil for a client, which accepts none.
    public let server: NIOSSLContext?
    /// For connections this process opens (to replicas).
    public let client: NIOSSLContext

    /// - Parameters:
    ///   - cluster: its `tls` holds the authority every peer's certificate is checked against.
    ///   - identityPEM: a replica's certificate and private key (PEM, `replica-<id>.tls.pem`); nil for a client.
    ///   - identitySource: the file `identityPEM` came from, named in errors.
    /// - Returns: nil when the cluster runs without TLS.
    public static func make(cluster: ClusterFile, identityPEM: [UInt8]?, identitySource: String = "the TLS identity")
        throws(TLSSetupError) -> TLSContexts? {
        guard let tls = cluster.tls else { return nil }
        let authority: [NIOSSLCertificate]
        do {
            authority = try NIOSSLCertificate.fromPEMBytes(Array(tls.certificateAuthority.utf8))
        } catch {
            throw TLSSetupError("cluster.json tls.certificateAuthority is not a PEM certificate: \(error)")
        }
        guard !authority.isEmpty else { throw TLSSetupError("cluster.json tls.certificateAuthority holds no certificate") }
        var clientConfiguration = TLSConfiguration.makeClientConfiguration()
        clientConfiguration.minimumTLSVersion = .tlsv13
        clientConfiguration.trustRoots = .certificates(authority)
        clientConfiguration.certificateVerification = .fullVerification
        let client: NIOSSLContext
        do {
            client = try NIOSSLContext(configuration: clientConfiguration)
        } catch {
            throw TLSSetupError("cannot set up TLS for outgoing connections: \(error)")
        }
        guard let identityPEM else { return TLSContexts(server: nil, client: client) }
        let certificates = PEMBlocks.blocks(in: identityPEM, label: "CERTIFICATE")
        let keys = PEMBlocks.blocks(in: identityPEM, label: "PRIVATE KEY") + PEMBlocks.blocks(in: identityPEM, label: "EC PRIVATE KEY")
        guard !certificates.isEmpty else { throw TLSSetupError("\(identitySource) holds no certificate (-----BEGIN CERTIFICATE-----)") }
        guard keys.count == 1 else {
            throw TLSSetupError("\(identitySource) must hold exactly one private key (-----BEGIN PRIVATE KEY-----), it holds \(keys.count)")
        }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try certificates.flatMap { try NIOSSLCertificate.fromPEMBytes($0) }
        } catch {
            throw TLSSetupError("\(identitySource): a certificate does not parse: \(error)")
        }
        do {
            key = try NIOSSLPrivateKey(bytes: keys[0], format: .pem)
        } catch {
            throw TLSSetupError("\(identitySource): the private key does not parse: \(error)")
        }
        var serverConfiguration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        serverConfiguration.minimumTLSVersion = .tlsv13
        let server: NIOSSLContext
        do {
            server = try NIOSSLContext(configuration: serverConfiguration)
        } catch {
            // BoringSSL refuses a key that does not match the certificate here.
            throw TLSSetupError("\(identitySource): the certificate and private key cannot be used together: \(error)")
        }
        return TLSContexts(server: server, client: client)
    }

    /// Puts TLS in front of an accepted connection (call before the Themis handlers are added).
    public func addServerHandler(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        guard let server else { preconditionFailure("a client's TLS contexts accept no connection") }
        try pipeline.addHandler(NIOSSLServerHandler(context: server))
        try pipeline.addHandler(TLSFailureHandler())
    }

    /// Puts TLS in front of a connection to `host` (as written in cluster.json): the replica's certificate
    /// must be issued by the cluster's authority for that name or address.
    public func addClientHandler(to pipeline: ChannelPipeline.SynchronousOperations, host: String) throws {
        // A name is sent (SNI) and checked; an address is checked against the certificate's IP addresses.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        try pipeline.addHandler(NIOSSLClientHandler(context: client, serverHostname: isAddress ? nil : host))
        try pipeline.addHandler(TLSFailureHandler())
    }
}

/// A TLS handshake that failed: the peer spoke no TLS, or one side refused the other's certificate.
public struct TLSHandshakeFailed: PeerFault, Sendable {
    public let reason: String
    public var rejectionKind: String { "tls" }
    public var description: String { "TLS handshake failed: \(reason)" }
}

/// Behind the TLS handler: turns its handshake failure into a `PeerFault`, which the Themis handshake handler
/// counts as a rejection of kind `tls` (other TLS errors, such as a peer gone without close_notify, pass on
/// as I/O errors).
final class TLSFailureHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let failure = error as? NIOSSLError, case .handshakeFailed = failure {
            context.fireErrorCaught(TLSHandshakeFailed(reason: "\(failure)"))
        } else {
            context.fireErrorCaught(error)
        }
    }
}

/// PEM text split into its blocks (`-----BEGIN LABEL----- ... -----END LABEL-----`).
enum PEMBlocks {
    static func blocks(in pem: [UInt8], label: String) -> [[UInt8]] {
        let begin = Array("-----BEGIN \(label)-----".utf8)
        let end = Array("-----END \(label)-----".utf8)
        var found: [[UInt8]] = []
        var position = 0
        while let start = find(begin, in: pem, from: position), let stop = find(end, in: pem, from: start + begin.count) {
            found.append(Array(pem[start..<(stop + end.count)]) + [0x0A])
            position = stop + end.count
        }
        return found
    }

    /// The index where `needle` starts in `haystack` at or after `from`, if it does.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
        for index in from...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        }
        return nil
    }
}
