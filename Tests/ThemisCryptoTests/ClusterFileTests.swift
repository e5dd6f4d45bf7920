// Proves that cluster.json round-trips through JSON and disk, that omitted sections take their defaults,
// and that every broken rule gives its own typed error naming the file and field, by editing a valid
// in-memory cluster one field at a time and loading it.
import Foundation
import Testing
import ThemisCore
import ThemisPBFT
@testable import ThemisCrypto
import ThemisWire

@Suite struct ClusterFileTests {
    let valid = TestCluster(scheme: .ed25519).file

    @Test func jsonRoundTripsInMemoryAndOnDisk() throws {
        let decoded = try ClusterFile.decode(json: valid.json)
        #expect(decoded == valid)
        let path = temporaryDirectory() + "/cluster.json"
        try valid.write(to: path)
        #expect(try ClusterFile.load(path: path) == valid)
        #expect(try ClusterFile.load(path: path).clusterTag == valid.clusterTag)
    }

    @Test func theWrittenFileUsesTheDocumentedKeys() throws {
        let text = String(decoding: valid.json, as: UTF8.self)
        for key in ["\"version\"", "\"protocol\" : \"pbft\"", "\"authentication\" : \"ed25519\"", "\"checkpointInterval\"",
                    "\"limits\"", "\"replicas\"", "\"clients\"", "\"port\" : 7000", "\"signingKey\"", "\"agreementKey\""] {
            #expect(text.contains(key), "missing \(key)")
        }
        let hmacText = String(decoding: TestCluster(scheme: .hmac).file.json, as: UTF8.self)
        #expect(!hmacText.contains("signingKey"))
    }

