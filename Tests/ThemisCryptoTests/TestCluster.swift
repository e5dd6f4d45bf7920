// Shared fixtures: small clusters built in memory from derived keys, so tests are fast and reproducible.
import Foundation
import ThemisCore
import ThemisPBFT
@testable import ThemisCrypto

/// A cluster file and the private keys of all its principals.
struct TestCluster {
    let file: ClusterFile
    let keys: [Principal: PrivateKeys]

    /// Only two RSA-2048 keys for the whole test run (generation is slow): replica 0 signs with the
    /// first, every other principal with the second.
    static let rsaSigningKeys: [SigningPrivateKey] = [
        SigningPrivateKey.generate(.rsa)!, SigningPrivateKey.generate(.rsa)!,
    ]

    static func seed(_ principal: Principal, salt: UInt8 = 0) -> [UInt8] {
        var seed = [UInt8](repeating: salt, count: 32)
        switch principal {
        case .replica(let id): seed[0] = 1; seed[1] = UInt8(truncatingIfNeeded: id.rawValue)
        case .client(let id): seed[0] = 2; seed[1] = UInt8(truncatingIfNeeded: id.rawValue)
        }
        return seed
    }

    static func keys(for principal: Principal, scheme: AuthenticationScheme) -> PrivateKeys {
        guard scheme == .rsa else { return try! PrivateKeys.derive(scheme: scheme, seed: seed(principal)) }
        let agreement = try! PrivateKeys.derive(scheme: .hmac, seed: seed(principal)).agreement
        let signing = principal == .replica(ReplicaID(0)) ? rsaSigningKeys[0] : rsaSigningKeys[1]
        return PrivateKeys(scheme: .rsa, signing: signing, agreement: agreement)
    }

    init(scheme: AuthenticationScheme, replicas: Int = 4, clients: Int = 2) {
        var keys: [Principal: PrivateKeys] = [:]
        var replicaEntries: [ClusterFile.Replica] = []
        for index in 0..<replicas {
            let principal = Principal.replica(ReplicaID(UInt32(index)))
            let mine = Self.keys(for: principal, scheme: scheme)
            keys[principal] = mine
            replicaEntries.append(.init(
                id: UInt32(index), host: "127.0.0.1", port: 7000 + index,
                signingKey: mine.publicSigningKey, agreementKey: mine.publicAgreementKey))
        }
        var clientEntries: [ClusterFile.Client] = []
        for index in 0..<clients {
            let principal = Principal.client(ClientID(UInt32(index)))
            let mine = Self.keys(for: principal, scheme: scheme)
            keys[principal] = mine
            clientEntries.append(.init(id: UInt32(index), signingKey: mine.publicSigningKey, agreementKey: mine.publicAgreementKey))
        }
        // What keygen writes: the default limits, with a larger frame where this n and scheme need one.
        let limits = KeyGeneration.defaultLimits(try! ClusterConfiguration(replicaCount: replicas), scheme: scheme, settings: ProtocolSettings(), plugin: PBFT.self)
        self.file = ClusterFile(authentication: scheme, limits: limits, replicas: replicaEntries, clients: clientEntries)
        self.keys = keys
    }

    func keyring(_ principal: Principal) -> Keyring {
        try! Keyring(validated: file.validated(source: "cluster.json", allowingSimulatedScheme: true), me: principal, keys: keys[principal]!)
    }
}

func replica(_ id: UInt32) -> Principal { .replica(ReplicaID(id)) }
func client(_ id: UInt32) -> Principal { .client(ClientID(id)) }

/// A fresh, empty temporary directory.
func temporaryDirectory() -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("themis-crypto-tests-\(UUID().uuidString)").path
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
