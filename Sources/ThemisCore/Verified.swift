/// A message whose authenticator (and the authenticators of every message and request inside it) has
/// been checked.
///
/// Only the shell and the simulator, after verification, create one (the initializer is `package`),
/// so a protocol core cannot be handed an unchecked message by mistake. The authenticator is kept so the
/// core can show the message to third parties later (prepared certificates in a VIEW-CHANGE).
public struct Verified<Message: Sendable>: Sendable {
    public let message: Message
    /// The sender's authenticator over the message's authenticated bytes.
    public let authenticator: [UInt8]
    /// The message itself is authentic, but a client request it carries did not verify for this replica
    /// (only set for a PRE-PREPARE). The core must not vouch for such a request before f other replicas
    /// have: with MAC authenticators a faulty client can make a request valid for some replicas only,
    /// and a faulty primary can propose a request no client sent.
    public let requestsUnverified: Bool

    /// - Parameters:
    ///   - message: a message whose authenticity the caller MUST have verified.
    ///   - requestsUnverified: the caller checked the message's own authenticator, but not every client
    ///     request inside verified.
    @usableFromInline package init(checked message: Message, authenticator: [UInt8] = [], requestsUnverified: Bool = false) {
        self.message = message
        self.authenticator = authenticator
        self.requestsUnverified = requestsUnverified
    }
}

extension Verified: Equatable where Message: Equatable {}

/// A message together with the authenticator its sender attached, so that it can be forwarded as proof.
///
/// Inside a VIEW-CHANGE (or NEW-VIEW), an entry whose sender is the sender of the enclosing message may
/// carry an empty authenticator: the enclosing message's own authenticator vouches for it.
public struct Authenticated<Message: Hashable & Sendable>: Hashable, Sendable {
    public let message: Message
    public let authenticator: [UInt8]

    public init(_ message: Message, authenticator: [UInt8]) {
        self.message = message
        self.authenticator = authenticator
    }
}
