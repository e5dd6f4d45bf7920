import Crypto
import Synchronization
import ThemisCore

/// Signatures already found valid, for the simulator: there every replica of a world checks the same
/// broadcast signature, and Ed25519 verification (64 us) dominated a run. Keyed by the signer and SHA-256
/// over the signature and the signed bytes (under a microsecond per KiB); only valid ones are kept, so
/// a forged signature is checked, and refused, every time. Never used by a replica process.
package final class SignatureMemo: Sendable {
    private struct Key: Hashable {
        let signer: Principal
        let digest: SHA256.Digest
    }

    private let valid = Mutex<Set<Key>>([])

    package init() {}

    /// Whether `check` (the real verification of `signature` over `bytes` by `signer`) passes, running it
    /// only if this signature over these bytes was not found valid before.
    func isValid(_ signature: [UInt8], for bytes: [UInt8], by signer: Principal, check: () -> Bool) -> Bool {
        var hash = SHA256()
        // The signature's length first, so that no other split of the same bytes can match.
        hash.update(data: (0..<8).map { UInt8(truncatingIfNeeded: signature.count >> (8 * $0)) })
        hash.update(data: signature)
        hash.update(data: bytes)
        let key = Key(signer: signer, digest: hash.finalize())
        if valid.withLock({ $0.contains(key) }) { return true }
        guard check() else { return false }
        valid.withLock { _ = $0.insert(key) }
        return true
    }
}
