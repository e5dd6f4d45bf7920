// Proves the vocabulary's arithmetic: quorum sizes for every n (any two quorums intersect in f+1
// replicas, so in a correct one), primary rotation, digest encoding and settings validation.
import Testing
import ThemisCore

@Suite("Cluster configuration and vocabulary")
struct ClusterConfigurationTests {
    @Test("n = 3f + 1 gives f and a quorum of 2f + 1", arguments: [(4, 1, 3), (7, 2, 5), (10, 3, 7)])
    func byzantineQuorums(replicas: Int, faults: Int, quorum: Int) throws {
        let configuration = try ClusterConfiguration(replicaCount: replicas)
        #expect(configuration.faultsTolerated == faults)
        #expect(configuration.quorumSize == quorum)
        #expect(configuration.replyQuorumSize == faults + 1)
    }

    @Test("For every n from 4 to 40, two quorums intersect in at least f + 1 replicas and a quorum needs no faulty replica")
    func quorumIntersection() throws {
        for replicas in 4...40 {
            let configuration = try ClusterConfiguration(replicaCount: replicas)
            let f = configuration.faultsTolerated
            let q = configuration.quorumSize
            #expect(2 * q - replicas >= f + 1, "n = \(replicas)")
            #expect(q <= replicas - f, "n = \(replicas): a quorum must be reachable with f replicas silent")
        }
    }

    @Test("Hybrid clusters (n = 2f + 1) need f + 1 matching messages")
    func hybridQuorums() throws {
        let configuration = try ClusterConfiguration(replicaCount: 5, faultModel: .hybrid)
        #expect(configuration.faultsTolerated == 2)
        #expect(configuration.quorumSize == 3)
    }

    @Test("Fewer than 4 replicas cannot tolerate a Byzantine fault")
    func tooFewReplicas() {
        #expect(throws: ClusterConfiguration.Error.tooFewReplicas(count: 3, minimum: 4)) {
            try ClusterConfiguration(replicaCount: 3)
        }
    }

    @Test("More than 1024 replicas is refused as too many, not too few")
    func tooManyReplicas() {
        #expect(throws: ClusterConfiguration.Error.tooManyReplicas(count: 1025, maximum: 1024)) {
            try ClusterConfiguration(replicaCount: 1025)
        }
        #expect(ClusterConfiguration.Error.tooManyReplicas(count: 1025, maximum: 1024).description.contains("at most 1024"))
    }

    @Test("The primary of view v is v mod n")
    func primaryRotation() throws {
        let configuration = try ClusterConfiguration(replicaCount: 4)
        #expect((0..<9).map { configuration.primary(of: View($0)).rawValue } == [0, 1, 2, 3, 0, 1, 2, 3, 0])
    }

    @Test("A digest survives its byte encoding; other lengths are refused")
    func digestBytes() {
        let digest = Digest.of(Array("themis".utf8))
        #expect(Digest(bytes: digest.bytes) == digest)
        #expect(digest.hex.count == 64)
        #expect(Digest(bytes: [1, 2, 3]) == nil)
    }

    @Test("Digest.of is SHA-256 for arrays and other sequences; a builder hashes its canonical byte stream")
    func digestBuilderStream() {
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        #expect(Digest.of(Array("abc".utf8)).hex == abc)
        #expect(Digest.of(Array("xabc".utf8).dropFirst()).hex == abc)  // the generic path (a slice)
        #expect(Digest.of([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        func lengthPrefix(_ count: Int) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: UInt64(count) >> UInt64(56 - 8 * $0)) } }
        for size in [0, 10, 256, 257, 5000] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            var builder = DigestBuilder(domain: "themis.test.v1")
            builder.append(UInt64(0x0102_0304_0506_0708))
            builder.append(bytes: payload)
            builder.append(UInt32(9))
            let stream = lengthPrefix(14) + Array("themis.test.v1".utf8) + [1, 2, 3, 4, 5, 6, 7, 8]
                + lengthPrefix(size) + payload + [0, 0, 0, 0, 0, 0, 0, 9]
            let copy = builder
            #expect(builder.finish() == Digest.of(stream), "payload \(size)")
            #expect(copy.finish() == Digest.of(stream))  // finishing one value leaves its copies intact
        }
        var unnamed = DigestBuilder(domain: nil)
        unnamed.append(contentsOf: (0..<5000).map { UInt8(truncatingIfNeeded: $0) })
        #expect(unnamed.finish() == Digest.of((0..<5000).map { UInt8(truncatingIfNeeded: $0) }))
    }

    @Test("A request's digest covers client, timestamp and operation but not the authenticator")
    func requestDigest() {
        let request = Request(client: ClientID(1), timestamp: Timestamp(2), operation: [3])
        #expect(request.withAuthenticator([9, 9]).digest == request.digest)
        #expect(Request(client: ClientID(2), timestamp: Timestamp(2), operation: [3]).digest != request.digest)
        #expect(Request(client: ClientID(1), timestamp: Timestamp(3), operation: [3]).digest != request.digest)
        #expect(Request(client: ClientID(1), timestamp: Timestamp(2), operation: [4]).digest != request.digest)
        #expect(Request.batchDigest([request]) != request.digest)
    }

    @Test("Settings with L < K or K = 0 are refused with a reason")
    func settingsValidation() {
        #expect(ProtocolSettings().problem == nil)
        #expect(ProtocolSettings(checkpointInterval: 100, watermarkWindow: 50).problem != nil)
        #expect(ProtocolSettings(checkpointInterval: 0, watermarkWindow: 50).problem != nil)
    }
}
