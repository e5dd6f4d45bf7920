// `themis keygen --tls`: a certificate authority for the cluster and one certificate per replica, issued for
// the replica's host (an IP address or a DNS name, as written in cluster.json).
import Crypto
import FoundationEssentials
import SwiftASN1
import ThemisCore
import ThemisCrypto
import X509
#if canImport(Glibc)
import Glibc
#endif

enum TLSCertificates {
    /// Writes `tls-ca.key` (the authority's private key, needed only to issue more certificates: keep it
    /// offline), `replica-<id>.tls.pem` per replica (its certificate and private key) and puts the authority's
    /// certificate into `cluster.json` (`tls.certificateAuthority`). Run after the cluster file was written.
    /// - Returns: the cluster file with `tls`.
    static func issue(directory: String, cluster: ClusterFile) throws -> ClusterFile {
        let now = Date()
        let authorityKey = P256.Signing.PrivateKey()
        let authorityName = try DistinguishedName {
            CommonName("Themis cluster \(hexadecimal(cluster.clusterTag)) certificate authority")
        }
        let authority = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(),
            publicKey: .init(authorityKey.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 10 * 365 * 86_400,
            issuer: authorityName, subject: authorityName, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(authorityKey))
        let authorityPEM = try authority.serializeAsPEM().pemString
        try writeFile(directory + "/tls-ca.key", authorityKey.pemRepresentation + "\n", ownerOnly: true)
        for replica in cluster.replicas {
            let key = P256.Signing.PrivateKey()
            let certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(),
                publicKey: .init(key.publicKey),
                notValidBefore: now - 3600, notValidAfter: now + 10 * 365 * 86_400,
                issuer: authorityName,
                subject: try DistinguishedName { CommonName("Themis replica \(replica.id)") },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames([name(of: replica.host)])
                },
                issuerPrivateKey: .init(authorityKey))
            let pem = try certificate.serializeAsPEM().pemString + "\n" + key.pemRepresentation + "\n"
            try writeFile(ClusterFile.tlsIdentityPath(directory: directory, replica: ReplicaID(replica.id)), pem, ownerOnly: true)
        }
        var file = cluster
        file.tls = ClusterFile.TLS(certificateAuthority: authorityPEM + "\n")
        try file.write(to: directory + "/cluster.json")
        return file
    }

    /// The certificate's name for a host: its address if it is one, else a DNS name.
    static func name(of host: String) -> GeneralName {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, let bytes = Optional(parts.compactMap { UInt8($0) }), bytes.count == 4 {
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let b = v6.__in6_u.__u6_addr8
            let bytes: [UInt8] = [b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7, b.8, b.9, b.10, b.11, b.12, b.13, b.14, b.15]
            return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))
        }
        return .dnsName(host)
    }

    static func hexadecimal(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func writeFile(_ path: String, _ text: String, ownerOnly: Bool) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, ownerOnly ? 0o600 : 0o644)
        guard descriptor >= 0 else { throw DemoError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let rest = Array(bytes[written...])
            let count = write(descriptor, rest, rest.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw DemoError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += count
        }
    }
}
