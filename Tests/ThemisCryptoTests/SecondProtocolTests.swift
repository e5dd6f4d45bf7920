// Proves the plug-in boundary from the outside: a second protocol, written here in one file without touching
// any framework target, runs through the framework's wire envelope, the one `Ingress` and the one
// `ReplicaDriver`; and two protocols' messages cannot be taken for each other (by the codec or by the
// authenticated bytes). The toy protocol ("sequencer": replica 0 numbers requests and everyone executes in
// that order) tolerates no fault at all; it exists to exercise the interfaces, not to replicate anything.
import NIOCore
import Testing
import ThemisCore
import ThemisCrypto
import ThemisDriver
import ThemisPBFT
import ThemisWire

/// ORDER(sequence, request) from replica 0.
struct SequencerMessage: Hashable, Sendable {
    let sequence: UInt64
    let request: Request
    let sender: ReplicaID
}

enum SequencerEvent: ProtocolEvent {
    case ordered(UInt64)
    var logLevel: EventLogLevel { .debug }
    var summary: String { "\(self)" }
    var common: CommonEvent? { nil }
}

enum SequencerRejection: ProtocolRejection {
    case outOfOrder(UInt64)
    var kind: String { "outOfOrder" }
    var description: String { "\(self)" }
}

struct SequencerCore: ReplicaCore {
    typealias Message = SequencerMessage
    typealias Event = SequencerEvent
    typealias Rejection = SequencerRejection

    let id: ReplicaID
    let configuration: ClusterConfiguration
    let settings: ProtocolSettings
    let limits: Limits
    var view: View { View(0) }
    var stableCheckpoint: SequenceNumber { .zero }
    var lastExecuted: SequenceNumber { SequenceNumber(next - 1) }
    var next: UInt64 = 1

    init(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits) {
        self.id = id
        self.configuration = configuration
        self.settings = settings
        self.limits = limits
    }

    mutating func submit(_ request: Verified<Request>, into actions: inout [Action<Message, Event, Record>]) throws(Rejection) {
        guard id == ReplicaID(0) else { return }
        let order = SequencerMessage(sequence: next, request: request.message, sender: id)
        actions.append(.broadcast(order))
        apply(order, into: &actions)
    }

    mutating func receive(_ message: Verified<Message>, into actions: inout [Action<Message, Event, Record>]) throws(Rejection) {
        guard message.message.sequence == next else { throw .outOfOrder(message.message.sequence) }
        apply(message.message, into: &actions)
    }

    private mutating func apply(_ order: SequencerMessage, into actions: inout [Action<Message, Event, Record>]) {
        actions.append(.observe(.ordered(order.sequence)))
        actions.append(.execute(ExecutionBatch(sequence: SequenceNumber(order.sequence), view: view, requests: [order.request], checkpoint: false)))
        next += 1
    }

    mutating func tick(into actions: inout [Action<Message, Event, Record>]) {}
    mutating func flush(into actions: inout [Action<Message, Event, Record>]) {}

    mutating func executed(_ sequence: SequenceNumber, results: [[UInt8]], applicationSnapshot: [UInt8]?,
                           into actions: inout [Action<Message, Event, Record>]) {}
}

/// The plug-in: protocol id 200, one kind (0x01), its own codec and verifier.
enum Sequencer: ProtocolPlugin {
    typealias Core = SequencerCore
    static let name = "sequencer"
    static let protocolID = ProtocolID(200)
    static let faultModel = ClusterConfiguration.FaultModel.byzantine

    static func makeCore(id: ReplicaID, configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
                         environment: CoreEnvironment) throws(TrustedCounterError) -> SequencerCore {
        SequencerCore(id: id, configuration: configuration, settings: settings, limits: limits)
    }

    static func messageBounds(configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
                              authenticators: MessageBounds.AuthenticatorSizes) -> [MessageBounds.Bound] {
        let framework = MessageBounds(limits: limits, authenticators: authenticators)
        return [MessageBounds.Bound(kind: "order", payloadBytes: framework.protocolMessageBytes(fields: 1 + 8 + 4 + framework.requestBytes))]
    }

