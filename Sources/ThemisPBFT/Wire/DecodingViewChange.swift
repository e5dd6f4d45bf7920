import NIOCore
import ThemisCore
import ThemisWire

/// VIEW-CHANGE and NEW-VIEW (the outer authenticator is read by the caller).
///
/// Every count is checked against its bound before anything is read, and each list reserves no more
/// entries than the remaining bytes could hold at the smallest entry size, so a lying count
/// allocates little. Nesting has a fixed depth (NEW-VIEW > VIEW-CHANGE > certificate > request).
extension PayloadReader {
    mutating func readViewChange() throws(WireError) -> ViewChange {
        let newView = try readView()
        let stableCheckpoint = try readSequence()
        let stableDigest = try readDigest()
        let sender = try readReplicaID()
        let checkpointProof = try readCheckpointProof()
        let prepared = try readPreparedCertificates()
        return ViewChange(
            newView: newView, stableCheckpoint: stableCheckpoint, stableDigest: stableDigest,
            checkpointProof: checkpointProof, prepared: prepared, sender: sender
        )
    }

    mutating func readNewView() throws(WireError) -> NewView {
        let view = try readView()
        let sender = try readReplicaID()
        let viewChangeCount = try readLength(field: "view changes", max: WireCodec.certificateEntriesMax)
        var viewChanges: [Authenticated<ViewChange>] = []
        viewChanges.reserveCapacity(reservation(viewChangeCount, entryBytesMin: WireCodec.viewChangeEntryBytesMin))
        for _ in 0..<viewChangeCount {
            let viewChange = try readViewChange()
            let authenticator = try readByteString(field: "view-change authenticator", max: limits.authenticatorBytesMax)
            viewChanges.append(Authenticated(viewChange, authenticator: authenticator))
        }
        let prePrepareCount = try readLength(field: "new-view pre-prepares", max: WireCodec.preparedCertificatesMax)
        var prePrepares: [Authenticated<PrePrepareHeader>] = []
        prePrepares.reserveCapacity(reservation(prePrepareCount, entryBytesMin: WireCodec.newViewPrePrepareEntryBytesMin))
        for _ in 0..<prePrepareCount {
            let prePrepare = try readPrePrepareHeader()
            let authenticator = try readByteString(field: "new-view pre-prepare authenticator", max: limits.authenticatorBytesMax)
            prePrepares.append(Authenticated(prePrepare, authenticator: authenticator))
        }
        return NewView(view: view, viewChanges: viewChanges, prePrepares: prePrepares, sender: sender)
    }

    mutating func readCheckpointProof() throws(WireError) -> [Authenticated<Checkpoint>] {
        let count = try readLength(field: "checkpoint proof", max: WireCodec.certificateEntriesMax)
        var proof: [Authenticated<Checkpoint>] = []
        proof.reserveCapacity(reservation(count, entryBytesMin: WireCodec.checkpointEntryBytesMin))
        for _ in 0..<count {
            let sequence = try readSequence()
            let stateDigest = try readDigest()
            let sender = try readReplicaID()
            let authenticator = try readByteString(field: "checkpoint authenticator", max: limits.authenticatorBytesMax)
            proof.append(Authenticated(Checkpoint(sequence: sequence, stateDigest: stateDigest, sender: sender), authenticator: authenticator))
        }
        return proof
    }

    private mutating func readPreparedCertificates() throws(WireError) -> [PreparedCertificate] {
        let count = try readLength(field: "prepared certificates", max: WireCodec.preparedCertificatesMax)
        var certificates: [PreparedCertificate] = []
        certificates.reserveCapacity(reservation(count, entryBytesMin: WireCodec.preparedCertificateBytesMin))
        for _ in 0..<count {
            certificates.append(try readPreparedCertificate())
        }
        return certificates
    }

    mutating func readPreparedCertificate() throws(WireError) -> PreparedCertificate {
        let prePrepare = try readPrePrepareHeader()
        let prePrepareAuthenticator = try readByteString(field: "pre-prepare authenticator", max: limits.authenticatorBytesMax)
        let count = try readLength(field: "prepares", max: WireCodec.certificateEntriesMax)
        var prepares: [Authenticated<Prepare>] = []
        prepares.reserveCapacity(reservation(count, entryBytesMin: WireCodec.prepareEntryBytesMin))
        for _ in 0..<count {
            let slot = try readSlot()
            let authenticator = try readByteString(field: "prepare authenticator", max: limits.authenticatorBytesMax)
            let prepare = Prepare(view: slot.view, sequence: slot.sequence, digest: slot.digest, sender: slot.sender)
            prepares.append(Authenticated(prepare, authenticator: authenticator))
        }
        return PreparedCertificate(prePrepare: Authenticated(prePrepare, authenticator: prePrepareAuthenticator), prepares: prepares)
    }
}
