// Proves that a handshake proof convinces only the intended peer, for exactly one transcript and one
// prover: each scheme's keyrings make proofs that are then checked with the right and wrong transcripts,
// peers and provers (including a proof reflected back to its maker).
import Testing
import ThemisCore
import ThemisCrypto

@Suite struct HandshakeProofTests {
    let transcript: [UInt8] = Array("hello replica 1, nonces 0102 0304".utf8)

    @Test(arguments: [AuthenticationScheme.hmac, .ed25519, .ecdsa])
    func aProofVerifiesOnlyForTheRightTranscriptAndPeer(scheme: AuthenticationScheme) {
        let cluster = TestCluster(scheme: scheme)
        let proof = cluster.keyring(replica(0)).handshakeProof(transcript: transcript, peer: replica(1))
        #expect(proof.count == 32)
        let peer = cluster.keyring(replica(1))
        #expect(peer.verifyHandshakeProof(proof, transcript: transcript, from: replica(0)))
        #expect(!peer.verifyHandshakeProof(proof, transcript: transcript + [1], from: replica(0)))
        #expect(!peer.verifyHandshakeProof(proof, transcript: transcript, from: replica(2)))
        #expect(!cluster.keyring(replica(2)).verifyHandshakeProof(proof, transcript: transcript, from: replica(0)))
    }

    @Test func aReflectedProofFails() {
        let cluster = TestCluster(scheme: .hmac)
        let proof = cluster.keyring(replica(0)).handshakeProof(transcript: transcript, peer: replica(1))
        // Replica 0 must not accept its own proof as if replica 1 had made it.
        #expect(!cluster.keyring(replica(0)).verifyHandshakeProof(proof, transcript: transcript, from: replica(1)))
    }

    @Test func clientsProveThemselvesToReplicas() {
        let cluster = TestCluster(scheme: .ed25519)
        let proof = cluster.keyring(client(1)).handshakeProof(transcript: transcript, peer: replica(3))
        #expect(cluster.keyring(replica(3)).verifyHandshakeProof(proof, transcript: transcript, from: client(1)))
        #expect(!cluster.keyring(replica(3)).verifyHandshakeProof(proof, transcript: transcript, from: client(0)))
        let answer = cluster.keyring(replica(3)).handshakeProof(transcript: transcript, peer: client(1))
        #expect(cluster.keyring(client(1)).verifyHandshakeProof(answer, transcript: transcript, from: replica(3)))
    }

    @Test func malformedProofsFail() {
        let cluster = TestCluster(scheme: .hmac)
        let peer = cluster.keyring(replica(1))
        for proof in [[], [UInt8](repeating: 0, count: 31), [UInt8](repeating: 0, count: 32), [UInt8](repeating: 1, count: 33)] {
            #expect(!peer.verifyHandshakeProof(proof, transcript: transcript, from: replica(0)))
        }
        #expect(cluster.keyring(client(0)).handshakeProof(transcript: transcript, peer: client(1)).isEmpty)
    }
}
