import ThemisCore
import ThemisCrypto
import ThemisWire

/// Why the ingress refused a message before it reached the protocol core.
public enum IngressRefusal: Error, Hashable, Sendable {
    /// The protocol payload does not decode (the shell closes the link, as for any malformed frame).
    case malformed(WireError)
    /// The message names another sender than the peer its link authenticated (a replica's message must
    /// name that replica; a request must name the connection's client or one attached to it).
    case forgedSender
    /// An authenticator did not verify: the message's own, or one inside it (client requests, certificate
    /// entries of VIEW-CHANGE and NEW-VIEW).
    case authenticationFailed
}

/// The one place where a message from a peer becomes an input of the protocol core (`Verified`): the
/// protocol payload decoded by the plug-in's codec, the sender check, then every authenticator check (the
/// plug-in's verifier). The NIO shell runs it on each connection's event loop, the simulator on every
/// delivered packet, so a check removed from here is removed from both (the simulator's tests then fail;
/// see `SimulatorTests`).
public struct Ingress<Plugin: ProtocolPlugin>: Sendable {
    public typealias Message = Plugin.Core.Message
    public let keyring: Keyring
    public let limits: Limits
    /// Test-only (the simulator's "checks can fail" tests): admit messages without checking their
    /// authenticators. Never set by a replica process.
    @usableFromInline let skipsAuthentication: Bool

    public init(keyring: Keyring, limits: Limits) {
        self.init(keyring: keyring, limits: limits, skippingAuthenticationForTesting: false)
    }

    package init(keyring: Keyring, limits: Limits, skippingAuthenticationForTesting: Bool) {
        self.keyring = keyring
        self.limits = limits
        self.skipsAuthentication = skippingAuthenticationForTesting
    }

    /// A protocol payload from replica `peer` (the sender its link authenticated): decoded, then admitted.
    @inlinable
    public func admit(_ payload: ProtocolPayload, from peer: ReplicaID) -> Result<Verified<Message>, IngressRefusal> {
        let decoded: (message: Message, authenticator: [UInt8])
        do {
            decoded = try Plugin.decode(payload, limits: limits)
        } catch {
            return .failure(.malformed(error))
        }
        return admit(decoded.message, authenticator: decoded.authenticator, from: peer)
    }

    /// A decoded message from replica `peer`.
    /// - Returns: the verified message (`requestsUnverified` set where the message's own authenticator checks
    ///   out but a client request inside does not), or why it is refused.
    @inlinable
    public func admit(_ message: Message, authenticator: [UInt8], from peer: ReplicaID) -> Result<Verified<Message>, IngressRefusal> {
        guard Plugin.sender(of: message) == peer else { return .failure(.forgedSender) }
        let verdict = skipsAuthentication ? .authentic : Plugin.verification(of: message, authenticator: authenticator, keyring: keyring)
        guard verdict != .forged else { return .failure(.authenticationFailed) }
        return .success(Verified(checked: message, authenticator: authenticator, requestsUnverified: verdict == .requestsUnverified))
    }

    /// A request on the link of client `peer`, which also carries the clients in `attached` (each proved
    /// by its own handshake proof).
    @inlinable
    public func admit(_ request: Request, from peer: ClientID, attached: Set<ClientID> = []) -> Result<Verified<Request>, IngressRefusal> {
        guard request.client == peer || attached.contains(request.client) else { return .failure(.forgedSender) }
        guard skipsAuthentication || keyring.isAuthentic(request) else { return .failure(.authenticationFailed) }
        return .success(Verified(checked: request))
    }

    /// A read-only request on the link of client `peer` (see `admit(_:from:attached:)`); its authenticator
    /// is over the `readOnlyRequest` kind.
    @inlinable
    public func admit(readOnly request: Request, from peer: ClientID, attached: Set<ClientID> = []) -> Result<Verified<Request>, IngressRefusal> {
        guard request.client == peer || attached.contains(request.client) else { return .failure(.forgedSender) }
        guard skipsAuthentication || keyring.isAuthentic(readOnly: request) else { return .failure(.authenticationFailed) }
        return .success(Verified(checked: request))
    }
}
