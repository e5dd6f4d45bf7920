/// A message whose authenticator (and the authenticators of every request inside it) has been checked.
///
/// Only the shell and the simulator, after verification, create one (the initializer is `package`),
/// so a protocol core cannot be handed an unchecked message by mistake.
public struct Verified<Message: Sendable>: Sendable {
    public let message: Message

    /// - Parameter message: a message whose authenticity the caller MUST have verified.
    package init(checked message: Message) {
        self.message = message
    }
}

extension Verified: Equatable where Message: Equatable {}
