// Encoding and decoding of the messages of the normal case: ThemisWire's WireCodec, and for PBFT's messages
// the PBFT plug-in's codec inside the `replica` envelope (decoding both stages, as the ingress does).
import Benchmark
import NIOCore
import ThemisCore
import ThemisPBFT
import ThemisWire

/// Sample messages of realistic sizes: 100-byte operations, 64-byte authenticators (an Ed25519
/// signature), a 32-byte MAC on the reply.
enum CodecSamples {
    static let operation = [UInt8](repeating: 0x5A, count: 100)
    static let authenticator = [UInt8](repeating: 0xA5, count: 64)
    static let digest = Digest(word0: 1, word1: 2, word2: 3, word3: 4)

    static func request(_ index: UInt32) -> Request {
        Request(client: ClientID(index), timestamp: Timestamp(1_000 + UInt64(index)), operation: operation, authenticator: authenticator)
    }

    static func prePrepare(batch: Int) -> WireMessage {
        let requests = (0..<UInt32(batch)).map(request)
        let prePrepare = PrePrepare(view: View(0), sequence: SequenceNumber(41), requests: requests, sender: ReplicaID(0))
        return PBFTCodec.wireMessage(.prePrepare(prePrepare), authenticator: authenticator)
    }

    /// (name, message) for every benchmarked kind.
    static let all: [(String, WireMessage)] = [
        ("Request (100 B op)", .request(request(7))),
        ("PrePrepare (10 requests)", prePrepare(batch: 10)),
        ("PrePrepare (100 requests)", prePrepare(batch: 100)),
        ("Prepare", PBFTCodec.wireMessage(.prepare(Prepare(view: View(0), sequence: SequenceNumber(41), digest: digest, sender: ReplicaID(1))), authenticator: authenticator)),
        ("Commit", PBFTCodec.wireMessage(.commit(Commit(view: View(0), sequence: SequenceNumber(41), digest: digest, sender: ReplicaID(1))), authenticator: authenticator)),
        ("Checkpoint", PBFTCodec.wireMessage(.checkpoint(Checkpoint(sequence: SequenceNumber(1_000), stateDigest: digest, sender: ReplicaID(2))), authenticator: authenticator)),
        ("Reply", .reply(Reply(view: View(0), timestamp: Timestamp(1_007), client: ClientID(7), replica: ReplicaID(2),
                               result: [UInt8](repeating: 1, count: 16), authenticator: [UInt8](repeating: 0xC3, count: 32)))),
    ]
}

func registerCodecBenchmarks() {
    let limits = Limits()
    for (name, message) in CodecSamples.all {
        var encoded = ByteBuffer()
        WireCodec.encode(message, into: &encoded)
        // The 100-request PRE-PREPARE takes tens of microseconds: fewer operations per sample.
        let scaling: BenchmarkScalingFactor = name.contains("100 requests") ? .one : .kilo

        // Encoding into a reused buffer (cleared, capacity kept), as a connection's outbound buffer is:
        // the codec's own cost, without the buffer's allocation.
        Benchmark("Codec encode \(name) [\(encoded.readableBytes) B]", configuration: configuration(scaling: scaling)) { benchmark in
            var buffer = ByteBuffer()
            buffer.reserveCapacity(encoded.readableBytes * 2)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                buffer.clear()
                WireCodec.encode(message, into: &buffer)
                blackHole(buffer.writerIndex)
            }
        }

        // Decoding one payload (digests of requests recomputed, as the codec does).
        Benchmark("Codec decode \(name) [\(encoded.readableBytes) B]", configuration: configuration(scaling: scaling)) { benchmark in
            for _ in benchmark.scaledIterations {
                var payload = encoded
                do {
                    let decoded = try WireCodec.decode(&payload, limits: limits)
                    if case .replica(let inner) = decoded {
                        blackHole(try PBFTCodec.decode(inner, limits: limits))
                    } else {
                        blackHole(decoded)
                    }
                } catch {
                    fatalError("decoding a sample failed: \(error)")
                }
            }
        }
    }
}
