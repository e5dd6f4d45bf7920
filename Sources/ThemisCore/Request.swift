/// A client's request: an opaque operation for the application, ordered by the replicas.
///
/// The `authenticator` is whatever the configured scheme produces (a signature, or one MAC per replica);
/// it is carried along inside PRE-PREPAREs so that every backup can check the request itself, but it is not
/// part of the request's digest.
public struct Request: Hashable, Sendable {
    public let client: ClientID
    public let timestamp: Timestamp
    public let operation: [UInt8]
    public let authenticator: [UInt8]
    /// SHA-256 over (client, timestamp, operation), computed once.
    public let digest: Digest

    public init(client: ClientID, timestamp: Timestamp, operation: [UInt8], authenticator: [UInt8] = []) {
        self.client = client
        self.timestamp = timestamp
        self.operation = operation
        self.authenticator = authenticator
        self.digest = Request.digest(client: client, timestamp: timestamp, operation: operation)
    }

    /// The same request with another authenticator (the digest does not cover it, so it is kept, not
    /// recomputed).
    public func withAuthenticator(_ authenticator: [UInt8]) -> Request {
        Request(client: client, timestamp: timestamp, operation: operation, authenticator: authenticator, digest: digest)
    }

    private init(client: ClientID, timestamp: Timestamp, operation: [UInt8], authenticator: [UInt8], digest: Digest) {
        self.client = client
        self.timestamp = timestamp
        self.operation = operation
        self.authenticator = authenticator
        self.digest = digest
    }

    public static func digest(client: ClientID, timestamp: Timestamp, operation: [UInt8]) -> Digest {
        var builder = DigestBuilder(domain: "themis.request.v1")
        builder.append(client.rawValue)
        builder.append(timestamp.rawValue)
        builder.append(bytes: operation)
        return builder.finish()
    }

    /// The digest of a batch: binds the count and every request's digest, in order.
    public static func batchDigest(_ requests: [Request]) -> Digest {
        var builder = DigestBuilder(domain: "themis.batch.v1")
        builder.append(UInt64(requests.count))
        for request in requests {
            builder.append(request.digest)
        }
        return builder.finish()
    }

    public static func == (lhs: Request, rhs: Request) -> Bool {
        lhs.digest == rhs.digest && lhs.client == rhs.client && lhs.timestamp == rhs.timestamp
            && lhs.operation == rhs.operation && lhs.authenticator == rhs.authenticator
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(digest)
    }
}

/// A replica's answer to a client's request. A client accepts a result once f+1 replicas sent
/// matching replies (same timestamp, same result), or once a quorum (2f+1) did when some of them are
/// tentative.
public struct Reply: Hashable, Sendable {
    public let view: View
    public let timestamp: Timestamp
    public let client: ClientID
    public let replica: ReplicaID
    public let result: [UInt8]
    public let authenticator: [UInt8]
    /// PBFT's tentative execution (Castro and Liskov 5.1.2): the replica executed the request once its batch
    /// prepared, before it committed. Such a reply counts only towards a quorum (2f+1) of matching replies; it
    /// travels as its own message kind, so a tentative reply can never pass as a committed one.
    public let tentative: Bool

    public init(view: View, timestamp: Timestamp, client: ClientID, replica: ReplicaID, result: [UInt8], authenticator: [UInt8] = [],
                tentative: Bool = false) {
        self.view = view
        self.timestamp = timestamp
        self.client = client
        self.replica = replica
        self.result = result
        self.authenticator = authenticator
        self.tentative = tentative
    }

    public func withAuthenticator(_ authenticator: [UInt8]) -> Reply {
        Reply(view: view, timestamp: timestamp, client: client, replica: replica, result: result, authenticator: authenticator,
              tentative: tentative)
    }

    /// The same reply, tentative or committed.
    public func marked(tentative: Bool) -> Reply {
        Reply(view: view, timestamp: timestamp, client: client, replica: replica, result: result, authenticator: authenticator,
              tentative: tentative)
    }
}