    static func decode(_ payload: ProtocolPayload, limits: Limits) throws(WireError) -> (message: SequencerMessage, authenticator: [UInt8]) {
        guard payload.protocolID == protocolID else { throw .unknownProtocol(payload.protocolID.rawValue) }
        var reader = PayloadReader(buffer: payload.bytes, limits: limits)
        let kind = try reader.readUInt8()
        guard kind == 0x01 else { throw .unknownMessageKind(kind) }
        let sequence = try reader.readUInt64()
        let sender = try reader.readReplicaID()
        let request = try reader.readRequest()
        let authenticator = try reader.readByteString(field: "authenticator", max: limits.authenticatorBytesMax)
        guard reader.buffer.readableBytes == 0 else { throw .trailingBytes(count: reader.buffer.readableBytes) }
        return (SequencerMessage(sequence: sequence, request: request, sender: sender), authenticator)
    }

    static func encodeFrame(_ message: SequencerMessage, authenticator: [UInt8], into buffer: inout ByteBuffer) {
        let body = 1 + 8 + 4 + WireCodec.requestByteCount(message.request) + 4 + authenticator.count
        WireCodec.encodeProtocolFrame(protocolID, bodyBytes: body, into: &buffer) { buffer in
            buffer.writeInteger(UInt8(0x01))
            buffer.writeInteger(message.sequence)
            buffer.writeInteger(message.sender.rawValue)
            buffer.writeRequest(message.request)
            buffer.writeByteString(authenticator)
        }
    }

    static func authenticatedBytes(of message: SequencerMessage) -> [UInt8] {
        var bytes = WireCodec.protocolAuthenticationPrefix(protocolID, kind: 0x01, fieldBytes: 8 + 4 + 32)
        bytes.appendBigEndian(message.sequence)
        bytes.appendBigEndian(message.sender.rawValue)
        bytes.appendDigest(message.request.digest)
        return bytes
    }

    static func sender(of message: SequencerMessage) -> ReplicaID { message.sender }
    static func kindName(of message: SequencerMessage) -> String { "order" }

    static func verification(of message: SequencerMessage, authenticator: [UInt8], keyring: Keyring) -> AuthenticationVerdict {
        guard keyring.verify(authenticatedBytes(of: message), authenticator: authenticator, from: .replica(message.sender)) else { return .forged }
        return keyring.isAuthentic(message.request) ? .authentic : .requestsUnverified
    }

    static func estimatedBytes(of message: SequencerMessage) -> Int { 64 + message.request.operation.count }

    static func retainedBytesBound(configuration: ClusterConfiguration, settings: ProtocolSettings, limits: Limits,
                                   authenticatorBytes: Int, stateBytes: Int) -> ByteParts {
        ByteParts([.init(name: "nothing", bytes: 0)])
    }
}

/// Effects that keep what the driver asked for.
struct RecordingEffects<Plugin: ProtocolPlugin>: DriverEffects {
    var broadcasts: [ByteBuffer] = []
    var executed: [ExecutionBatch] = []
    var rejections: [String] = []
    mutating func send(_ frame: ByteBuffer, of message: Plugin.Core.Message, to replica: ReplicaID) { broadcasts.append(frame) }
    mutating func broadcast(_ frame: ByteBuffer, of message: Plugin.Core.Message) { broadcasts.append(frame) }
    mutating func reply(_ frame: ByteBuffer, of reply: Reply) {}
    mutating func execute(_ batch: ExecutionBatch) { executed.append(batch) }
    mutating func install(_ sequence: SequenceNumber, applicationSnapshot: [UInt8]) {}
    mutating func executeReadOnly(_ requests: [Request]) {}
    mutating func observe(_ event: Plugin.Core.Event) {}
    mutating func rejected(_ rejection: Plugin.Core.Rejection) { rejections.append(rejection.kind) }
}

@Suite("A second protocol plugs in without changing the framework")
struct SecondProtocolTests {
    let cluster = TestCluster(scheme: .ed25519)

    func driver<Plugin: ProtocolPlugin>(_ plugin: Plugin.Type, _ id: UInt32) -> ReplicaDriver<Plugin> {
        let file = cluster.file
        let core = try! Plugin.makeCore(id: ReplicaID(id), configuration: file.configuration, settings: file.settings, limits: file.limits,
                                        environment: .none)
        return ReplicaDriver(core: core, keyring: cluster.keyring(replica(id)))
    }

