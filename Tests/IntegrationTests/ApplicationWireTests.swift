// The replica-to-application protocol (docs/APPLICATION.md) without processes: the frames the replica
// writes are those the document shows, and every way an application can break the protocol is a typed
// error (never a crash), with the reason the replica prints.
import NIOCore
import NIOEmbedded
import Testing
import ThemisCore
@testable import ThemisReplica

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}

private func bytes(_ hexText: String) -> [UInt8] {
    let digits = Array(hexText.filter { $0 != " " })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// A frame body (kind and fields) from big-endian fields.
private func body(_ kind: UInt8, _ fields: [(UInt64, Int)], tail: [UInt8] = []) -> [UInt8] {
    var writer = FrameWriter(ApplicationWire.Kind(rawValue: kind) ?? .failed)
    writer.bytes[4] = kind
    for (value, width) in fields { writer.append(value, width: width) }
    writer.bytes += tail
    return Array(writer.finish().dropFirst(4))
}

@Suite("Replica-to-application protocol")
struct ApplicationWireTests {
    @Test("The frames of the document's example: info with the default limits, and one put executed as batch 1")
    func documentExample() throws {
        let frameBytesMax = ApplicationWire.frameBytesMax(limits: Limits())
        #expect(frameBytesMax == 8_389_824)
        #expect(hex(ApplicationWire.info(frameBytesMax: frameBytesMax)) == "0000000701" + "0001" + "008004c0")
        let put: [UInt8] = [0x01, 0x00, 0x01, 0x61, 0x00, 0x00, 0x00, 0x02, 0x68, 0x69]
        let frame = ApplicationWire.execute(sequence: SequenceNumber(1), requests: [Request(client: ClientID(0), timestamp: Timestamp(1), operation: put)])
        #expect(hex(frame) == "0000001f02" + "0000000000000001" + "00000001" + "00000000" + "0000000a" + "01000161000000026869")
        let answer = bytes("82 0000000000000001 00000001 00000001 00")
        #expect(try ApplicationWire.decode(answer, resultBytesMax: 65_536) == .executed(sequence: 1, results: [[0]]))
    }

    @Test("A state is restored in chunks of stateChunkBytes, the last one flagged; an empty state is one frame")
    func restoreChunks() {
        let state = [UInt8](repeating: 7, count: 2_500)
        let frames = ApplicationWire.restore(sequence: SequenceNumber(40), state: state, chunkBytes: 1_000)
        #expect(frames.count == 3)
        #expect(frames.map { $0[4 + 1 + 16] } == [0, 0, 1])
        #expect(frames.map { $0.count - 4 - 1 - 17 } == [1_000, 1_000, 500])
        let empty = ApplicationWire.restore(sequence: SequenceNumber(40), state: [], chunkBytes: 1_000)
        #expect(empty.count == 1 && empty[0][4 + 1 + 16] == 1)
    }

    @Test("Every answer kind decodes; every malformed frame is a typed error with its reason", arguments: [
        ([], "an empty frame"),
        ([0x42], "unknown frame kind 0x42"),
        ([0x02, 0, 0], "frame kind 0x2 goes from the replica to the application, not back"),
        (body(0x82, [(7, 8), (1, 4), (70_000, 4)]), "result 0 of batch 7 has 70000 bytes, more than resultBytesMax (65536)"),
        (body(0x82, [(7, 8), (2, 4), (0, 4)]), "executed frame ends inside a field"),
        (body(0x82, [(7, 8), (1, 4), (3, 4)], tail: [1]), "executed ends inside result 0"),
        (body(0x83, [(1, 4), (2, 1)]), "answer 0 has presence byte 2 (0 or 1)"),
        (body(0x85, [(7, 8), (0, 1)]), "1 bytes after the last field of a restored frame"),
        (body(0x84, [(7, 8), (10, 8), (5, 1)]), "snapshot chunk has last byte 5 (0 or 1)"),
        (body(0x81, [(1, 2), (0, 8)]), "info reply ends inside its state digest"),
    ] as [([UInt8], String)])
    func malformed(frame: [UInt8], reason: String) {
        #expect(throws: ApplicationProcessError.malformed(reason)) { try ApplicationWire.decode(frame, resultBytesMax: 65_536) }
    }

    @Test("Well-formed answers decode to what they say")
    func wellFormed() throws {
        #expect(try ApplicationWire.decode(body(0x83, [(2, 4), (0, 1), (1, 1), (2, 4)], tail: [9, 9]), resultBytesMax: 10) == .answered([nil, [9, 9]]))
        #expect(try ApplicationWire.decode(body(0x84, [(5, 8), (3, 8), (1, 1)], tail: [1, 2, 3]), resultBytesMax: 10)
            == .snapshotChunk(sequence: 5, total: 3, last: true, bytes: [1, 2, 3]))
        #expect(try ApplicationWire.decode(body(0xFF, [], tail: Array("disk full".utf8)), resultBytesMax: 10) == .failed("disk full"))
        let name = Array("py".utf8)
        let info = try ApplicationWire.decode(body(0x81, [(1, 2), (0, 8)], tail: [UInt8](repeating: 0xAB, count: 32) + [0, 2] + name), resultBytesMax: 10)
        #expect(info == .info(.init(version: 1, lastApplied: 0, stateDigest: [UInt8](repeating: 0xAB, count: 32), name: "py")))
    }

    @Test("Answers are matched in order: a wrong batch, a wrong count, an answer nobody asked for, a failed frame are errors; snapshot chunks are assembled and checked against their total")
    func ordering() throws {
        let loop = EmbeddedEventLoop()
        var limits = Limits()
        limits.stateBytesMax = 100
        func pending(_ expectations: [PendingAnswers.Expectation]) -> (PendingAnswers, [EventLoopFuture<ApplicationWire.Response>]) {
            let answers = PendingAnswers(limits: limits)
            var futures: [EventLoopFuture<ApplicationWire.Response>] = []
            for expectation in expectations {
                let promise = loop.makePromise(of: ApplicationWire.Response.self)
                answers.waiting.append((expectation, promise))
                futures.append(promise.futureResult)
            }
            return (answers, futures)
        }
        let (wrongBatch, _) = pending([.executed(sequence: 7, count: 1)])
        #expect(throws: ApplicationProcessError.unexpected("executed batch 8, expected 7")) {
            try wrongBatch.receive(body(0x82, [(8, 8), (1, 4), (0, 4)]))
        }
        wrongBatch.fail(.exited("test"))
        let (wrongCount, _) = pending([.executed(sequence: 7, count: 2)])
        #expect(throws: ApplicationProcessError.unexpected("1 results for batch 7 of 2 requests")) {
            try wrongCount.receive(body(0x82, [(7, 8), (1, 4), (0, 4)]))
        }
        wrongCount.fail(.exited("test"))
        let (nobody, _) = pending([])
        #expect(throws: ApplicationProcessError.unexpected("an answer arrived when none was asked for")) {
            try nobody.receive(body(0x85, [(1, 8)]))
        }
        let (failing, failingFutures) = pending([.info])
        #expect(throws: ApplicationProcessError.failed("cannot")) { try failing.receive(body(0xFF, [], tail: Array("cannot".utf8))) }
        failing.fail(.failed("cannot"))
        #expect(throws: ApplicationProcessError.failed("cannot")) { try failingFutures[0].wait() }
        // After a failure, the first reason sticks.
        failing.fail(.exited("later"))
        #expect(failing.failure == .failed("cannot"))

        let (snapshot, futures) = pending([.snapshot(sequence: 3), .restored(sequence: 3)])
        try snapshot.receive(body(0x84, [(3, 8), (5, 8), (0, 1)], tail: [1, 2]))
        try snapshot.receive(body(0x84, [(3, 8), (5, 8), (1, 1)], tail: [3, 4, 5]))
        #expect(try futures[0].wait() == .snapshotChunk(sequence: 3, total: 5, last: true, bytes: [1, 2, 3, 4, 5]))
        try snapshot.receive(body(0x85, [(3, 8)]))
        #expect(try futures[1].wait() == .restored(sequence: 3))

        let (tooLong, _) = pending([.snapshot(sequence: 3)])
        try tooLong.receive(body(0x84, [(3, 8), (4, 8), (0, 1)], tail: [1, 2, 3]))
        #expect(throws: ApplicationProcessError.malformed("snapshot chunks exceed its size of 4 bytes")) {
            try tooLong.receive(body(0x84, [(3, 8), (4, 8), (1, 1)], tail: [4, 5]))
        }
        tooLong.fail(.exited("test"))
        let (tooBig, _) = pending([.snapshot(sequence: 3)])
        #expect(throws: ApplicationProcessError.malformed("a snapshot of 101 bytes, more than stateBytesMax (100)")) {
            try tooBig.receive(body(0x84, [(3, 8), (101, 8), (0, 1)]))
        }
        tooBig.fail(.exited("test"))
        let (short, _) = pending([.snapshot(sequence: 3)])
        #expect(throws: ApplicationProcessError.malformed("the last snapshot chunk ends at 2 of 4 bytes")) {
            try short.receive(body(0x84, [(3, 8), (4, 8), (1, 1)], tail: [1, 2]))
        }
        short.fail(.exited("test"))
        let (mismatched, _) = pending([.info])
        #expect(throws: ApplicationProcessError.unexpected("restored while waiting for info")) { try mismatched.receive(body(0x85, [(3, 8)])) }
        mismatched.fail(.exited("test"))
        try loop.syncShutdownGracefully()
    }
}
