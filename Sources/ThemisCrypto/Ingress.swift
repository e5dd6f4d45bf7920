import ThemisCore
import ThemisWire

/// Why the ingress refused a message before it reached the protocol core.
public enum IngressRefusal: String, Error, Hashable, Sendable {
    /// The message names another sender than the peer its link authenticated (a replica's message must
    /// name that replica; a request must name the connection's client or one attached to it).
    case forgedSender
    /// An authenticator did not verify: the message's own, or one inside it (client requests, certificate
    /// entries of VIEW-CHANGE and NEW-VIEW).
    case authenticationFailed
}

/// The one place where a decoded message from a peer becomes an input of the protocol core (`Verified`):
/// the sender check, then every authenticator check (`MessageVerifier`). The NIO shell runs it on each
/// connection's event loop, the simulator on every delivered packet, so a check removed from here is
/// removed from both (the simulator's tests then fail; see `SimulatorTests`).
public struct Ingress: Sendable {
    public let keyring: Keyring
    /// Test-only (the simulator's "checks can fail" tests): admit messages without checking their
    /// authenticators. Never set by a replica process.
    private let skipsAuthentication: Bool

    public init(keyring: Keyring) {
        self.init(keyring: keyring, skippingAuthenticationForTesting: false)
    }

    package init(keyring: Keyring, skippingAuthenticationForTesting: Bool) {
        self.keyring = keyring
        self.skipsAuthentication = skippingAuthenticationForTesting
    }

    /// A message from replica `peer` (the sender its link authenticated).
    /// - Returns: the verified message (`requestsUnverified` set for a PRE-PREPARE whose own authenticator
    ///   checks out but a client request inside does not), or why it is refused.
    public func admit(_ message: PBFTMessage, authenticator: [UInt8], from peer: ReplicaID) -> Result<Verified<PBFTMessage>, IngressRefusal> {
        guard message.sender == peer else { return .failure(.forgedSender) }
        let verdict = skipsAuthentication ? .authentic : MessageVerifier(keyring: keyring).verification(of: message, authenticator: authenticator)
        guard verdict != .forged else { return .failure(.authenticationFailed) }
        return .success(Verified(checked: message, authenticator: authenticator, requestsUnverified: verdict == .requestsUnverified))
    }

    /// A request on the link of client `peer`, which also carries the clients in `attached` (each proved
    /// by its own handshake proof).
    public func admit(_ request: Request, from peer: ClientID, attached: Set<ClientID> = []) -> Result<Verified<Request>, IngressRefusal> {
        guard request.client == peer || attached.contains(request.client) else { return .failure(.forgedSender) }
        guard skipsAuthentication || MessageVerifier(keyring: keyring).isAuthentic(request) else { return .failure(.authenticationFailed) }
        return .success(Verified(checked: request))
    }
}
