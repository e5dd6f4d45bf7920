import ThemisCore

/// Everything a replica knows about one sequence number in the current view.
struct Slot: Sendable {
    /// The accepted PRE-PREPARE (at most one per view and sequence number).
    var prePrepare: PrePrepare?
    /// PREPAREs by sender; the first one from a sender counts, a different second one is equivocation.
    var prepares: [ReplicaID: Digest] = [:]
    /// COMMITs by sender.
    var commits: [ReplicaID: Digest] = [:]
    var isPrepared = false
    var isCommitted = false

    /// Number of distinct senders in `votes` that voted for `digest`.
    static func count(_ votes: [ReplicaID: Digest], matching digest: Digest) -> Int {
        var matching = 0
        for vote in votes.values where vote == digest {
            matching += 1
        }
        return matching
    }
}