    @Test("The protocol and its fault model are written to cluster.json; an omitted fault model is the protocol's")
    func theFaultModelIsWrittenAndDefaulted() throws {
        let text = String(decoding: valid.json, as: UTF8.self)
        #expect(text.contains("\"faultModel\" : \"byzantine\""))
        #expect(valid.faultModel == .byzantine && valid.configuration.faultModel == .byzantine)
        let omitted = text.replacingOccurrences(of: "\"faultModel\" : \"byzantine\",", with: "")
        #expect(omitted != text)
        #expect(try ClusterFile.decode(json: Array(omitted.utf8)).faultModel == .byzantine)
        let hybrid = text.replacingOccurrences(of: "\"faultModel\" : \"byzantine\"", with: "\"faultModel\" : \"hybrid\"")
        #expect(throws: ConfigurationError.invalidField(file: "c.json", field: "faultModel",
                                                        problem: .faultModelMismatch("hybrid", protocolName: "pbft", required: "byzantine"))) {
            try ClusterFile.decode(json: Array(hybrid.utf8), source: "c.json").validated(source: "c.json")
        }
        let raft = text.replacingOccurrences(of: "\"protocol\" : \"pbft\"", with: "\"protocol\" : \"raft\"")
        #expect(raft != text)
        #expect(throws: ConfigurationError.invalidField(file: "c.json", field: "protocol", problem: .unknownProtocol("raft"))) {
            try ClusterFile.decode(json: Array(raft.utf8), source: "c.json").validated(source: "c.json")
        }
    }

    @Test func omittedSettingsLimitsAndClientsTakeDefaults() throws {
        let replicas = valid.replicas.map { replica in
            "{\"id\": \(replica.id), \"host\": \"\(replica.host)\", \"port\": \(replica.port), "
                + "\"signingKey\": \"\(replica.signingKey!)\", \"agreementKey\": \"\(replica.agreementKey)\"}"
        }
        let json = "{\"version\": 1, \"protocol\": \"pbft\", \"authentication\": \"ed25519\", \"replicas\": [\(replicas.joined(separator: ","))]}"
        let file = try ClusterFile.decode(json: Array(json.utf8))
        #expect(file.settings == ProtocolSettings())
        #expect(file.limits == Limits())
        #expect(file.clients.isEmpty)
        #expect(try file.validated().configuration.replicaCount == 4)
    }

    @Test func writingIsReproducible() throws {
        let directory = temporaryDirectory()
        try valid.write(to: directory + "/a.json")
        try valid.write(to: directory + "/b.json")
        let first = try Data(contentsOf: URL(fileURLWithPath: directory + "/a.json"))
        #expect(first == (try Data(contentsOf: URL(fileURLWithPath: directory + "/b.json"))))
        #expect(Array(first.prefix(2)) == Array("{\n".utf8))
    }

    @Test func aKeyringCanBeBuiltFromAValidatedCluster() throws {
        let cluster = TestCluster(scheme: .ecdsa)
        let keyring = try Keyring(validated: try cluster.file.validated(source: "c.json"), me: client(1), keys: cluster.keys[client(1)]!)
        #expect(keyring.me == client(1))
        #expect(keyring.scheme == .ecdsa)
        #expect(keyring.cluster.configuration.replicaCount == 4)
        #expect(keyring.cluster.endpoint(of: ReplicaID(2))?.port == 7002)
        #expect(keyring.clusterTag == cluster.file.clusterTag)
    }

    @Test func theClusterTagChangesWithAnyField() {
        var moved = valid
        moved.replicas[3].port = 7100
        #expect(moved.clusterTag != valid.clusterTag)
        #expect(TestCluster(scheme: .ed25519).file.clusterTag == valid.clusterTag)
    }

    @Test("tentativeExecution: read from the file, in the tag only when true (a file without it keeps its old tag)")
    func tentativeExecutionSetting() throws {
        var tentative = valid
        tentative.settings.tentativeExecution = true
        #expect(tentative.clusterTag != valid.clusterTag)
        let canonical = String(decoding: try JSON.canonical(valid), as: UTF8.self)
        #expect(!canonical.contains("tentativeExecution"), "off: not in the hashed model")
        #expect(String(decoding: try JSON.canonical(tentative), as: UTF8.self).contains("\"tentativeExecution\":true"))
        let decoded = try JSON.decode(ProtocolSettings.self, from: Array(#"{"checkpointInterval": 10, "tentativeExecution": true}"#.utf8))
        #expect(decoded.tentativeExecution && decoded.watermarkWindow == 20)
        let off = try JSON.decode(ProtocolSettings.self, from: Array(#"{"checkpointInterval": 10, "tentativeExecution": false}"#.utf8))
        #expect(!off.tentativeExecution && off == ProtocolSettings(checkpointInterval: 10, watermarkWindow: 20))
    }

    @Test func theConfigurationFollowsTheReplicaCount() {
        #expect(valid.configuration.faultsTolerated == 1)
        #expect(TestCluster(scheme: .hmac, replicas: 7, clients: 0).file.configuration.quorumSize == 5)
    }

    /// Applies an edit and returns the validation error.
    func validationError(after edit: (inout ClusterFile) -> Void) -> ConfigurationError? {
        var file = valid
        edit(&file)
        do {
            _ = try file.validated().checked(for: PBFT.self)
            return nil
        } catch {
            return error
        }
    }

    @Test func eachBrokenRuleHasItsTypedError() {
        let file = "cluster.json"
        #expect(validationError { $0.version = 2 } == .invalidField(file: file, field: "version", problem: .unsupportedVersion(2)))
        #expect(validationError { $0.protocolName = "raft" } == .invalidField(file: file, field: "protocol", problem: .unknownProtocol("raft")))
        #expect(validationError { $0.faultModel = .hybrid }
            == .invalidField(file: file, field: "faultModel", problem: .faultModelMismatch("hybrid", protocolName: "pbft", required: "byzantine")))
        #expect(validationError { $0.settings.checkpointInterval = 0 }
            == .invalidField(file: file, field: "settings", problem: .invalidSettings("checkpointInterval must be at least 1")))
        #expect(validationError { $0.replicas.removeLast() } == .invalidField(file: file, field: "replicas", problem: .tooFewReplicas(count: 3, minimum: 4)))
        #expect(validationError { $0.replicas[2].id = 1 } == .invalidField(file: file, field: "replicas[2].id", problem: .duplicateID(1)))
        #expect(validationError { $0.replicas[3].id = 4 } == .invalidField(file: file, field: "replicas[3].id", problem: .idOutOfRange(4, count: 4)))
        #expect(validationError { $0.replicas[2].port = 0 } == .invalidField(file: file, field: "replicas[2].port", problem: .invalidPort(0)))
        #expect(validationError { $0.replicas[1].port = 65536 } == .invalidField(file: file, field: "replicas[1].port", problem: .invalidPort(65536)))
        #expect(validationError { $0.replicas[0].host = "" } == .invalidField(file: file, field: "replicas[0].host", problem: .emptyHost))
        #expect(validationError { $0.clients[1].id = 0 } == .invalidField(file: file, field: "clients[1].id", problem: .duplicateID(0)))
        #expect(validationError { $0.limits.clientsMax = 1 } == .invalidField(file: file, field: "clients", problem: .tooMany(count: 2, maximum: 1)))
    }

    @Test("Limits that cannot work are refused at load: a limit below 1, a window beyond the wire bound, authenticators over their limit, a message larger than a frame (issue 9, finding 1)")
    func sizeRulesHaveTypedErrors() {
        let file = "cluster.json"
        #expect(validationError { $0.limits.batchRequestsMax = 0 }
            == .invalidField(file: file, field: "limits", problem: .invalidLimits("batchRequestsMax must be at least 1 (is 0)")))
        #expect(validationError { $0.settings = ProtocolSettings(checkpointInterval: 2500, watermarkWindow: 5000) }
            == .invalidField(file: file, field: "settings", problem: .invalidSettings(
                "5000 exceeds 4096, the most certificates one VIEW-CHANGE may carry")))
        #expect(validationError { $0.limits.authenticatorBytesMax = 32 }
            == .invalidField(file: file, field: "limits.authenticatorBytesMax", problem: .invalidLimits(
                "32 bytes, but ed25519 with 4 replicas makes authenticators of 64 bytes")))
        // With the default frame, n = 4 and Ed25519 fit; a 1 MiB frame cannot hold a NEW-VIEW of L = 2000 (the
        // largest kind is its relay: the same NEW-VIEW, one more authenticator).
        guard case .invalidField(_, "limits.frameBytesMax", .messageTooLarge(let kind, let bytes, 1_048_576))? =
            validationError(after: { $0.limits.frameBytesMax = 1 << 20 })
        else {
            Issue.record("a 1 MiB frame was accepted for L = 2000")
            return
        }
        #expect(kind == "newViewRelay" && bytes > 1 << 20)
        let text = ConfigurationError.invalidField(file: file, field: "limits.frameBytesMax",
                                                   problem: .messageTooLarge(kind: kind, bytes: bytes, frameBytesMax: 1 << 20)).description
        #expect(text.contains("raise frameBytesMax to at least \(bytes), or lower watermarkWindow") && !text.contains("\n"))
        #expect(validationError { $0.limits.frameBytesMax = 2 << 20; $0.settings = ProtocolSettings(checkpointInterval: 100, watermarkWindow: 200) } == nil)
        // A state chunk of 1 MiB (the default) does not fit a 1 MiB frame whatever the window.
        guard case .invalidField(_, _, .messageTooLarge("stateChunk", _, _))? = validationError(after: {
            $0.limits.frameBytesMax = 1 << 20
            $0.settings = ProtocolSettings(checkpointInterval: 10, watermarkWindow: 20)
        }) else {
            Issue.record("a 1 MiB state chunk was accepted in a 1 MiB frame")
            return
        }
    }

    @Test("keygen's defaults raise frameBytesMax (to whole MiB) only where the largest message needs it")
    func defaultLimitsFitTheConfiguration() throws {
        let four = try ClusterConfiguration(replicaCount: 4)
        let seven = try ClusterConfiguration(replicaCount: 7)
        #expect(KeyGeneration.defaultLimits(four, scheme: .hmac, settings: ProtocolSettings(), plugin: PBFT.self) == Limits())
        #expect(KeyGeneration.defaultLimits(four, scheme: .ed25519, settings: ProtocolSettings(), plugin: PBFT.self) == Limits())
        for (configuration, scheme) in [(four, AuthenticationScheme.rsa), (seven, .hmac), (seven, .ed25519)] {
            let limits = KeyGeneration.defaultLimits(configuration, scheme: scheme, settings: ProtocolSettings(), plugin: PBFT.self)
            #expect(limits.frameBytesMax > Limits().frameBytesMax && limits.frameBytesMax % (1 << 20) == 0)
            let sizes = scheme.authenticatorSizes(replicaCount: configuration.replicaCount)
            let bounds = PBFTMessageBounds(configuration: configuration, settings: ProtocolSettings(), limits: limits, authenticators: sizes)
            let needed = KeyGeneration.frameBytesNeeded(configuration, settings: ProtocolSettings(), limits: limits, authenticators: sizes, plugin: PBFT.self)
            #expect(bounds.oversized.isEmpty && needed > limits.frameBytesMax - (1 << 20))
        }
    }

    @Test func badKeysHaveTypedErrors() {
        let file = "cluster.json"
        #expect(validationError { $0.replicas[1].signingKey = "not base64!" }
            == .invalidField(file: file, field: "replicas[1].signingKey", problem: .invalidBase64))
        #expect(validationError { $0.replicas[1].signingKey = nil } == .invalidField(file: file, field: "replicas[1].signingKey", problem: .missingKey))
        #expect(validationError { $0.clients[0].agreementKey = "AAAA" }
            == .invalidField(file: file, field: "clients[0].agreementKey", problem: .invalidKey("expected a 32-byte X25519 public key, got 3 bytes")))
        // A P-256 key is not an Ed25519 key.
        let ecdsaKey = TestCluster(scheme: .ecdsa).file.replicas[0].signingKey
        guard case .invalidField(_, "replicas[0].signingKey", .invalidKey) = validationError(after: { $0.replicas[0].signingKey = ecdsaKey }) else {
            Issue.record("an ECDSA key was accepted as Ed25519")
            return
        }
    }

    @Test func descriptionsAreOneLineNamingFileAndField() {
        let problem = ConfigurationError.invalidField(file: "cluster.json", field: "replicas[2].port", problem: .invalidPort(0))
        #expect(problem.description == "cluster.json: replicas[2].port: 0 is not a valid port (1...65535)")
        #expect(ConfigurationError.keyMismatch(replica(2), file: "cluster.json").description
            == "key file does not match replica 2 in cluster.json")
        #expect(ConfigurationError.fileNotFound(file: "/etc/themis/cluster.json").description == "/etc/themis/cluster.json: file not found")
    }

    @Test("Validation keeps its last result, and never returns it for another file or another source")
    func validationCacheIsExact() throws {
        let first = try valid.validated(source: "a.json")
        #expect(first.source == "a.json" && first.file == valid)
        var edited = valid
        edited.replicas[1].port = 0
        #expect(throws: ConfigurationError.self) { try edited.validated(source: "a.json") }
        var other = valid
        other.replicas[1].port = 7100
        #expect(try other.validated(source: "a.json").file == other)
        let again = try valid.validated(source: "b.json")
        #expect(again.source == "b.json" && again.file == valid && again.clusterTag == first.clusterTag)
        #expect(try valid.validated(source: "b.json").clusterTag == valid.clusterTag)
    }

    @Test func fileAndJSONProblemsAreTyped() throws {
        let directory = temporaryDirectory()
        let missing = directory + "/missing.json"
        #expect(throws: ConfigurationError.fileNotFound(file: missing)) { try ClusterFile.load(path: missing) }

        let notJSON = directory + "/garbage.json"
        try Data("{ this is not json".utf8).write(to: URL(fileURLWithPath: notJSON))
        #expect(throws: ConfigurationError.malformedJSON(file: notJSON, field: nil, reason: "not valid JSON (line 1, column 3: expected a key in double quotes)")) {
            try ClusterFile.load(path: notJSON)
        }

        let badPort = directory + "/bad-port.json"
        let text = String(decoding: valid.json, as: UTF8.self).replacingOccurrences(of: "\"port\" : 7001", with: "\"port\" : \"x\"")
        try Data(text.utf8).write(to: URL(fileURLWithPath: badPort))
        #expect(throws: ConfigurationError.malformedJSON(file: badPort, field: "replicas[1].port", reason: "expected an integer")) {
            try ClusterFile.load(path: badPort)
        }

        let noReplicas = directory + "/no-replicas.json"
        try Data("{\"version\": 1, \"protocol\": \"pbft\", \"authentication\": \"hmac\"}".utf8).write(to: URL(fileURLWithPath: noReplicas))
        #expect(throws: ConfigurationError.malformedJSON(file: noReplicas, field: "replicas", reason: "missing")) {
            try ClusterFile.load(path: noReplicas)
        }

        let badPortValue = directory + "/port-zero.json"
        var zero = valid
        zero.replicas[2].port = 0
        try zero.write(to: badPortValue)
        #expect(throws: ConfigurationError.invalidField(file: badPortValue, field: "replicas[2].port", problem: .invalidPort(0))) {
            try ClusterFile.load(path: badPortValue)
        }
    }

    @Test func aKeyringRefusesKeysThatAreNotMine() {
        let cluster = TestCluster(scheme: .ed25519)
        let otherKeys = cluster.keys[replica(1)]!
        #expect(throws: ConfigurationError.keyMismatch(replica(2), file: "cluster.json")) {
            try Keyring(cluster: cluster.file, me: replica(2), keys: otherKeys)
        }
        #expect(throws: ConfigurationError.unknownPrincipal(client(9), file: "cluster.json")) {
            try Keyring(cluster: cluster.file, me: client(9), keys: otherKeys)
        }
        let hmacKeys = TestCluster.keys(for: replica(2), scheme: .hmac)
        #expect(throws: ConfigurationError.schemeMismatch(keys: .hmac, cluster: .ed25519, file: "cluster.json")) {
            try Keyring(cluster: cluster.file, me: replica(2), keys: hmacKeys)
        }
    }

    @Test func aLowOrderAgreementKeyIsRefused() {
        var file = TestCluster(scheme: .hmac).file
        file.clients[1].agreementKey = Data(repeating: 0, count: 32).base64EncodedString()
        let keys = TestCluster.keys(for: replica(0), scheme: .hmac)
        #expect(throws: ConfigurationError.invalidField(
            file: "cluster.json", field: "clients[1].agreementKey", problem: .invalidKey("low-order X25519 point"))) {
            try Keyring(cluster: file, me: replica(0), keys: keys)
        }
    }
}
