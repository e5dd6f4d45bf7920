import NIOCore
import ThemisCore
import ThemisWire

/// Writers and exact sizes for VIEW-CHANGE and NEW-VIEW (the layout is on `PBFTKind`).
///
/// Every `Authenticated<X>` nested inside is written as X's fields, then its authenticator as a
/// byte string (which may be empty). Each writer sits next to its size so the two stay in step.
extension ByteBuffer {
    /// A view-change body: newView, stableCheckpoint, stableDigest, sender, checkpoint proof, prepared
    /// certificates. Also the body of each entry of a NEW-VIEW's V (followed there by its authenticator).
    mutating func writeViewChange(_ viewChange: ViewChange) {
        writeInteger(viewChange.newView.rawValue)
        writeInteger(viewChange.stableCheckpoint.rawValue)
        writeDigest(viewChange.stableDigest)
        writeInteger(viewChange.sender.rawValue)
        writeCheckpointProof(viewChange.checkpointProof)
        writeInteger(WireCodec.wireLength(viewChange.prepared.count))
        for certificate in viewChange.prepared {
            writePreparedCertificate(certificate)
        }
    }

    /// A stable checkpoint's proof: count, then each CHECKPOINT's fields and authenticator (VIEW-CHANGE,
    /// RECOVERY-REPLY, the `stable` record).
    mutating func writeCheckpointProof(_ proof: [Authenticated<Checkpoint>]) {
        writeInteger(WireCodec.wireLength(proof.count))
        for checkpoint in proof {
            writeInteger(checkpoint.message.sequence.rawValue)
            writeDigest(checkpoint.message.stateDigest)
            writeInteger(checkpoint.message.sender.rawValue)
            writeByteString(checkpoint.authenticator)
        }
    }

    /// The pre-prepare header (no batch) and its authenticator, then the prepares, each with its own.
    mutating func writePreparedCertificate(_ certificate: PreparedCertificate) {
        writePrePrepareHeader(certificate.prePrepare.message)
        writeByteString(certificate.prePrepare.authenticator)
        writeInteger(WireCodec.wireLength(certificate.prepares.count))
        for prepare in certificate.prepares {
            let message = prepare.message
            writeSlot(message.view, message.sequence, message.digest, message.sender)
            writeByteString(prepare.authenticator)
        }
    }

    /// view, sender, V (view-change bodies, each followed by its authenticator), O (pre-prepare headers,
    /// without batches; a null request has count 0; each followed by the new primary's own
    /// authenticator over it, which may be empty, so a backup can later forward it in a prepared
    /// certificate).
    mutating func writeNewView(_ newView: NewView) {
        writeInteger(newView.view.rawValue)
        writeInteger(newView.sender.rawValue)
        writeInteger(WireCodec.wireLength(newView.viewChanges.count))
        for viewChange in newView.viewChanges {
            writeViewChange(viewChange.message)
            writeByteString(viewChange.authenticator)
        }
        writeInteger(WireCodec.wireLength(newView.prePrepares.count))
        for prePrepare in newView.prePrepares {
            writePrePrepareHeader(prePrepare.message)
            writeByteString(prePrepare.authenticator)
        }
    }
}

extension WireCodec {
    /// newView, stableCheckpoint, stableDigest, sender: the fixed head of a view-change body.
    static let viewChangeHeadBytes = 8 + 8 + digestBytes + 4
    /// The smallest entries of each list, used to cap up-front reservations while decoding:
    /// a checkpoint with an empty authenticator,
    static let checkpointEntryBytesMin = checkpointBytes + lengthPrefixBytes
    /// a prepare with an empty authenticator,
    static let prepareEntryBytesMin = slotBytes + lengthPrefixBytes
    /// a pre-prepare with an empty batch (also the size of a pre-prepare header),
    static let prePrepareBytesMin = slotBytes + 4
    /// a pre-prepare header: slot and request count,
    static let prePrepareHeaderBytes = slotBytes + 4
    /// an entry of a NEW-VIEW's O: a pre-prepare header and an empty authenticator,
    static let newViewPrePrepareEntryBytesMin = prePrepareHeaderBytes + lengthPrefixBytes
    /// a prepared certificate with an empty authenticator and no prepares,
    static let preparedCertificateBytesMin = prePrepareHeaderBytes + lengthPrefixBytes + 4
    /// a view change with empty lists and an empty authenticator.
    static let viewChangeEntryBytesMin = viewChangeHeadBytes + 4 + 4 + lengthPrefixBytes

    /// The exact size `writeViewChange` writes.
    static func viewChangeByteCount(_ viewChange: ViewChange) -> Int {
        var total = viewChangeHeadBytes + 4 + 4
        for checkpoint in viewChange.checkpointProof {
            total += checkpointEntryBytesMin + checkpoint.authenticator.count
        }
        for certificate in viewChange.prepared {
            total += preparedCertificateByteCount(certificate)
        }
        return total
    }

    /// The exact size `writePreparedCertificate` writes.
    static func preparedCertificateByteCount(_ certificate: PreparedCertificate) -> Int {
        var total = prePrepareHeaderBytes + lengthPrefixBytes
            + certificate.prePrepare.authenticator.count + 4
        for prepare in certificate.prepares {
            total += prepareEntryBytesMin + prepare.authenticator.count
        }
        return total
    }

    /// The exact size `writeNewView` writes.
    static func newViewByteCount(_ newView: NewView) -> Int {
        var total = 8 + 4 + 4 + 4
        for viewChange in newView.viewChanges {
            total += viewChangeByteCount(viewChange.message) + lengthPrefixBytes + viewChange.authenticator.count
        }
        for prePrepare in newView.prePrepares {
            total += prePrepareHeaderBytes + lengthPrefixBytes + prePrepare.authenticator.count
        }
        return total
    }
}
