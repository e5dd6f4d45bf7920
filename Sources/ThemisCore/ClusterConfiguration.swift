/// The replica group's size and the quorum sizes derived from it, computed in this one place.
public struct ClusterConfiguration: Hashable, Sendable {
    /// Which fault model the quorums are computed for.
    public enum FaultModel: String, Hashable, Sendable, Codable {
        /// PBFT: n >= 3f + 1.
        case byzantine
        /// Hybster with a trusted counter: n >= 2f + 1.
        case hybrid
    }

    public enum Error: Swift.Error, Hashable, CustomStringConvertible {
        case tooFewReplicas(count: Int, minimum: Int)
        case tooManyReplicas(count: Int, maximum: Int)
        public var description: String {
            switch self {
            case .tooFewReplicas(let count, let minimum):
                return "a cluster needs at least \(minimum) replicas for this fault model, got \(count)"
            case .tooManyReplicas(let count, let maximum):
                return "a cluster has at most \(maximum) replicas, got \(count)"
            }
        }
    }

    /// n, the number of replicas.
    public let replicaCount: Int
    /// f, the number of faulty replicas tolerated.
    public let faultsTolerated: Int
    public let faultModel: FaultModel

    /// The largest cluster accepted (bounds every per-replica table).
    public static let replicaCountMax = 1024

    /// - Throws: `Error.tooFewReplicas` if n cannot tolerate even one fault, `Error.tooManyReplicas`
    ///   above `replicaCountMax`.
    public init(replicaCount: Int, faultModel: FaultModel = .byzantine) throws(Error) {
        let minimum = faultModel == .byzantine ? 4 : 3
        guard replicaCount >= minimum else { throw .tooFewReplicas(count: replicaCount, minimum: minimum) }
        guard replicaCount <= Self.replicaCountMax else {
            throw .tooManyReplicas(count: replicaCount, maximum: Self.replicaCountMax)
        }
        self.replicaCount = replicaCount
        self.faultModel = faultModel
        switch faultModel {
        case .byzantine: self.faultsTolerated = (replicaCount - 1) / 3
        case .hybrid: self.faultsTolerated = (replicaCount - 1) / 2
        }
    }

    /// Size of a certificate: any two quorums intersect in at least f+1 replicas, so in one correct one.
    /// For n = 3f+1 this is 2f+1; in general ceil((n + f + 1) / 2).
    public var quorumSize: Int {
        switch faultModel {
        case .byzantine: return (replicaCount + faultsTolerated + 2) / 2
        case .hybrid: return faultsTolerated + 1
        }
    }

    /// Number of matching replies a client needs: f+1, so at least one comes from a correct replica.
    public var replyQuorumSize: Int { faultsTolerated + 1 }

    /// Number of matching replies a client needs for a read-only request (answered by each replica on its
    /// own state, not ordered): every replica, n. A write completes with f+1 matching replies, so only one
    /// correct replica may have executed it; a read that ends after it must hear from that replica. With r
    /// matching read replies, r - f of them correct, and w - f correct writers among the n - f correct
    /// replicas, the two meet when (r - f) + (w - f) > n - f, that is r + w > n + f; with w = f + 1, r = n.
    /// (Castro and Liskov's r = w = 2f + 1 would slow every write to the third reply instead.)
    public var readOnlyQuorumSize: Int { replicaCount }

    /// Number of distinct replicas that must vouch for something before a correct one trusts it (f+1).
    public var weakQuorumSize: Int { faultsTolerated + 1 }

    /// The primary of a view: `v mod n`.
    public func primary(of view: View) -> ReplicaID {
        ReplicaID(UInt32(view.rawValue % UInt64(replicaCount)))
    }

    public var replicas: [ReplicaID] { (0..<replicaCount).map { ReplicaID(UInt32($0)) } }

    public func contains(_ replica: ReplicaID) -> Bool { Int(replica.rawValue) < replicaCount }
}
