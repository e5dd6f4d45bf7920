// Proves the `hmac` scheme's pairwise MACs: a vector for all replicas where each replica checks only its
// own entry, single MACs between a client and a replica, and that no other link key can forge an entry,
// by having every principal of a 4-replica cluster make and check MACs, including forged and mis-sized ones.
import Testing
import ThemisCore
import ThemisCrypto

@Suite struct HMACAuthenticatorTests {
    let cluster = TestCluster(scheme: .hmac, replicas: 4, clients: 2)
    let message: [UInt8] = Array("REQUEST client 0 t7 put x".utf8)

    @Test func everyReplicaVerifiesItsEntryOfAVector() {
        let vector = cluster.keyring(client(0)).authenticator(for: message, audience: .allReplicas)
        #expect(vector.count == 4 * 32)
        for id in UInt32(0)..<4 {
            #expect(cluster.keyring(replica(id)).verify(message, authenticator: vector, from: client(0)))
        }
    }

    @Test("A replica's own entry is made with its key with itself: it recognises its message forwarded back, others cannot forge it")
    func aReplicasOwnEntryLetsItRecogniseItsMessage() {
        let vector = cluster.keyring(replica(2)).authenticator(for: message, audience: .allReplicas)
        #expect(vector[64..<96].contains { $0 != 0 })
        for id: UInt32 in [0, 1, 2, 3] {
            #expect(cluster.keyring(replica(id)).verify(message, authenticator: vector, from: replica(2)))
        }
        // Replica 1 cannot make a vector that replica 2 accepts as its own message.
        let forged = cluster.keyring(replica(1)).authenticator(for: message, audience: .allReplicas)
        #expect(!cluster.keyring(replica(2)).verify(message, authenticator: forged, from: replica(2)))
    }

    @Test func anEntryCannotBeForgedWithAnotherLinkKey() {
        // Replica 2 knows its own link with client 0, not replica 1's: it cannot make replica 1 accept a
        // MAC in client 0's name.
        let forgedVector = cluster.keyring(replica(2)).authenticator(for: message, audience: .allReplicas)
        #expect(!cluster.keyring(replica(1)).verify(message, authenticator: forgedVector, from: client(0)))
        let forgedSingle = cluster.keyring(replica(2)).authenticator(for: message, audience: .principal(replica(1)))
        #expect(!cluster.keyring(replica(1)).verify(message, authenticator: forgedSingle, from: client(0)))
        // Moving another replica's entry into my slot does not help either.
        var vector = cluster.keyring(client(0)).authenticator(for: message, audience: .allReplicas)
        vector.replaceSubrange(32..<64, with: vector[96..<128])
        #expect(!cluster.keyring(replica(1)).verify(message, authenticator: vector, from: client(0)))
        #expect(cluster.keyring(replica(3)).verify(message, authenticator: vector, from: client(0)))
    }

    @Test func aTamperedMessageOrTagFails() {
        let vector = cluster.keyring(client(0)).authenticator(for: message, audience: .allReplicas)
        var tampered = vector
        tampered[33] ^= 0x01
        #expect(!cluster.keyring(replica(1)).verify(message, authenticator: tampered, from: client(0)))
        #expect(!cluster.keyring(replica(1)).verify(message + [0], authenticator: vector, from: client(0)))
    }

    @Test(arguments: [0, 1, 31, 33, 64, 96, 127, 129, 160, 100_000])
    func tagsOfAnyOtherLengthFail(length: Int) {
        let tag = [UInt8](repeating: 0xA5, count: length)
        #expect(!cluster.keyring(replica(1)).verify(message, authenticator: tag, from: client(0)))
        #expect(!cluster.keyring(client(0)).verify(message, authenticator: tag, from: replica(1)))
    }

    @Test func clientsAndReplicasExchangeSingleMACs() {
        let toClient = cluster.keyring(replica(3)).authenticator(for: message, audience: .principal(client(1)))
        #expect(toClient.count == 32)
        #expect(cluster.keyring(client(1)).verify(message, authenticator: toClient, from: replica(3)))
        #expect(!cluster.keyring(client(0)).verify(message, authenticator: toClient, from: replica(3)))
        #expect(!cluster.keyring(client(1)).verify(message, authenticator: toClient, from: replica(2)))

        let toReplica = cluster.keyring(client(1)).authenticator(for: message, audience: .principal(replica(0)))
        #expect(cluster.keyring(replica(0)).verify(message, authenticator: toReplica, from: client(1)))
        #expect(!cluster.keyring(replica(1)).verify(message, authenticator: toReplica, from: client(1)))
    }

    @Test func aClientDoesNotAcceptAVector() {
        let vector = cluster.keyring(replica(0)).authenticator(for: message, audience: .allReplicas)
        #expect(!cluster.keyring(client(0)).verify(message, authenticator: vector, from: replica(0)))
    }

    @Test func strangersAndMyselfAreNotPeers() {
        let keyring = cluster.keyring(replica(1))
        let single = keyring.authenticator(for: message, audience: .principal(replica(0)))
        #expect(!keyring.verify(message, authenticator: single, from: replica(1)))
        #expect(!keyring.verify(message, authenticator: single, from: replica(7)))
        #expect(!keyring.verify(message, authenticator: single, from: client(7)))
        // No link key between two clients, nor with a principal outside the cluster: nobody accepts "".
        #expect(cluster.keyring(client(0)).authenticator(for: message, audience: .principal(client(1))).isEmpty)
        #expect(keyring.authenticator(for: message, audience: .principal(client(42))).isEmpty)
    }

    @Test func linkKeysAreSymmetric() {
        // Both ends derive the same link key: replica 0 -> replica 1 and replica 1 -> replica 0 both verify.
        let forward = cluster.keyring(replica(0)).authenticator(for: message, audience: .principal(replica(1)))
        let backward = cluster.keyring(replica(1)).authenticator(for: message, audience: .principal(replica(0)))
        #expect(cluster.keyring(replica(1)).verify(message, authenticator: forward, from: replica(0)))
        #expect(cluster.keyring(replica(0)).verify(message, authenticator: backward, from: replica(1)))
    }
}
