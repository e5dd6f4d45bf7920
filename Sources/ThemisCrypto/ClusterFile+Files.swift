import ThemisCore

extension ClusterFile {
    /// Reads and validates a cluster file.
    /// - Parameter path: the file; error messages name it as given.
    /// - Throws: `ConfigurationError`: `.fileNotFound`, `.unreadable`, `.malformedJSON`, or
    ///   `.invalidField` for the first rule of `validated(source:)` the file breaks.
    public static func load(path: String) throws(ConfigurationError) -> ClusterFile {
        let file: ClusterFile = try JSONFile.read(path: path)
        _ = try file.validated(source: path)
        return file
    }

    /// Reads, validates and decodes a cluster file in one step.
    /// - Throws: as `load(path:)`.
    public static func loadValidated(path: String) throws(ConfigurationError) -> ValidatedCluster {
        let file: ClusterFile = try JSONFile.read(path: path)
        return try file.validated(source: path)
    }

    /// Parses a cluster file's JSON text without touching the disk.
    /// - Parameter source: the file name used in error messages.
    /// - Throws: `ConfigurationError.malformedJSON` (it does not validate: call `validated(source:)`).
    public static func decode(json: [UInt8], source: String = "cluster.json") throws(ConfigurationError) -> ClusterFile {
        try JSONFile.decode(json, source: source)
    }

    /// The pretty-printed JSON written by `write(to:)`.
    public var json: [UInt8] { Array(JSONFile.encoded(self)) }

    /// Writes the file as pretty-printed JSON with sorted keys.
    /// - Throws: `ConfigurationError.unwritable`.
    public func write(to path: String) throws(ConfigurationError) {
        try JSONFile.write(self, path: path, ownerOnly: false)
    }

    /// Reads a private key file and parses its keys.
    /// - Returns: whom the keys belong to, and the keys.
    /// - Throws: `ConfigurationError`: `.fileNotFound`, `.unreadable`, `.malformedJSON`, or `.invalidField`
    ///   naming the key that does not decode.
    public static func loadKeys(path: String) throws(ConfigurationError) -> (principal: Principal, keys: PrivateKeys) {
        let file: PrivateKeyFile = try JSONFile.read(path: path)
        return (file.principal, try file.keys(source: path))
    }

    /// A file's bytes (a TLS identity, a certificate), read without Foundation.
    /// - Throws: `ConfigurationError.fileNotFound` or `.unreadable`.
    public static func readBytes(path: String) throws(ConfigurationError) -> [UInt8] {
        try JSONFile.contents(path: path)
    }

    /// Where `themis keygen --tls` writes replica `id`'s TLS certificate and private key (PEM).
    public static func tlsIdentityPath(directory: String, replica id: ReplicaID) -> String {
        "\(directory)/replica-\(id.rawValue).tls.pem"
    }
}
