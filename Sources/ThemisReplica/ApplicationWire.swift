import ThemisCore

/// The replica-to-application protocol (docs/APPLICATION.md): how a replica drives an application that runs
/// in its own process (`themis replica --app-command`), over the application's stdin (replica to application)
/// and stdout (application to replica). Pure encoding and decoding; `ApplicationProcess` does the I/O.
///
/// Every frame is a big-endian u32 length (of what follows), a u8 kind, then the kind's fields. The replica's
/// frames are answered in the order they were sent (a restore's chunks only after the last), so the replica
/// may send the next batch before the last is answered.
enum ApplicationWire {
    /// The protocol version the replica speaks (sent in `info`, echoed by the application).
    static let version: UInt16 = 1

    enum Kind: UInt8 {
        // Replica to application.
        case info = 0x01
        case execute = 0x02
        case query = 0x03
        case snapshot = 0x04
        case restore = 0x05
        // Application to replica.
        case infoReply = 0x81
        case executed = 0x82
        case answered = 0x83
        case snapshotChunk = 0x84
        case restored = 0x85
        case failed = 0xFF
    }

    /// What the application answered (one frame; a snapshot comes in several `snapshotChunk`s).
    enum Response: Equatable {
        case info(Info)
        case executed(sequence: UInt64, results: [[UInt8]])
        case answered([[UInt8]?])
        case snapshotChunk(sequence: UInt64, total: UInt64, last: Bool, bytes: [UInt8])
        case restored(sequence: UInt64)
        /// The application cannot go on (the replica stops with this reason).
        case failed(String)
    }

    /// The application's answer to `info`.
    struct Info: Equatable, Sendable {
        var version: UInt16
        /// The last sequence number the application applied (0: an empty state).
        var lastApplied: UInt64
        /// SHA-256 of its snapshot, as the application computed it.
        var stateDigest: [UInt8]
        var name: String
    }

    /// The largest frame either side may send, for the cluster's limits: a batch of the largest operations or
    /// results, or a state chunk, plus their headers.
    static func frameBytesMax(limits: Limits) -> Int {
        let batch = 64 + limits.batchRequestsMax * (9 + max(limits.operationBytesMax, limits.resultBytesMax))
        return max(batch, 64 + limits.stateChunkBytes)
    }

    // MARK: Replica to application

    static func info(frameBytesMax: Int) -> [UInt8] {
        var writer = FrameWriter(.info)
        writer.append(UInt64(version), width: 2)
        writer.append(UInt64(frameBytesMax), width: 4)
        return writer.finish()
    }

    static func execute(sequence: SequenceNumber, requests: [Request]) -> [UInt8] {
        var writer = FrameWriter(.execute, capacity: 17 + requests.reduce(0) { $0 + 8 + $1.operation.count })
        writer.append(sequence.rawValue, width: 8)
        writer.append(UInt64(requests.count), width: 4)
        for request in requests {
            writer.append(UInt64(request.client.rawValue), width: 4)
            writer.append(UInt64(request.operation.count), width: 4)
            writer.bytes.append(contentsOf: request.operation)
        }
        return writer.finish()
    }

    static func query(_ requests: [Request]) -> [UInt8] {
        var writer = FrameWriter(.query, capacity: 9 + requests.reduce(0) { $0 + 8 + $1.operation.count })
        writer.append(UInt64(requests.count), width: 4)
        for request in requests {
            writer.append(UInt64(request.client.rawValue), width: 4)
            writer.append(UInt64(request.operation.count), width: 4)
            writer.bytes.append(contentsOf: request.operation)
        }
        return writer.finish()
    }

    static func snapshot(sequence: SequenceNumber) -> [UInt8] {
        var writer = FrameWriter(.snapshot)
        writer.append(sequence.rawValue, width: 8)
        return writer.finish()
    }

    /// The restore frames of `state` (at least one, even for an empty state), each at most `chunkBytes` of it.
    static func restore(sequence: SequenceNumber, state: [UInt8], chunkBytes: Int) -> [[UInt8]] {
        let step = max(1, chunkBytes)
        var frames: [[UInt8]] = []
        var start = 0
        repeat {
            let end = min(state.count, start + step)
            var writer = FrameWriter(.restore, capacity: 24 + end - start)
            writer.append(sequence.rawValue, width: 8)
            writer.append(UInt64(state.count), width: 8)
            writer.bytes.append(end == state.count ? 1 : 0)
            writer.bytes.append(contentsOf: state[start..<end])
            frames.append(writer.finish())
            start = end
        } while start < state.count
        return frames
    }

    // MARK: Application to replica

