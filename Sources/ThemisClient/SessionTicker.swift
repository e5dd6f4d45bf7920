import NIOCore
import Synchronization

/// One repeated task per event loop and tick interval, ticking every `ClientSession` on that loop.
///
/// A session per client (every client its own connections, as `bench --connections per-client` runs 400 of
/// them in one process) used to schedule its own 10 ms task: 40,000 timer firings a second on two loops, which
/// in a debug build took the loops' time from the handshakes until connections timed out and were made again
/// (measured: the 400 clients' load generator spent 1.46 ms of CPU per operation, and sometimes no client got
/// its four links within 20 s). Now the sessions of a loop share one task.
final class SessionTicker: Sendable {
    struct Key: Hashable {
        let loop: ObjectIdentifier
        let milliseconds: Int64
    }

    private static let registry = Mutex<[Key: SessionTicker]>([:])

    let loop: any EventLoop
    /// The sessions ticked, and the task; touched on `loop` only.
    private let members: NIOLoopBoundBox<[ObjectIdentifier: ClientSession]>
    private let task: NIOLoopBoundBox<RepeatedTask?>

    private init(loop: any EventLoop) {
        self.loop = loop
        self.members = NIOLoopBoundBox([:], eventLoop: loop)
        self.task = NIOLoopBoundBox(nil, eventLoop: loop)
    }

    /// Starts ticking `session` every `milliseconds` (on its loop, from its loop).
    static func add(_ session: ClientSession, milliseconds: Int64) {
        session.loop.preconditionInEventLoop()
        let key = Key(loop: ObjectIdentifier(session.loop), milliseconds: milliseconds)
        let ticker = registry.withLock { registry in
            if let ticker = registry[key] { return ticker }
            let ticker = SessionTicker(loop: session.loop)
            registry[key] = ticker
            return ticker
        }
        ticker.members.value[ObjectIdentifier(session)] = session
        if ticker.task.value == nil {
            ticker.task.value = session.loop.scheduleRepeatedTask(
                initialDelay: .milliseconds(milliseconds), delay: .milliseconds(milliseconds)
            ) { _ in
                for (_, member) in ticker.members.value { member.tick() }
            }
        }
    }

    /// Stops ticking `session` (on its loop); the last session of a loop stops the task.
    static func remove(_ session: ClientSession, milliseconds: Int64) {
        session.loop.preconditionInEventLoop()
        let key = Key(loop: ObjectIdentifier(session.loop), milliseconds: milliseconds)
        guard let ticker = registry.withLock({ $0[key] }) else { return }
        ticker.members.value[ObjectIdentifier(session)] = nil
        guard ticker.members.value.isEmpty else { return }
        ticker.task.value?.cancel()
        ticker.task.value = nil
        // Only this loop adds to or removes from this key, so nothing joined in between.
        registry.withLock { $0[key] = nil }
    }
}
