import ThemisCore

/// Everything a replica knows about one sequence number in the current view.
struct Slot: Sendable {
    /// The accepted PRE-PREPARE (at most one per view and sequence number), kept with the primary's
    /// authenticator for prepared certificates (empty if this replica is the primary).
    var prePrepare: Authenticated<PrePrepareHeader>?
    /// The batch `prePrepare` names. Nil for a re-proposal from a NEW-VIEW whose batch this replica never
    /// received: it votes on the digest (V proves it) and fetches the batch before executing it.
    var batch: [Request]?
    /// PREPAREs by sender; the first one from a sender counts, a different second one is equivocation.
    /// Our own has an empty authenticator (our VIEW-CHANGE vouches for it).
    var prepares: [ReplicaID: Authenticated<Prepare>] = [:]
    /// COMMITs by sender.
    var commits: [ReplicaID: Digest] = [:]
    /// The PRE-PREPARE's batch holds a request that did not verify here: no PREPARE of ours until f other
    /// backups prepared it (a MAC vector may be valid for some replicas only).
    var awaitsVouchers = false
    var isPrepared = false
    var isCommitted = false

    /// Number of distinct senders whose vote is for `digest`.
    static func count(_ votes: [ReplicaID: Digest], matching digest: Digest) -> Int {
        var matching = 0
        for vote in votes.values where vote == digest {
            matching += 1
        }
        return matching
    }

    func preparesMatching(_ digest: Digest) -> [Authenticated<Prepare>] {
        prepares.values.filter { $0.message.digest == digest }.sorted { $0.message.sender < $1.message.sender }
    }
}
