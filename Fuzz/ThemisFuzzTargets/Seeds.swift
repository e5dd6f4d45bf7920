#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import ThemisCore
import ThemisPBFT
import ThemisPBFTTesting
import ThemisWire

/// The seed corpus: real runs of a 4-replica cluster of cores (the `core` target's configuration),
/// recorded as what replica 1 received, and the messages and streams of those runs for the other targets.
public enum Seeds {
    /// Writes DIR/TARGET/NAME for every target.
    public static func write(to directory: String) throws(SeedError) {
        var files: [(target: FuzzTarget, name: String, bytes: [UInt8])] = []
        for scenario in Scenario.allCases {
            let records = MiniCluster.run(scenario)
            files.append((.core, "\(scenario)", records.flatMap(\.bytes)))
            var stream: [UInt8] = [0]
            for (index, record) in records.enumerated() {
                guard case .receive(_, let payload, _) = record else { continue }
                stream += frame(payload)
                // One message of each kind per scenario is enough for the message target.
                if let kind = kindKey(payload), !files.contains(where: { $0.target == .message && kindKey(Array($0.bytes.dropFirst())) == kind }) {
                    files.append((.message, "\(scenario)-\(index)", [0] + payload))
                }
            }
            files.append((.frame, "\(scenario)", stream))
        }
        // A client's stream after the handshake: requests, an attach with a bad proof, a status query.
        var session: [UInt8] = [0]
        for timestamp in 1...3 {
            session += frame(encode(.request(Request(client: ClientID(0), timestamp: Timestamp(UInt64(timestamp)), operation: [1, 2, 3], authenticator: [UInt8](repeating: 7, count: 128)))))
        }
        session += frame(encode(.attachClient(AttachClient(client: ClientID(1), proof: [UInt8](repeating: 1, count: 32)))))
        files.append((.session, "client", session))
        // A stranger's opening: a Hello (the proof cannot be right), then a message.
        let hello = Hello(principal: .client(ClientID(0)), nonce: [UInt8](repeating: 9, count: Hello.nonceByteCount), clusterTag: 0)
        files.append((.handshake, "hello", [0] + frame(encode(.hello(hello))) + frame(encode(.helloProof(HelloProof(proof: [UInt8](repeating: 3, count: 32)))))))
        files.append((.handshake, "goodbye", [0] + frame(encode(.goodbye(reason: "bye")))))
        for file in files {
            let folder = "\(directory)/\(file.target.rawValue)"
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST, mkdir(folder, 0o755) == 0 || errno == EEXIST else {
                throw SeedError(path: folder)
            }
            let path = "\(folder)/\(file.name)"
            guard let handle = fopen(path, "wb") else { throw SeedError(path: path) }
            let written = fwrite(file.bytes, 1, file.bytes.count, handle)
            fclose(handle)
            guard written == file.bytes.count else { throw SeedError(path: path) }
        }
        print("wrote \(files.count) seeds under \(directory)")
    }

    /// A payload's kind: the framework kind byte, or for a protocol message (`replica`, 0x40) the plug-in's.
    static func kindKey(_ payload: [UInt8]) -> UInt8? {
        guard payload.count > 1 else { return nil }
        return payload[1] == 0x40 && payload.count > 3 ? payload[3] : payload[1]
    }

    static func encode(_ message: WireMessage) -> [UInt8] {
        var buffer = ByteBuffer()
        WireCodec.encode(message, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    static func frame(_ payload: [UInt8]) -> [UInt8] {
        let count = UInt32(payload.count)
        return [UInt8(count >> 24), UInt8((count >> 16) & 0xFF), UInt8((count >> 8) & 0xFF), UInt8(count & 0xFF)] + payload
    }
}

public struct SeedError: Error, CustomStringConvertible {
    let path: String
    public var description: String { "cannot write \(path)" }
}

/// What the recorded runs do.
enum Scenario: CaseIterable {
    /// Twelve requests ordered in view 0: three checkpoints.
    case normal
    /// The primary stops sending after three requests; the backups change to view 1 (replica 1 leads it).
    case viewChange
    /// Replica 1 hears nothing while 14 requests are ordered, then catches up by state transfer.
    case stateTransfer
}

/// Four cores in the PBFT test cluster (ThemisPBFTTesting, the one the unit tests use); every input replica 1
/// gets is recorded and turned into `CoreRecord`s.
enum MiniCluster {
    static func run(_ scenario: Scenario) -> [CoreRecord] {
        let target = CoreSetup.target
        guard var cluster = try? TestCluster(replicaCount: 4, settings: CoreSetup.settings, limits: CoreSetup.limits) else { return [] }
        cluster.recorded = [target]
        var timestamp: UInt64 = 0
        let everyone = (0..<4).map { ReplicaID(UInt32($0)) }
        /// A client request sent to every replica that hears (as a client retransmits it), then delivered.
        func request(to replicas: [ReplicaID]) {
            timestamp += 1
            cluster.broadcast(Request(client: ClientID(0), timestamp: Timestamp(timestamp), operation: [UInt8(timestamp & 0xFF)]), to: replicas)
            cluster.run()
        }
        switch scenario {
        case .normal:
            for _ in 0..<12 { request(to: everyone) }
        case .viewChange:
            for _ in 0..<3 { request(to: everyone) }
            cluster.silenced = [ReplicaID(0)]
            request(to: everyone)
            cluster.tick(20)
            for _ in 0..<3 { request(to: everyone) }
        case .stateTransfer:
            cluster.drop = { $0.to == target }
            for _ in 0..<14 { request(to: everyone.filter { $0 != target }) }
            cluster.drop = { _ in false }
            for _ in 0..<3 { request(to: everyone) }
            cluster.tick(10)
        }
        let records = cluster.inputs.compactMap { replica, input -> CoreRecord? in
            guard replica == target else { return nil }
            switch input {
            case .submit(let request): return .submit(payload: Seeds.encode(.request(request)))
            case .receive(let envelope, let unverified):
                return .receive(sender: envelope.from, payload: Seeds.encode(PBFTCodec.wireMessage(envelope.message, authenticator: [])),
                                requestsUnverified: unverified)
            case .tick: return .tick(count: 1)
            }
        }
        let states = cluster.replicas.map { "r\($0.id.rawValue): view \($0.view.rawValue), executed \($0.lastExecuted.rawValue), stable \($0.lowWatermark.rawValue)" }
        print("\(scenario): \(records.count) records for replica 1; \(states.joined(separator: "; "))")
        return records
    }
}
