import ThemisCore
import ThemisCrypto
import ThemisHybster
import ThemisPBFT

/// The protocols a replica process can run, by their name in `cluster.json`. Adding a protocol adds its
/// plug-in here (and its name to `ClusterFile.knownProtocols`).
public enum ProtocolCatalog {
    public static let all: [any ProtocolPlugin.Type] = [PBFT.self, Hybster.self]

    /// The plug-in named `name`.
    /// - Throws: `ConfigurationError.invalidField` (field `protocol`) if no plug-in has that name.
    public static func plugin(named name: String, source: String) throws(ConfigurationError) -> any ProtocolPlugin.Type {
        guard let plugin = all.first(where: { $0.name == name }) else {
            throw .invalidField(file: source, field: "protocol", problem: .unknownProtocol(name))
        }
        return plugin
    }
}
