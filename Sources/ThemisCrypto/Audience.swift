import ThemisCore

extension Keyring {
    /// Who an authenticator is for. Signature schemes ignore it (a signature convinces everyone); `hmac`
    /// needs it to pick the link keys.
    public enum Audience: Sendable, Hashable {
        /// Every replica: with `hmac`, a vector of one MAC per replica.
        case allReplicas
        /// One principal: with `hmac`, a single MAC.
        case principal(Principal)
    }
}
