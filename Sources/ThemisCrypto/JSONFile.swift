import FoundationEssentials
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// read(2) into `chunk` (outside `JSONFile`, whose `read(path:)` would shadow the system call).
private func readChunk(_ descriptor: Int32, _ chunk: inout [UInt8]) -> Int {
    read(descriptor, &chunk, chunk.count)
}

/// Reading and writing the JSON configuration files, with every failure mapped to a `ConfigurationError`
/// that names the file and, for shape errors, the JSON path of the field.
enum JSONFile {
    /// Largest configuration file read: a cluster file lists at most `Limits.clientsMax` clients of a few
    /// hundred bytes each.
    static let fileBytesMax = 64 * 1024 * 1024

    /// - Throws: `ConfigurationError.fileNotFound`, `.unreadable` or `.malformedJSON`.
    static func read<Value: Decodable>(path: String) throws(ConfigurationError) -> Value {
        try decode(try contents(path: path), source: path)
    }

    /// The file's bytes, read without Foundation (see `JSON`).
    /// - Throws: `ConfigurationError.fileNotFound` or `.unreadable` (with the system's reason).
    static func contents(path: String) throws(ConfigurationError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { throw .fileNotFound(file: path) }
            throw .unreadable(file: path, reason: systemReason(code))
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = readChunk(descriptor, &chunk)
            if count < 0 {
                if errno == EINTR { continue }
                throw .unreadable(file: path, reason: systemReason(errno))
            }
            if count == 0 { return bytes }
            guard bytes.count + count <= fileBytesMax else {
                throw .unreadable(file: path, reason: "larger than \(fileBytesMax) bytes")
            }
            bytes += chunk[0..<count]
        }
    }

    private static func systemReason(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: text)) (errno \(code))"
    }

    /// - Throws: `ConfigurationError.malformedJSON` naming the offending field, or where the text stops
    ///   being JSON.
    static func decode<Value: Decodable>(_ bytes: [UInt8], source: String) throws(ConfigurationError) -> Value {
        do {
            return try JSON.decode(Value.self, from: bytes)
        } catch let error as JSON.SyntaxError {
            throw .malformedJSON(file: source, field: nil, reason: "not valid JSON (\(error))")
        } catch let error as DecodingError {
            throw malformed(error, source: source)
        } catch {
            throw .malformedJSON(file: source, field: nil, reason: "\(error)")
        }
    }

    /// Pretty-printed JSON with sorted keys: for humans to read and edit, and byte-for-byte reproducible
    /// (without `.sortedKeys` the encoder emits keys in hash order, which changes from run to run).
    static func encoded(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Our models hold only strings, integers and arrays: encoding them cannot fail.
        guard let data = try? encoder.encode(value) else { preconditionFailure("JSON encoding failed") }
        return data
    }

    /// Writes the value as JSON, replacing any existing file.
    /// - Parameter ownerOnly: create the file with mode 0600 (private keys).
    /// - Throws: `ConfigurationError.unwritable`.
    static func write(_ value: some Encodable, path: String, ownerOnly: Bool) throws(ConfigurationError) {
        var bytes = encoded(value)
        bytes.append(UInt8(ascii: "\n"))
        let attributes: [FileAttributeKey: Any]? = ownerOnly ? [.posixPermissions: 0o600] : nil
        if ownerOnly, FileManager.default.fileExists(atPath: path) {
            // createFile keeps an existing file's mode on some platforms: remove the old one first.
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw .unwritable(file: path, reason: "\(error)")
            }
        }
        guard FileManager.default.createFile(atPath: path, contents: bytes, attributes: attributes) else {
            throw .unwritable(file: path, reason: "the file could not be created")
        }
    }

    /// Maps a decoder error to the field it concerns.
    private static func malformed(_ error: DecodingError, source: String) -> ConfigurationError {
        switch error {
        case .typeMismatch(let type, let context):
            return .malformedJSON(file: source, field: fieldPath(context.codingPath), reason: "expected \(typeName(type))")
        case .valueNotFound(let type, let context):
            return .malformedJSON(file: source, field: fieldPath(context.codingPath), reason: "expected \(typeName(type)), found null")
        case .keyNotFound(let key, let context):
            return .malformedJSON(file: source, field: fieldPath(context.codingPath + [key]), reason: "missing")
        case .dataCorrupted(let context):
            let reason = context.codingPath.isEmpty ? "not valid JSON" : context.debugDescription
            return .malformedJSON(file: source, field: fieldPath(context.codingPath), reason: reason)
        @unknown default:
            return .malformedJSON(file: source, field: nil, reason: "\(error)")
        }
    }

    /// `replicas[2].port` from a coding path; nil for the root.
    static func fieldPath(_ path: [any CodingKey]) -> String? {
        var text = ""
        for key in path {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text.isEmpty ? nil : text
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is UInt32.Type, is UInt64.Type: return "an integer"
        default: return "\(type)"
        }
    }
}
