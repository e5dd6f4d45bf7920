// Proves that `KeyGeneration.writeCluster` produces a loadable cluster whose every principal can build a
// keyring from its own key file and talk to its peers, that key files are private (0600), and that
// derived keys depend on the seed alone. Clusters are written into fresh temporary directories.
import Foundation
import Testing
import ThemisCore
import ThemisPBFT
import ThemisCrypto

@Suite struct KeyGenerationTests {
    @Test(arguments: [AuthenticationScheme.hmac, .ed25519, .ecdsa])
    func aWrittenClusterLoadsAndEveryPrincipalTalks(scheme: AuthenticationScheme) throws {
        let directory = temporaryDirectory() + "/nested/cluster"
        let written = try KeyGeneration.writeCluster(
            directory: directory, replicas: 4, clients: 2, hosts: ["10.0.0.1"], basePort: 7000, scheme: scheme, plugin: PBFT.self)
        let loaded = try ClusterFile.load(path: directory + "/cluster.json")
        #expect(loaded == written)
        #expect(loaded.replicas.map(\.port) == [7000, 7001, 7002, 7003])
        #expect(loaded.replicas.allSatisfy { $0.host == "10.0.0.1" })

        let principals = (0..<4).map { replica(UInt32($0)) } + (0..<2).map { client(UInt32($0)) }
        var keyrings: [Principal: Keyring] = [:]
        for principal in principals {
            let (owner, keys) = try ClusterFile.loadKeys(path: KeyGeneration.keyPath(directory: directory, principal: principal))
            #expect(owner == principal)
            keyrings[principal] = try Keyring(cluster: loaded, me: principal, keys: keys)
        }
        let message: [UInt8] = Array("hello".utf8)
        let fromClient = keyrings[client(1)]!.authenticator(for: message, audience: .allReplicas)
        for id in UInt32(0)..<4 {
            #expect(keyrings[replica(id)]!.verify(message, authenticator: fromClient, from: client(1)))
        }
    }

