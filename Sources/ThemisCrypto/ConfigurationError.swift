import ThemisCore

/// Why a cluster file or a key file cannot be used. Every case names the file, and where it applies the
/// field, so that `description` is one line an operator can act on
/// (e.g. `cluster.json: replicas[2].port: 0 is not a valid port (1...65535)`).
public enum ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(file: String)
    /// The file exists but could not be read.
    case unreadable(file: String, reason: String)
    /// The file or directory could not be written.
    case unwritable(file: String, reason: String)
    /// Not JSON, or JSON without the expected shape; `field` is the JSON path if known.
    case malformedJSON(file: String, field: String?, reason: String)
    /// A field holds a value that is not allowed.
    case invalidField(file: String, field: String, problem: FieldProblem)
    /// The principal is not listed in the cluster file.
    case unknownPrincipal(Principal, file: String)
    /// The private keys are of another scheme than the cluster's.
    case schemeMismatch(keys: AuthenticationScheme, cluster: AuthenticationScheme, file: String)
    /// The private keys do not belong to the public keys listed for the principal in the cluster file.
    case keyMismatch(Principal, file: String)

    public var description: String {
        switch self {
        case .fileNotFound(let file):
            return "\(file): file not found"
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .unwritable(let file, let reason):
            return "\(file): cannot write: \(reason)"
        case .malformedJSON(let file, let field, let reason):
            if let field { return "\(file): \(field): \(reason)" }
            return "\(file): \(reason)"
        case .invalidField(let file, let field, let problem):
            return "\(file): \(field): \(problem)"
        case .unknownPrincipal(let principal, let file):
            return "\(file): \(principal) is not listed"
        case .schemeMismatch(let keys, let cluster, let file):
            return "key file is for \(keys.rawValue) but \(file) uses \(cluster.rawValue)"
        case .keyMismatch(let principal, let file):
            return "key file does not match \(principal) in \(file)"
        }
    }
}

/// What is wrong with one field of a configuration file.
public enum FieldProblem: Error, Hashable, Sendable, CustomStringConvertible {
    case unsupportedVersion(Int)
    case unknownProtocol(String)
    /// The file names another protocol than the one about to run it.
    case protocolMismatch(String, running: String)
    /// The simulator-only authentication scheme, in a cluster meant to run.
    case notDeployable(String)
    /// The fault model is not the one the protocol is built for.
    case faultModelMismatch(String, protocolName: String, required: String)
    case invalidSettings(String)
    case tooFewReplicas(count: Int, minimum: Int)
    case tooMany(count: Int, maximum: Int)
    case negativeCount(Int)
    case duplicateID(UInt32)
    case idOutOfRange(UInt32, count: Int)
    case invalidPort(Int)
    case emptyHost
    /// A replica's `dataDir` is empty or holds a NUL byte.
    case invalidPath(String)
    /// A protocol without durable mode was given data directories.
    case noDurableMode(protocolName: String)
    /// keygen's `--data-dir` template gives two replicas on one host the same directory.
    case sharedDataDirectory(String)
    case hostCountMismatch(hosts: Int, replicas: Int)
    case missingKey
    case invalidBase64
    case invalidKey(String)
    /// A limit is out of range or inconsistent with another limit, the settings or the scheme.
    case invalidLimits(String)
    /// The largest message of `kind` that this configuration allows is larger than a frame.
    case messageTooLarge(kind: String, bytes: Int, frameBytesMax: Int)

    public var description: String {
        switch self {
        case .unsupportedVersion(let version): return "version \(version) is not supported (expected 1)"
        case .unknownProtocol(let name): return "unknown protocol \"\(name)\" (known: \(ClusterFile.knownProtocols.joined(separator: ", ")))"
        case .protocolMismatch(let name, let running): return "the cluster runs \"\(name)\", not \"\(running)\""
        case .notDeployable(let name):
            return "\"\(name)\" is the simulator's insecure stand-in for signatures; use one of "
                + AuthenticationScheme.deployable.map(\.rawValue).joined(separator: ", ")
        case .faultModelMismatch(let model, let name, let required):
            return "\(name) runs with the \(required) fault model, not \"\(model)\""
        case .invalidSettings(let problem): return problem
        case .tooFewReplicas(let count, let minimum): return "\(count) replicas, at least \(minimum) are needed"
        case .tooMany(let count, let maximum): return "\(count) entries, at most \(maximum) are allowed"
        case .negativeCount(let count): return "\(count) is negative"
        case .duplicateID(let id): return "id \(id) appears more than once"
        case .idOutOfRange(let id, let count): return "id \(id) is out of range: replica ids must be 0..<\(count)"
        case .invalidPort(let port): return "\(port) is not a valid port (1...65535)"
        case .emptyHost: return "host is empty"
        case .invalidPath(let path): return "\"\(path)\" is not a usable path (empty or with a NUL byte)"
        case .noDurableMode(let name): return "\(name) has no durable mode yet: remove dataDir (or run it in memory)"
        case .sharedDataDirectory(let path):
            return "two replicas on one host would share the data directory \"\(path)\": put {id} in the template"
        case .hostCountMismatch(let hosts, let replicas): return "\(hosts) hosts for \(replicas) replicas: give one host for all or one per replica"
        case .missingKey: return "key is missing"
        case .invalidBase64: return "not valid base64"
        case .invalidKey(let reason): return "not a valid key: \(reason)"
        case .invalidLimits(let problem): return problem
        case .messageTooLarge(let kind, let bytes, let frameBytesMax):
            let lower: String
            switch kind {
            case "viewChange", "newView", "newViewRelay": lower = "watermarkWindow"
            case "stateChunk": lower = "stateChunkBytes"
            case "reply": lower = "resultBytesMax"
            default: lower = "operationBytesMax"
            }
            return "\(frameBytesMax) bytes is too small: a \(kind) message may be \(bytes) bytes with these settings "
                + "(raise frameBytesMax to at least \(bytes), or lower \(lower))"
        }
    }
}
