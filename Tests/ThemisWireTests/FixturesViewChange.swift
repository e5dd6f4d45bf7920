// Fixtures for the view-change messages: certificates with empty and non-empty authenticators, an
// empty VIEW-CHANGE, a full one, a NEW-VIEW with three view changes and null pre-prepares in O (O's
// entries carrying empty and non-empty authenticators), and messages whose lists are exactly at (or
// one past) their wire bounds.
import ThemisCore
import ThemisPBFT
import ThemisWire

extension Fixtures {
    static func checkpointEntry(_ sender: UInt32, sequence: UInt64 = 1000, digest: UInt64 = 2, authenticator: [UInt8] = [0xC0, 0x01]) -> Authenticated<Checkpoint> {
        Authenticated(Checkpoint(sequence: SequenceNumber(sequence), stateDigest: Fixtures.digest(digest), sender: ReplicaID(sender)), authenticator: authenticator)
    }

    static func prepareEntry(_ sender: UInt32, of prePrepare: PrePrepare, authenticator: [UInt8] = [0xA0]) -> Authenticated<Prepare> {
        Authenticated(Prepare(view: prePrepare.view, sequence: prePrepare.sequence, digest: prePrepare.digest, sender: ReplicaID(sender)), authenticator: authenticator)
    }

    /// A certificate for (view, sequence) whose pre-prepare comes from replica view % 4, with prepares from `prepareSenders`.
    static func certificate(
        _ sequence: UInt64, view: UInt64 = 3, requests: [Request], prePrepareAuthenticator: [UInt8] = [0xB0, 0xB1],
        prepareSenders: [UInt32] = [1, 2], prepareAuthenticator: [UInt8] = [0xA0]
    ) -> PreparedCertificate {
        let prePrepare = PrePrepare(view: View(view), sequence: SequenceNumber(sequence), requests: requests, sender: ReplicaID(UInt32(view % 4)))
        return PreparedCertificate(
            prePrepare: Authenticated(prePrepare.header, authenticator: prePrepareAuthenticator),
            prepares: prepareSenders.map { prepareEntry($0, of: prePrepare, authenticator: prepareAuthenticator) }
        )
    }

    /// A replica that never reached a checkpoint and prepared nothing.
    static let emptyViewChange = ViewChange(
        newView: View(4), stableCheckpoint: SequenceNumber(0), stableDigest: .zero, checkpointProof: [], prepared: [], sender: ReplicaID(2)
    )

    static let viewChange = ViewChange(
        newView: View(4), stableCheckpoint: SequenceNumber(1000), stableDigest: digest(2),
        checkpointProof: [checkpointEntry(0), checkpointEntry(1, authenticator: []), checkpointEntry(3)],
        prepared: [
            certificate(1001, requests: [request(1)]),
            certificate(1002, requests: [request(2), request(3, authenticator: [])], prepareAuthenticator: []),
            certificate(1004, view: 2, requests: [request(4, operation: [])], prePrepareAuthenticator: [], prepareSenders: [0, 1, 3]),
        ],
        sender: ReplicaID(1)
    )

    static let otherViewChange = ViewChange(
        newView: View(4), stableCheckpoint: SequenceNumber(1000), stableDigest: digest(2),
        checkpointProof: [checkpointEntry(0), checkpointEntry(3, authenticator: [7])],
        prepared: [certificate(1001, requests: [request(1)], prepareSenders: [2])],
        sender: ReplicaID(3)
    )

    /// An entry of O: a pre-prepare by the new primary (replica 0) in view 4, with its authenticator.
    static func reProposal(_ sequence: UInt64, requests: [Request], authenticator: [UInt8]) -> Authenticated<PrePrepareHeader> {
        Authenticated(PrePrepare(view: View(4), sequence: SequenceNumber(sequence), requests: requests, sender: ReplicaID(0)).header,
                      authenticator: authenticator)
    }

    /// O re-proposes 1001 and 1004 and fills the gap at 1002..1003 with null (empty) batches; the
    /// entries' authenticators are distinct, one of them empty.
    static let newView = NewView(
        view: View(4),
        viewChanges: [
            Authenticated(viewChange, authenticator: [0xD1, 0xD1]),
            Authenticated(emptyViewChange, authenticator: []),
            Authenticated(otherViewChange, authenticator: [0xD3]),
        ],
        prePrepares: [
            reProposal(1001, requests: [request(1)], authenticator: [0xE1]),
            reProposal(1002, requests: [], authenticator: [0xE2, 0xE2]),
            reProposal(1003, requests: [], authenticator: []),
            reProposal(1004, requests: [request(4, operation: [])], authenticator: [0xE4, 0x00, 0xE4]),
        ],
        sender: ReplicaID(0)
    )

    /// Small view-change messages (also part of `samples`), with empty and non-empty authenticators.
    static let viewChangeSamples: [WireMessage] = [
        .pbft(.viewChange(emptyViewChange), authenticator: []),
        .pbft(.viewChange(emptyViewChange), authenticator: [0xEE]),
        .pbft(.viewChange(viewChange), authenticator: [4, 4, 4]),
        .pbft(.newView(newView), authenticator: [6]),
        .pbft(.newView(NewView(view: View(1), viewChanges: [], prePrepares: [], sender: ReplicaID(1))), authenticator: []),
    ]

    /// A VIEW-CHANGE with `proof` checkpoint entries, `certificates` certificates (empty batches), the
    /// first of which holds `prepares` prepares.
    static func viewChange(proof: Int, certificates: Int, prepares: Int) -> ViewChange {
        let nullPrePrepare = PrePrepare(view: View(1), sequence: SequenceNumber(1), requests: [], sender: ReplicaID(1))
        let first = PreparedCertificate(
            prePrepare: Authenticated(nullPrePrepare.header, authenticator: []),
            prepares: (0..<prepares).map { prepareEntry(UInt32($0), of: nullPrePrepare, authenticator: []) }
        )
        let rest = (1..<max(certificates, 1)).map { certificate(UInt64($0) + 1, view: 1, requests: [], prePrepareAuthenticator: [], prepareSenders: []) }
        return ViewChange(
            newView: View(2), stableCheckpoint: SequenceNumber(0), stableDigest: .zero,
            checkpointProof: (0..<proof).map { checkpointEntry(UInt32($0), authenticator: []) },
            prepared: certificates == 0 ? [] : [first] + rest, sender: ReplicaID(1)
        )
    }

    /// A NEW-VIEW with `viewChanges` empty view changes and `prePrepares` null pre-prepares, each of
    /// the latter with `prePrepareAuthenticator`.
    static func newView(viewChanges: Int, prePrepares: Int, prePrepareAuthenticator: [UInt8] = []) -> NewView {
        NewView(
            view: View(4),
            viewChanges: (0..<viewChanges).map { _ in Authenticated(emptyViewChange, authenticator: []) },
            prePrepares: (0..<prePrepares).map { reProposal(UInt64($0) + 1, requests: [], authenticator: prePrepareAuthenticator) },
            sender: ReplicaID(0)
        )
    }
}
