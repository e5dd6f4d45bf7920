// Proves what the shell's MessageVerifier checks where: client requests are checked where this replica is
// the first to vouch for them (a relayed REQUEST, a PRE-PREPARE's batch), and nowhere else, so a faulty
// client whose MAC vector is valid for some replicas only cannot make a replica reject VIEW-CHANGEs.
import Testing
import ThemisCore
import ThemisPBFT
import ThemisCrypto
import ThemisWire

@Suite struct MessageVerifierTests {
    let cluster = TestCluster(scheme: .hmac, replicas: 4, clients: 1)

    /// A request of client 0 whose MAC-vector entry for replica 3 is corrupted.
    func requestInvalidAtReplica3() -> Request {
        let unsigned = Request(client: ClientID(0), timestamp: Timestamp(1), operation: [1, 2, 3])
        var tag = cluster.keyring(client(0)).authenticator(for: WireCodec.authenticatedBytes(of: unsigned), audience: .allReplicas)
        tag[3 * 32] ^= 0x01
        return unsigned.withAuthenticator(tag)
    }

    func signed(_ message: PBFTMessage, by sender: UInt32) -> [UInt8] {
        cluster.keyring(replica(sender)).authenticator(for: WireCodec.authenticatedBytes(of: message), audience: .allReplicas)
    }

    @Test("A PRE-PREPARE whose request does not verify here is authentic but marked; one with a bad tag is forged")
    func prePrepareWithUnverifiableRequest() {
        let request = requestInvalidAtReplica3()
        let message = PBFTMessage.prePrepare(PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [request], sender: ReplicaID(0)))
        let tag = signed(message, by: 0)
        #expect(MessageVerifier(keyring: cluster.keyring(replica(1))).verification(of: message, authenticator: tag) == .authentic)
        let atReplica3 = MessageVerifier(keyring: cluster.keyring(replica(3)))
        #expect(atReplica3.verification(of: message, authenticator: tag) == .requestsUnverified)
        #expect(!atReplica3.isAuthentic(message, authenticator: tag))
        var bad = tag
        bad[3 * 32 + 5] ^= 0x10
        #expect(atReplica3.verification(of: message, authenticator: bad) == .forged)
    }

    @Test("A relayed REQUEST that does not verify here is forged")
    func relayedRequest() {
        let message = PBFTMessage.request(requestInvalidAtReplica3(), relayedBy: ReplicaID(1))
        let tag = signed(message, by: 1)
        #expect(MessageVerifier(keyring: cluster.keyring(replica(0))).verification(of: message, authenticator: tag) == .authentic)
        #expect(MessageVerifier(keyring: cluster.keyring(replica(3))).verification(of: message, authenticator: tag) == .forged)
    }

    @Test("A VIEW-CHANGE whose prepared certificate names a batch with that request is authentic at every replica (the primary's PRE-PREPARE authenticator proves the header)")
    func viewChangeCarryingTheRequest() {
        let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(1), requests: [requestInvalidAtReplica3()], sender: ReplicaID(0))
        let prepares = [1, 2].map { (id: UInt32) -> Authenticated<Prepare> in
            let prepare = Prepare(view: View(0), sequence: SequenceNumber(1), digest: prePrepare.digest, sender: ReplicaID(id))
            return Authenticated(prepare, authenticator: signed(.prepare(prepare), by: id))
        }
        let certificate = PreparedCertificate(
            prePrepare: Authenticated(prePrepare.header, authenticator: signed(.prePrepare(prePrepare), by: 0)), prepares: prepares)
        let viewChange = PBFTMessage.viewChange(ViewChange(
            newView: View(1), stableCheckpoint: .zero, stableDigest: .zero, checkpointProof: [], prepared: [certificate], sender: ReplicaID(2)))
        let tag = signed(viewChange, by: 2)
        for id: UInt32 in [0, 1, 3] {
            #expect(MessageVerifier(keyring: cluster.keyring(replica(id))).verification(of: viewChange, authenticator: tag) == .authentic)
        }
        // A forged PREPARE inside still makes it forged.
        var forgedPrepares = prepares
        forgedPrepares[0] = Authenticated(prepares[0].message, authenticator: signed(.prepare(prepares[0].message), by: 3))
        let forged = PBFTMessage.viewChange(ViewChange(
            newView: View(1), stableCheckpoint: .zero, stableDigest: .zero, checkpointProof: [],
            prepared: [PreparedCertificate(prePrepare: certificate.prePrepare, prepares: forgedPrepares)], sender: ReplicaID(2)))
        #expect(MessageVerifier(keyring: cluster.keyring(replica(3))).verification(of: forged, authenticator: signed(forged, by: 2)) == .forged)
    }
}
