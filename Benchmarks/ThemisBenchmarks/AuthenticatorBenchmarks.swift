// Authenticating and verifying messages with every authentication scheme (ThemisCrypto's Keyring and
// MessageVerifier), in a 4-replica cluster with one client.
import Benchmark
import ThemisCore
import ThemisCrypto
import ThemisDriver
import ThemisPBFT
import ThemisWire

/// The keyrings of the principals that take part: replica 1 sends, replica 2 checks, client 0 signs a
/// request. Built in the benchmark's setup (RSA key generation takes up to a second per key).
final class AuthenticatorFixture {
    let scheme: AuthenticationScheme
    private(set) var sender: Keyring?
    private(set) var client: Keyring?
    private(set) var verifier: MessageVerifier?
    /// Replica 2's ingress (what the shell runs on each connection's event loop).
    private(set) var ingress: Ingress<PBFT>?

    static let prepare = PBFTMessage.prepare(
        Prepare(view: View(3), sequence: SequenceNumber(41), digest: Digest(word0: 1, word1: 2, word2: 3, word3: 4), sender: ReplicaID(1)))
    static let request = Request(client: ClientID(0), timestamp: Timestamp(42), operation: [UInt8](repeating: 0x5A, count: 100))

    init(scheme: AuthenticationScheme) {
        self.scheme = scheme
    }

    func prepareKeys() throws {
        guard sender == nil else { return }
        let replicas = (0..<4).map { Principal.replica(ReplicaID(UInt32($0))) }
        let clientPrincipal = Principal.client(ClientID(0))
        var keys: [Principal: PrivateKeys] = [:]
        for (index, principal) in (replicas + [clientPrincipal]).enumerated() {
            if scheme == .rsa {
                keys[principal] = PrivateKeys.generate(scheme: .rsa)
            } else {
                // Deterministic keys, so every run measures the same keys.
                var seed = [UInt8](repeating: 0x42, count: 32)
                seed[0] = UInt8(index)
                keys[principal] = try PrivateKeys.derive(scheme: scheme, seed: seed)
            }
        }
        let file = ClusterFile(
            authentication: scheme,
            replicas: (0..<4).map { index in
                let mine = keys[replicas[index]]!
                return ClusterFile.Replica(id: UInt32(index), host: "127.0.0.1", port: 7000 + index,
                                           signingKey: mine.publicSigningKey, agreementKey: mine.publicAgreementKey)
            },
            clients: [ClusterFile.Client(id: 0, signingKey: keys[clientPrincipal]!.publicSigningKey,
                                         agreementKey: keys[clientPrincipal]!.publicAgreementKey)]
        )
        sender = try Keyring(cluster: file, me: replicas[1], keys: keys[replicas[1]]!)
        client = try Keyring(cluster: file, me: clientPrincipal, keys: keys[clientPrincipal]!)
        let receiver = try Keyring(cluster: file, me: replicas[2], keys: keys[replicas[2]]!)
        verifier = MessageVerifier(keyring: receiver)
        ingress = Ingress<PBFT>(keyring: receiver, limits: file.limits)
    }
}

func registerAuthenticatorBenchmarks() {
    for scheme in [AuthenticationScheme.hmac, .ed25519, .ecdsa, .rsa] {
        let fixture = AuthenticatorFixture(scheme: scheme)
        // A MAC takes about a microsecond, a signature tens to thousands.
        let scaling: BenchmarkScalingFactor = scheme == .hmac ? .kilo : .one
        let setup: () async throws -> Void = { try fixture.prepareKeys() }

        // What the replica shell does for each outgoing PREPARE: canonical bytes, then the authenticator
        // for all replicas (hmac: a vector of 4 MACs; signatures: one signature).
        Benchmark("Auth \(scheme.rawValue) authenticate Prepare", configuration: configuration(scaling: scaling), closure: { benchmark in
            let keyring = fixture.sender!
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(keyring.authenticator(for: WireCodec.authenticatedBytes(of: AuthenticatorFixture.prepare), audience: .allReplicas))
            }
        }, setup: setup)

        // What replica 2 does for each incoming PREPARE: the shell's ingress (sender check, the plug-in's verifier).
        Benchmark("Auth \(scheme.rawValue) verify Prepare", configuration: configuration(scaling: scaling), closure: { benchmark in
            let authenticator = fixture.sender!.authenticator(
                for: WireCodec.authenticatedBytes(of: AuthenticatorFixture.prepare), audience: .allReplicas)
            let ingress = fixture.ingress!
            let sender = AuthenticatorFixture.prepare.sender
            guard case .success = ingress.admit(AuthenticatorFixture.prepare, authenticator: authenticator, from: sender) else {
                fatalError("the sample PREPARE does not verify")
            }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(ingress.admit(AuthenticatorFixture.prepare, authenticator: authenticator, from: sender))
            }
        }, setup: setup)

        // What a client does for each request (ClientDriver): canonical bytes, authenticator for all replicas.
        Benchmark("Auth \(scheme.rawValue) authenticate Request", configuration: configuration(scaling: scaling), closure: { benchmark in
            let keyring = fixture.client!
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(keyring.authenticator(for: WireCodec.authenticatedBytes(of: AuthenticatorFixture.request), audience: .allReplicas))
            }
        }, setup: setup)

        // What a replica does for each client request it receives.
        Benchmark("Auth \(scheme.rawValue) verify Request", configuration: configuration(scaling: scaling), closure: { benchmark in
            let unsigned = AuthenticatorFixture.request
            let tag = fixture.client!.authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas)
            let signed = Request(client: unsigned.client, timestamp: unsigned.timestamp, operation: unsigned.operation, authenticator: tag)
            let verifier = fixture.verifier!
            precondition(verifier.isAuthentic(signed))
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(verifier.isAuthentic(signed))
            }
        }, setup: setup)
    }
}