    func payload(of frame: ByteBuffer) throws -> ProtocolPayload {
        var bytes = frame
        bytes.moveReaderIndex(forwardBy: WireCodec.frameHeaderBytes)
        guard case .replica(let payload) = try WireCodec.decode(&bytes, limits: cluster.file.limits) else {
            throw WireError.unexpectedMessage
        }
        return payload
    }

    @Test("A request ordered by replica 0 travels through the real envelope, ingress and driver to replica 1")
    func sequencerRunsOnTheFramework() throws {
        let clientKeyring = cluster.keyring(client(0))
        let request = Request(client: ClientID(0), timestamp: Timestamp(1), operation: [42])
        let signed = request.withAuthenticator(clientKeyring.authenticator(for: WireCodec.authenticatedBytes(of: request), audience: .allReplicas))
        var primary = driver(Sequencer.self, 0)
        var backup = driver(Sequencer.self, 1)
        let primaryIngress = Ingress<Sequencer>(keyring: cluster.keyring(replica(0)), limits: cluster.file.limits)
        let backupIngress = Ingress<Sequencer>(keyring: cluster.keyring(replica(1)), limits: cluster.file.limits)

        var primaryEffects = RecordingEffects<Sequencer>()
        let admitted = try primaryIngress.admit(signed, from: ClientID(0)).get()
        primary.deliver([.request(admitted)], effects: &primaryEffects)
        #expect(primaryEffects.executed.map(\.sequence) == [SequenceNumber(1)])
        let frame = try #require(primaryEffects.broadcasts.first)

        var backupEffects = RecordingEffects<Sequencer>()
        let order = try backupIngress.admit(try payload(of: frame), from: ReplicaID(0)).get()
        #expect(!order.requestsUnverified)
        backup.deliver([.message(order)], effects: &backupEffects)
        #expect(backupEffects.executed.map(\.requests) == [[signed]])
        // The same order again is out of order now: the core's typed rejection reaches the effects.
        backup.deliver([.message(order)], effects: &backupEffects)
        #expect(backupEffects.rejections == ["outOfOrder"])
        // A link that is not replica 0's cannot pass the order off as replica 0's.
        #expect(backupIngress.admit(try payload(of: frame), from: ReplicaID(2)).failure == .forgedSender)
    }

    @Test("Two protocols' messages are never taken for each other: the ingress refuses the other's payload, and authenticated bytes differ in the protocol id")
    func protocolsAreSeparated() throws {
        var primary = driver(Sequencer.self, 0)
        var effects = RecordingEffects<Sequencer>()
        let request = Request(client: ClientID(0), timestamp: Timestamp(1), operation: [1])
        primary.deliver([.request(Verified(checked: request))], effects: &effects)
        let sequencerPayload = try payload(of: try #require(effects.broadcasts.first))
        let pbftIngress = Ingress<PBFT>(keyring: cluster.keyring(replica(1)), limits: cluster.file.limits)
        #expect(pbftIngress.admit(sequencerPayload, from: ReplicaID(0)).failure == .malformed(.unknownProtocol(200)))

        let prepare = PBFTMessage.prepare(Prepare(view: View(0), sequence: SequenceNumber(1), digest: .zero, sender: ReplicaID(0)))
        var buffer = ByteBuffer()
        PBFT.encodeFrame(prepare, authenticator: [], into: &buffer)
        let sequencerIngress = Ingress<Sequencer>(keyring: cluster.keyring(replica(1)), limits: cluster.file.limits)
        #expect(sequencerIngress.admit(try payload(of: buffer), from: ReplicaID(0)).failure == .malformed(.unknownProtocol(1)))

        let pbftBytes = PBFT.authenticatedBytes(of: prepare)
        let orderBytes = Sequencer.authenticatedBytes(of: SequencerMessage(sequence: 1, request: request, sender: ReplicaID(0)))
        #expect(Array(pbftBytes.prefix(10)) == WireCodec.authenticationDomain + [0x40, 1])
        #expect(Array(orderBytes.prefix(10)) == WireCodec.authenticationDomain + [0x40, 200])
    }

    @Test("A cluster file is checked against the protocol it names")
    func clusterIsCheckedForItsProtocol() throws {
        let validated = try cluster.file.validated(source: "cluster.json")
        #expect(throws: ConfigurationError.invalidField(file: "cluster.json", field: "protocol", problem: .protocolMismatch("pbft", running: "sequencer"))) {
            try validated.checked(for: Sequencer.self)
        }
        _ = try validated.checked(for: PBFT.self)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
