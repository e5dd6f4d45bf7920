import NIOCore
import ThemisCore
import ThemisWire

/// Authenticated bytes of the view-change messages: the fixed fields a verifier checks first, then
/// the SHA-256 of the whole encoded body, which binds every nested certificate, authenticator and batch.
extension WireCodec {
    /// domain, kind, sender, newView, stableCheckpoint, stableDigest, body digest.
    static func viewChangeAuthenticatedBytes(_ viewChange: ViewChange, bodyDigest: Digest) -> [UInt8] {
        var bytes = authenticationPrefix(.viewChange, fieldBytes: 4 + 8 + 8 + digestBytes + digestBytes)
        bytes.appendBigEndian(viewChange.sender.rawValue)
        bytes.appendBigEndian(viewChange.newView.rawValue)
        bytes.appendBigEndian(viewChange.stableCheckpoint.rawValue)
        bytes.appendDigest(viewChange.stableDigest)
        bytes.appendDigest(bodyDigest)
        return bytes
    }

    /// domain, kind, sender, view, body digest.
    static func newViewAuthenticatedBytes(_ newView: NewView, bodyDigest: Digest) -> [UInt8] {
        var bytes = authenticationPrefix(.newView, fieldBytes: 4 + 8 + digestBytes)
        bytes.appendBigEndian(newView.sender.rawValue)
        bytes.appendBigEndian(newView.view.rawValue)
        bytes.appendDigest(bodyDigest)
        return bytes
    }

    /// SHA-256 of exactly the bytes `writePBFTFields` writes for `message` (no version, kind or
    /// outer authenticator).
    static func bodyDigest(of message: PBFTMessage) -> Digest {
        var body = ByteBuffer()
        body.reserveCapacity(pbftFieldsByteCount(message))
        body.writePBFTFields(message)
        return Digest.of(body.readableBytesView)
    }
}
