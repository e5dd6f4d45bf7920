// A read-only request is authenticated over its own kind byte: it verifies only as a read-only request, and an
// ordered request only as one, in every scheme. So a replica (or anyone who saw a read) cannot get it ordered:
// a write sent as a read would otherwise run once through a faulty replica and once more through the
// client's fallback.
import Testing
import ThemisCore
import ThemisCrypto
import ThemisWire

@Suite struct ReadOnlyAuthenticationTests {
    @Test("A read-only request never verifies as an ordered one, nor the reverse", arguments: [AuthenticationScheme.hmac, .ed25519, .ecdsa])
    func kindsAreSeparate(scheme: AuthenticationScheme) {
        let cluster = TestCluster(scheme: scheme, replicas: 4, clients: 1)
        let unsigned = Request(client: ClientID(0), timestamp: Timestamp(5), operation: [1, 2, 3])
        let clientKeys = cluster.keyring(client(0))
        let asRead = unsigned.withAuthenticator(clientKeys.authenticator(for: WireCodec.authenticatedBytes(ofReadOnly: unsigned), audience: .allReplicas))
        let asOrdered = unsigned.withAuthenticator(clientKeys.authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas))
        for id in 0..<4 {
            let keyring = cluster.keyring(replica(UInt32(id)))
            #expect(keyring.isAuthentic(readOnly: asRead))
            #expect(!keyring.isAuthentic(asRead), "replica \(id) took a read-only authenticator for an ordered request")
            #expect(keyring.isAuthentic(asOrdered))
            #expect(!keyring.isAuthentic(readOnly: asOrdered))
        }
    }
}
