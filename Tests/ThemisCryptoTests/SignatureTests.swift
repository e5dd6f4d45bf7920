// Proves that each signature scheme authenticates exactly the signed bytes from exactly the signer:
// signatures round-trip, and another key, a flipped bit or any garbage authenticator is rejected without
// trapping. Clusters come from derived keys (two shared RSA keys, since RSA generation is slow).
import Testing
import ThemisCore
import ThemisCrypto

@Suite struct SignatureTests {
    static let signatureSchemes: [AuthenticationScheme] = [.ed25519, .ecdsa, .rsa, .simulatedInsecure]
    let message: [UInt8] = Array("PREPARE view 3 seq 17".utf8)

    @Test(arguments: signatureSchemes)
    func aSignatureVerifiesForEveryPrincipal(scheme: AuthenticationScheme) {
        let cluster = TestCluster(scheme: scheme)
        let signature = cluster.keyring(replica(1)).authenticator(for: message, audience: .allReplicas)
        #expect(!signature.isEmpty)
        for verifier in [replica(0), replica(1), replica(2), replica(3), client(0)] {
            #expect(cluster.keyring(verifier).verify(message, authenticator: signature, from: replica(1)))
        }
        // The audience does not matter for signatures.
        let direct = cluster.keyring(client(1)).authenticator(for: message, audience: .principal(replica(2)))
        #expect(cluster.keyring(replica(2)).verify(message, authenticator: direct, from: client(1)))
    }

    @Test(arguments: signatureSchemes)
    func aSignatureByAnotherKeyFails(scheme: AuthenticationScheme) {
        let cluster = TestCluster(scheme: scheme)
        let signature = cluster.keyring(replica(1)).authenticator(for: message, audience: .allReplicas)
        #expect(!cluster.keyring(replica(2)).verify(message, authenticator: signature, from: replica(0)))
    }

    @Test(arguments: signatureSchemes)
    func aFlippedBitFails(scheme: AuthenticationScheme) {
        let cluster = TestCluster(scheme: scheme)
        let signature = cluster.keyring(replica(1)).authenticator(for: message, audience: .allReplicas)
        let verifier = cluster.keyring(replica(2))
        for index in [0, signature.count / 2, signature.count - 1] {
            var tampered = signature
            tampered[index] ^= 0x01
            #expect(!verifier.verify(message, authenticator: tampered, from: replica(1)))
        }
        var tamperedMessage = message
        tamperedMessage[3] ^= 0x80
        #expect(!verifier.verify(tamperedMessage, authenticator: signature, from: replica(1)))
    }

    @Test(arguments: signatureSchemes)
    func garbageAuthenticatorsAreRejectedWithoutTrapping(scheme: AuthenticationScheme) {
        let cluster = TestCluster(scheme: scheme)
        let signature = cluster.keyring(replica(1)).authenticator(for: message, audience: .allReplicas)
        let verifier = cluster.keyring(replica(2))
        var generator = SystemRandomNumberGenerator()
        let candidates: [[UInt8]] = [
            [], [0], Array(signature.dropLast()), signature + [0], [UInt8](repeating: 0, count: signature.count),
            [UInt8](repeating: 0xFF, count: signature.count),
            (0..<100_000).map { _ in UInt8.random(in: 0...255, using: &generator) },
        ]
        for candidate in candidates {
            #expect(!verifier.verify(message, authenticator: candidate, from: replica(1)))
        }
    }

    @Test(arguments: signatureSchemes)
    func unknownSendersAndClientToClientAreRejected(scheme: AuthenticationScheme) {
        let cluster = TestCluster(scheme: scheme)
        let signature = cluster.keyring(client(1)).authenticator(for: message, audience: .allReplicas)
        #expect(!cluster.keyring(replica(0)).verify(message, authenticator: signature, from: client(99)))
        #expect(!cluster.keyring(replica(0)).verify(message, authenticator: signature, from: replica(99)))
        // A client only listens to replicas.
        #expect(!cluster.keyring(client(0)).verify(message, authenticator: signature, from: client(1)))
        #expect(cluster.keyring(replica(0)).verify(message, authenticator: signature, from: client(1)))
    }

    @Test("The simulator's insecure stand-in is refused in a cluster file and on command lines")
    func theSimulatedSchemeIsNotDeployable() throws {
        #expect(AuthenticationScheme(deployable: "simulated-insecure") == nil)
        #expect(AuthenticationScheme(deployable: "ed25519") == .ed25519)
        #expect(!AuthenticationScheme.deployable.contains(.simulatedInsecure))
        let json = String(decoding: TestCluster(scheme: .simulatedInsecure).file.json, as: UTF8.self)
        #expect(json.contains("\"simulated-insecure\""))
        // Read from a file or built in memory, validation refuses it (and so loading and every Keyring).
        #expect {
            try ClusterFile.decode(json: Array(json.utf8), source: "c.json").validated(source: "c.json")
        } throws: { error in
            "\(error)".contains("c.json") && "\(error)".contains("simulator's insecure stand-in")
        }
        let cluster = TestCluster(scheme: .simulatedInsecure)
        #expect(throws: ConfigurationError.invalidField(file: "c.json", field: "authentication", problem: .notDeployable("simulated-insecure"))) {
            try cluster.file.validated(source: "c.json")
        }
        #expect(throws: ConfigurationError.self) {
            try Keyring(cluster: cluster.file, me: replica(0), keys: cluster.keys[replica(0)]!)
        }
    }

    @Test("With the simulator's signature memo, a good signature is accepted again and a forgery is still refused", arguments: [AuthenticationScheme.ed25519, .simulatedInsecure])
    func theSignatureMemoNeverAcceptsAForgery(scheme: AuthenticationScheme) throws {
        let cluster = TestCluster(scheme: scheme)
        let memo = SignatureMemo()
        let validated = try cluster.file.validated(source: "cluster.json", allowingSimulatedScheme: true)
        let verifiers = try [replica(0), replica(2)].map { try Keyring(validated: validated, me: $0, keys: cluster.keys[$0]!, signatureMemo: memo) }
        let signature = cluster.keyring(replica(1)).authenticator(for: message, audience: .allReplicas)
        for verifier in verifiers + verifiers {
            #expect(verifier.verify(message, authenticator: signature, from: replica(1)))
            // Remembered for replica 1 over these bytes only: not for another signer, other bytes or other tags.
            #expect(!verifier.verify(message, authenticator: signature, from: replica(3)))
            #expect(!verifier.verify(message + [0], authenticator: signature, from: replica(1)))
            var tampered = signature
            tampered[0] ^= 0x01
            #expect(!verifier.verify(message, authenticator: tampered, from: replica(1)))
            // The length goes into the key: the same bytes split differently are not the same pair.
            #expect(!verifier.verify(Array(message.dropFirst()), authenticator: signature + [message[0]], from: replica(1)))
        }
    }
}