    /// Decodes one frame's body (its kind and fields, without the length prefix).
    /// - Parameter resultBytesMax: the largest result or read-only answer the cluster allows.
    static func decode(_ body: [UInt8], resultBytesMax: Int) throws(ApplicationProcessError) -> Response {
        var reader = FieldReader(bytes: body)
        guard let raw = reader.integer(1) else { throw .malformed("an empty frame") }
        guard let kind = Kind(rawValue: UInt8(raw)) else { throw .malformed("unknown frame kind 0x\(String(raw, radix: 16))") }
        let response: Response
        switch kind {
        case .infoReply:
            let version = try reader.required(2, "info reply")
            let lastApplied = try reader.required(8, "info reply")
            guard let digest = reader.bytes(32) else { throw .malformed("info reply ends inside its state digest") }
            let nameLength = try reader.required(2, "info reply")
            guard let name = reader.bytes(Int(nameLength)) else { throw .malformed("info reply ends inside its name") }
            response = .info(Info(version: UInt16(version), lastApplied: lastApplied, stateDigest: digest, name: printable(name)))
        case .executed:
            let sequence = try reader.required(8, "executed")
            let count = try reader.required(4, "executed")
            var results: [[UInt8]] = []
            for index in 0..<count {
                let length = try reader.required(4, "executed")
                guard length <= resultBytesMax else {
                    throw .malformed("result \(index) of batch \(sequence) has \(length) bytes, more than resultBytesMax (\(resultBytesMax))")
                }
                guard let result = reader.bytes(Int(length)) else { throw .malformed("executed ends inside result \(index)") }
                results.append(result)
            }
            response = .executed(sequence: sequence, results: results)
        case .answered:
            let count = try reader.required(4, "answered")
            var results: [[UInt8]?] = []
            for index in 0..<count {
                let present = try reader.required(1, "answered")
                switch present {
                case 0: results.append(nil)
                case 1:
                    let length = try reader.required(4, "answered")
                    guard length <= resultBytesMax else {
                        throw .malformed("read-only answer \(index) has \(length) bytes, more than resultBytesMax (\(resultBytesMax))")
                    }
                    guard let result = reader.bytes(Int(length)) else { throw .malformed("answered ends inside answer \(index)") }
                    results.append(result)
                default: throw .malformed("answer \(index) has presence byte \(present) (0 or 1)")
                }
            }
            response = .answered(results)
        case .snapshotChunk:
            let sequence = try reader.required(8, "snapshot chunk")
            let total = try reader.required(8, "snapshot chunk")
            let last = try reader.required(1, "snapshot chunk")
            guard last <= 1 else { throw .malformed("snapshot chunk has last byte \(last) (0 or 1)") }
            response = .snapshotChunk(sequence: sequence, total: total, last: last == 1, bytes: reader.rest())
            return response
        case .restored:
            response = .restored(sequence: try reader.required(8, "restored"))
        case .failed:
            return .failed(printable(reader.rest()))
        case .info, .execute, .query, .snapshot, .restore:
            throw .malformed("frame kind 0x\(String(raw, radix: 16)) goes from the replica to the application, not back")
        }
        guard reader.remaining == 0 else { throw .malformed("\(reader.remaining) bytes after the last field of a \(kind) frame") }
        return response
    }
}

/// Text from the application for one log line: at most 512 bytes, control characters shown as `?`.
func printable(_ bytes: [UInt8]) -> String {
    let text = String(decoding: bytes.prefix(512), as: UTF8.self)
    let cleaned = String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    return bytes.count > 512 ? cleaned + "..." : cleaned
}

/// Why the application process cannot be used (the replica stops; never executes on a state it is unsure of).
public enum ApplicationProcessError: Error, Equatable, CustomStringConvertible {
    /// The application wrote a frame that breaks the protocol.
    case malformed(String)
    /// The application answered with something other than what the replica asked for next.
    case unexpected(String)
    /// The application reported that it cannot go on (a `failed` frame).
    case failed(String)
    /// Its output closed (it exited or closed stdout).
    case exited(String)
    /// Something the replica needs of it at start-up is missing or wrong.
    case startup(String)

    public var description: String {
        switch self {
        case .malformed(let reason): "it broke the protocol: \(reason)"
        case .unexpected(let reason): "it answered out of order: \(reason)"
        case .failed(let reason): "it reported a failure: \(reason)"
        case .exited(let how): "it \(how)"
        case .startup(let reason): reason
        }
    }
}

/// Appends big-endian fields after a length placeholder and the kind.
struct FrameWriter {
    var bytes: [UInt8]

    init(_ kind: ApplicationWire.Kind, capacity: Int = 32) {
        bytes = []
        bytes.reserveCapacity(capacity)
        bytes.append(contentsOf: [0, 0, 0, 0, kind.rawValue])
    }

    mutating func append(_ value: UInt64, width: Int) {
        for shift in stride(from: (width - 1) * 8, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// The frame with its length filled in.
    mutating func finish() -> [UInt8] {
        let length = UInt32(truncatingIfNeeded: bytes.count - 4)
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: length >> UInt32(24 - 8 * index)) }
        return bytes
    }
}

/// Reads big-endian fields from a frame body; nil past its end.
struct FieldReader {
    let bytes: [UInt8]
    var index = 0

    var remaining: Int { bytes.count - index }

    mutating func integer(_ width: Int) -> UInt64? {
        guard remaining >= width else { return nil }
        var value: UInt64 = 0
        for offset in 0..<width { value = value << 8 | UInt64(bytes[index + offset]) }
        index += width
        return value
    }

    mutating func required(_ width: Int, _ frame: String) throws(ApplicationProcessError) -> UInt64 {
        guard let value = integer(width) else { throw .malformed("\(frame) frame ends inside a field") }
        return value
    }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { index += count }
        return Array(bytes[index..<index + count])
    }

    mutating func rest() -> [UInt8] {
        defer { index = bytes.count }
        return Array(bytes[index...])
    }
}
