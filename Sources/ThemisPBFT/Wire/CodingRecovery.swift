import NIOCore
import ThemisCore
import ThemisWire

/// RECOVERY-QUERY and RECOVERY-REPLY: writers, exact sizes, readers and authenticated bytes (the layout is on
/// `PBFTKind`). Each writer sits next to its size and its reader so the three stay in step.
extension ByteBuffer {
    /// nonce, target, view, sender.
    mutating func writeRecoveryQuery(_ query: RecoveryQuery) {
        writeInteger(query.nonce)
        writeInteger(query.target.rawValue)
        writeInteger(query.view.rawValue)
        writeInteger(query.sender.rawValue)
    }

    /// sender, the NEW-VIEW's fields, its authenticator (by the new primary).
    mutating func writeNewViewRelay(_ relay: NewViewRelay) {
        writeInteger(relay.sender.rawValue)
        writeNewView(relay.newView.message)
        writeByteString(relay.newView.authenticator)
    }

    /// nonce, view, lastExecuted, stableCheckpoint, stableDigest, sender, checkpoint proof (count,
    /// count × (checkpoint fields, authenticator)).
    mutating func writeRecoveryReply(_ reply: RecoveryReply) {
        writeInteger(reply.nonce)
        writeInteger(reply.view.rawValue)
        writeInteger(reply.lastExecuted.rawValue)
        writeInteger(reply.stableCheckpoint.rawValue)
        writeDigest(reply.stableDigest)
        writeInteger(reply.sender.rawValue)
        writeCheckpointProof(reply.checkpointProof)
    }
}

extension WireCodec {
    /// nonce, target, view, sender.
    static let recoveryQueryBytes = 8 + 8 + 8 + 4

    /// The exact size `writeNewViewRelay` writes.
    static func newViewRelayByteCount(_ relay: NewViewRelay) -> Int {
        4 + newViewByteCount(relay.newView.message) + lengthPrefixBytes + relay.newView.authenticator.count
    }

    /// domain, kind, sender, body digest (the NEW-VIEW and its authenticator included).
    static func newViewRelayAuthenticatedBytes(_ relay: NewViewRelay, bodyDigest: Digest) -> [UInt8] {
        var bytes = authenticationPrefix(.newViewRelay, fieldBytes: 4 + digestBytes)
        bytes.appendBigEndian(relay.sender.rawValue)
        bytes.appendDigest(bodyDigest)
        return bytes
    }
    /// A RECOVERY-REPLY without its proof: nonce, view, lastExecuted, stableCheckpoint, stableDigest, sender,
    /// proof count.
    static let recoveryReplyHeadBytes = 8 + 8 + 8 + 8 + digestBytes + 4 + 4

    /// The exact size `writeRecoveryReply` writes.
    static func recoveryReplyByteCount(_ reply: RecoveryReply) -> Int {
        reply.checkpointProof.reduce(recoveryReplyHeadBytes) { $0 + checkpointEntryBytesMin + $1.authenticator.count }
    }

    /// domain, kind, sender, nonce, target, view.
    static func recoveryQueryAuthenticatedBytes(_ query: RecoveryQuery) -> [UInt8] {
        var bytes = authenticationPrefix(.recoveryQuery, fieldBytes: 4 + 8 + 8 + 8)
        bytes.appendBigEndian(query.sender.rawValue)
        bytes.appendBigEndian(query.nonce)
        bytes.appendBigEndian(query.target.rawValue)
        bytes.appendBigEndian(query.view.rawValue)
        return bytes
    }

    /// domain, kind, sender, nonce, body digest (SHA-256 of the encoded fields, proof included).
    static func recoveryReplyAuthenticatedBytes(_ reply: RecoveryReply, bodyDigest: Digest) -> [UInt8] {
        var bytes = authenticationPrefix(.recoveryReply, fieldBytes: 4 + 8 + digestBytes)
        bytes.appendBigEndian(reply.sender.rawValue)
        bytes.appendBigEndian(reply.nonce)
        bytes.appendDigest(bodyDigest)
        return bytes
    }
}

extension PayloadReader {
    mutating func readRecoveryQuery() throws(WireError) -> RecoveryQuery {
        let nonce = try readUInt64()
        let target = try readSequence()
        let view = try readView()
        return RecoveryQuery(nonce: nonce, target: target, view: view, sender: try readReplicaID())
    }

    mutating func readNewViewRelay() throws(WireError) -> NewViewRelay {
        let sender = try readReplicaID()
        let newView = try readNewView()
        let authenticator = try readByteString(field: "new-view authenticator", max: limits.authenticatorBytesMax)
        return NewViewRelay(newView: Authenticated(newView, authenticator: authenticator), sender: sender)
    }

    mutating func readRecoveryReply() throws(WireError) -> RecoveryReply {
        let nonce = try readUInt64()
        let view = try readView()
        let lastExecuted = try readSequence()
        let stableCheckpoint = try readSequence()
        let stableDigest = try readDigest()
        let sender = try readReplicaID()
        let proof = try readCheckpointProof()
        return RecoveryReply(nonce: nonce, view: view, lastExecuted: lastExecuted, stableCheckpoint: stableCheckpoint,
                             stableDigest: stableDigest, checkpointProof: proof, sender: sender)
    }
}
