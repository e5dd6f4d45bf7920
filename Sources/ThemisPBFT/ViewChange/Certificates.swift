import ThemisCore
import ThemisProtocolKit

/// Content checks of the certificates inside a VIEW-CHANGE: quorum sizes, distinct senders, matching
/// contents. (The shell has verified every authenticator before the core sees the message.)
/// The Rust original missed several of these; each one is a separate test.
extension PBFTReplica {
    func validate(_ message: ViewChange) throws(Rejection) {
        try validateCheckpointProof(message)
        guard message.prepared.count <= Int(settings.watermarkWindow) else {
            throw .invalidCertificate("\(message.prepared.count) prepared certificates exceed the window")
        }
        var sequences = Set<SequenceNumber>()
        for certificate in message.prepared {
            let sequence = certificate.sequence
            guard sequence > message.stableCheckpoint, sequence <= message.stableCheckpoint + settings.watermarkWindow else {
                throw .invalidCertificate("prepared \(sequence) outside the window of checkpoint \(message.stableCheckpoint.rawValue)")
            }
            guard sequences.insert(sequence).inserted else {
                throw .invalidCertificate("two prepared certificates for \(sequence)")
            }
            try validate(certificate, before: message.newView)
        }
    }

    /// A quorum of CHECKPOINT messages from distinct replicas, all for the claimed sequence number and digest.
    func validateCheckpointProof(_ message: ViewChange) throws(Rejection) {
        try validateCheckpointProof(message.stableCheckpoint, digest: message.stableDigest, proof: message.checkpointProof)
    }

    /// A quorum of CHECKPOINT messages from distinct replicas for (`stable`, `digest`); none for sequence 0.
    func validateCheckpointProof(_ stable: SequenceNumber, digest: Digest, proof: [Authenticated<Checkpoint>]) throws(Rejection) {
        guard stable.rawValue % settings.checkpointInterval == 0 else {
            throw .invalidCertificate("stable checkpoint \(stable.rawValue) is not a multiple of K")
        }
        if stable == .zero {
            guard proof.isEmpty, digest == .zero else {
                throw .invalidCertificate("checkpoint proof for sequence 0")
            }
            return
        }
        var senders = Set<ReplicaID>()
        for entry in proof {
            let checkpoint = entry.message
            guard checkpoint.sequence == stable, checkpoint.stateDigest == digest else {
                throw .invalidCertificate("checkpoint proof entry does not match \(stable) / \(digest)")
            }
            guard configuration.contains(checkpoint.sender), senders.insert(checkpoint.sender).inserted else {
                throw .invalidCertificate("checkpoint proof repeats or names an unknown \(checkpoint.sender)")
            }
        }
        guard senders.count >= configuration.quorumSize else {
            throw .invalidCertificate("checkpoint proof has \(senders.count) of \(configuration.quorumSize) messages")
        }
    }

    /// A PRE-PREPARE (header) from the primary of its view, and PREPAREs from
    /// 2f distinct backups (quorum - 1) matching view, sequence number and digest.
    func validate(_ certificate: PreparedCertificate, before newView: View) throws(Rejection) {
        let prePrepare = certificate.prePrepare.message
        guard prePrepare.view < newView else {
            throw .invalidCertificate("certificate of \(prePrepare.view) in a VIEW-CHANGE to \(newView)")
        }
        let primaryOfView = configuration.primary(of: prePrepare.view)
        guard prePrepare.sender == primaryOfView else {
            throw .invalidCertificate("pre-prepare for \(prePrepare.sequence) not from the primary of \(prePrepare.view)")
        }
        guard prePrepare.requestCount <= limits.batchRequestsMax else {
            throw .invalidCertificate("batch of \(prePrepare.sequence) holds \(prePrepare.requestCount) requests")
        }
        var backups = Set<ReplicaID>()
        for entry in certificate.prepares {
            let prepare = entry.message
            guard prepare.view == prePrepare.view, prepare.sequence == prePrepare.sequence, prepare.digest == prePrepare.digest else {
                throw .invalidCertificate("prepare for \(prepare.sequence) does not match its pre-prepare")
            }
            guard prepare.sender != primaryOfView, configuration.contains(prepare.sender),
                backups.insert(prepare.sender).inserted
            else {
                throw .invalidCertificate("prepare for \(prepare.sequence) repeats a sender or comes from the primary")
            }
        }
        // Exactly 2f (quorum - 1), as correct replicas build them: more would let a faulty replica inflate
        // its VIEW-CHANGE, and the NEW-VIEW that carries it, beyond the frame `MessageBounds` guarantees.
        guard backups.count == configuration.quorumSize - 1 else {
            throw .invalidCertificate("\(backups.count) prepares for \(prePrepare.sequence); exactly \(configuration.quorumSize - 1) needed")
        }
    }
}