    @Test func keyFilesAreReadableByTheOwnerOnly() throws {
        let directory = temporaryDirectory()
        _ = try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 1, hosts: ["localhost"], basePort: 9000, scheme: .hmac, plugin: PBFT.self)
        let keyPath = KeyGeneration.keyPath(directory: directory, principal: replica(3))
        #expect(keyPath == directory + "/replica-3.key")
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(FileManager.default.fileExists(atPath: directory + "/client-0.key"))
    }

    @Test func hostsAreOneForAllOrOnePerReplica() throws {
        let directory = temporaryDirectory()
        let hosts = ["a.example", "b.example", "c.example", "d.example"]
        let file = try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: hosts, basePort: 100, scheme: .hmac, plugin: PBFT.self)
        #expect(file.replicas.map(\.host) == hosts)
        #expect(throws: ConfigurationError.invalidField(
            file: directory + "/cluster.json", field: "replicas", problem: .hostCountMismatch(hosts: 2, replicas: 4))) {
            try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: ["a", "b"], basePort: 100, scheme: .hmac, plugin: PBFT.self)
        }
        #expect(throws: ConfigurationError.invalidField(
            file: directory + "/cluster.json", field: "replicas", problem: .tooFewReplicas(count: 3, minimum: 4))) {
            try KeyGeneration.writeCluster(directory: directory, replicas: 3, clients: 0, hosts: ["a"], basePort: 100, scheme: .hmac, plugin: PBFT.self)
        }
        #expect(throws: ConfigurationError.invalidField(
            file: directory + "/cluster.json", field: "replicas[3].port", problem: .invalidPort(65536))) {
            try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: ["a"], basePort: 65533, scheme: .hmac, plugin: PBFT.self)
        }
    }

    @Test(arguments: [AuthenticationScheme.hmac, .ed25519, .ecdsa])
    func derivedKeysDependOnTheSeedAlone(scheme: AuthenticationScheme) throws {
        let seed = [UInt8](repeating: 7, count: 32)
        let first = try PrivateKeys.derive(scheme: scheme, seed: seed)
        let second = try PrivateKeys.derive(scheme: scheme, seed: seed)
        #expect(first.publicSigningKey == second.publicSigningKey)
        #expect(first.publicAgreementKey == second.publicAgreementKey)
        #expect((first.publicSigningKey == nil) == (scheme == .hmac))
        let other = try PrivateKeys.derive(scheme: scheme, seed: [UInt8](repeating: 8, count: 32))
        #expect(other.publicAgreementKey != first.publicAgreementKey)
        #expect(PrivateKeyFile(principal: replica(1), keys: first) == PrivateKeyFile(principal: replica(1), keys: second))
    }

    @Test func derivationRefusesRSAAndShortSeeds() {
        #expect(throws: KeyError.deterministicKeysUnsupported(.rsa)) {
            try PrivateKeys.derive(scheme: .rsa, seed: [UInt8](repeating: 0, count: 32))
        }
        #expect(throws: KeyError.invalidSeedLength(31)) {
            try PrivateKeys.derive(scheme: .ed25519, seed: [UInt8](repeating: 0, count: 31))
        }
    }

    @Test func rsaKeysRoundTripThroughAKeyFile() throws {
        let keys = PrivateKeys.generate(scheme: .rsa)
        let path = temporaryDirectory() + "/client-0.key"
        try PrivateKeyFile(principal: client(0), keys: keys).write(to: path)
        let (owner, loaded) = try ClusterFile.loadKeys(path: path)
        #expect(owner == client(0))
        #expect(loaded.publicSigningKey == keys.publicSigningKey)
        #expect(loaded.publicAgreementKey == keys.publicAgreementKey)
    }

    @Test func aKeyFileWithABadKeyIsTyped() throws {
        let path = temporaryDirectory() + "/replica-0.key"
        var file = PrivateKeyFile(principal: replica(0), keys: try PrivateKeys.derive(scheme: .ecdsa, seed: [UInt8](repeating: 1, count: 32)))
        file.signingKey = "%%%"
        try file.write(to: path)
        #expect(throws: ConfigurationError.invalidField(file: path, field: "signingKey", problem: .invalidBase64)) {
            try ClusterFile.loadKeys(path: path)
        }
        #expect(throws: ConfigurationError.fileNotFound(file: path + ".missing")) {
            try ClusterFile.loadKeys(path: path + ".missing")
        }
    }

    @Test func dataDirectoriesAreWrittenPerReplicaAndChecked() throws {
        let directory = temporaryDirectory()
        let file = try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: ["a"], basePort: 100, scheme: .hmac,
                                                  plugin: PBFT.self, dataDirectory: "data/{id}/replica-{id}")
        #expect(file.replicas.map(\.dataDir) == (0..<4).map { "data/\($0)/replica-\($0)" })
        #expect(try ClusterFile.load(path: directory + "/cluster.json") == file)
        // One directory per host is fine without {id}; two replicas on one host must not share one.
        let spread = try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: ["a", "b", "c", "d"], basePort: 100,
                                                    scheme: .hmac, plugin: PBFT.self, dataDirectory: "/var/lib/themis")
        #expect(spread.replicas.allSatisfy { $0.dataDir == "/var/lib/themis" })
        #expect(throws: ConfigurationError.invalidField(
            file: directory + "/cluster.json", field: "replicas[1].dataDir", problem: .sharedDataDirectory("/var/lib/themis"))) {
            try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: ["a"], basePort: 100, scheme: .hmac,
                                           plugin: PBFT.self, dataDirectory: "/var/lib/themis")
        }
        #expect(throws: ConfigurationError.invalidField(file: directory + "/cluster.json", field: "replicas[0].dataDir", problem: .invalidPath(""))) {
            try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: ["a"], basePort: 100, scheme: .hmac,
                                           plugin: PBFT.self, dataDirectory: "")
        }
        // Without data directories the file is as before (no dataDir key: the cluster tag does not change).
        let plain = try KeyGeneration.writeCluster(directory: directory, replicas: 4, clients: 0, hosts: ["a"], basePort: 100, scheme: .hmac, plugin: PBFT.self)
        let text = try String(contentsOfFile: directory + "/cluster.json", encoding: .utf8)
        #expect(plain.replicas.allSatisfy { $0.dataDir == nil } && !text.contains("dataDir"))
    }
}
