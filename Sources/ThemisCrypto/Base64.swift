import FoundationEssentials

/// Base64 as used for every key in the configuration files (standard alphabet, with padding).
enum Base64 {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        Data(bytes).base64EncodedString()
    }

    /// - Throws: `FieldProblem.invalidBase64` if the text is not base64.
    static func decode(_ text: String) throws(FieldProblem) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { throw .invalidBase64 }
        return Array(data)
    }
}
