import ThemisCore
import ThemisProtocolKit

/// Computing O from V (PBFT section 4.4): what a new primary re-proposes, and what every backup
/// recomputes to check a NEW-VIEW.
extension PBFTReplica {
    /// - Parameters:
    ///   - viewChanges: a quorum of valid VIEW-CHANGEs for `view`.
    ///   - view: the new view.
    ///   - primary: the primary of `view`.
    /// - Returns: the VIEW-CHANGE with the latest stable checkpoint (min-s) and, for every s in
    ///   (min-s, max-s], a pre-prepare of `view` for the batch prepared in the highest view at s, or an
    ///   empty batch (null request) if none prepared.
    static func reproposals(from viewChanges: [ViewChange], view: View, primary: ReplicaID) -> (stable: ViewChange, prePrepares: [PrePrepareHeader]) {
        precondition(!viewChanges.isEmpty, "O computed from an empty V")
        // Ties (equal sequence numbers, hence equal digests under the fault bound) break by sender: deterministic.
        let stable = viewChanges.max { ($0.stableCheckpoint, $1.sender) < ($1.stableCheckpoint, $0.sender) } ?? viewChanges[0]
        let minimum = stable.stableCheckpoint
        var chosen: [SequenceNumber: PreparedCertificate] = [:]
        for message in viewChanges {
            for certificate in message.prepared where certificate.sequence > minimum {
                if let current = chosen[certificate.sequence], !isPreferred(certificate, over: current) { continue }
                chosen[certificate.sequence] = certificate
            }
        }
        let maximum = chosen.keys.max() ?? minimum
        var prePrepares: [PrePrepareHeader] = []
        var sequence = minimum.next
        while sequence <= maximum {
            if let certificate = chosen[sequence] {
                let batch = certificate.prePrepare.message
                prePrepares.append(PrePrepareHeader(view: view, sequence: sequence, digest: batch.digest,
                                                    requestCount: batch.requestCount, sender: primary))
            } else {
                prePrepares.append(PrePrepareHeader(view: view, sequence: sequence, digest: Self.nullBatchDigest, requestCount: 0, sender: primary))
            }
            sequence = sequence.next
        }
        return (stable, prePrepares)
    }

    /// The digest of the empty batch that fills a gap in O (PBFT's null request).
    static let nullBatchDigest = Request.batchDigest([])

    /// The certificate of the higher view wins (taking the first one found is a known bug); equal views
    /// break by digest so every replica picks the same.
    static func isPreferred(_ candidate: PreparedCertificate, over current: PreparedCertificate) -> Bool {
        if candidate.view != current.view { return candidate.view > current.view }
        let a = candidate.digest
        let b = current.digest
        return (a.word0, a.word1, a.word2, a.word3) < (b.word0, b.word1, b.word2, b.word3)
    }
}
