#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ThemisCore

/// The replicated application in its own process (`themis replica --app-command CMD`): started with
/// `/bin/sh -c "exec CMD"`, driven over its stdin and stdout (or, with `--app-socket PATH`, an application
/// already running, over a Unix socket) with the protocol of `ApplicationWire`
/// (docs/APPLICATION.md); its stderr is the replica's. Requests are written as soon as they are made and
/// answered in order, so batches are pipelined (the executor bounds how many are in flight).
///
/// Every failure of the application (it exits, closes its output, breaks the protocol, answers out of order or
/// reports a failure) fails everything pending and is reported once through `onFailure`: the replica then
/// stops rather than execute on a state it is unsure of.
final class ApplicationProcess: Sendable {
    /// How log lines name it: "`CMD`" or "at `PATH`" (`--app-socket`).
    let label: String
    /// The child's pid; nil for an application reached over a Unix socket (not ours to stop).
    let pid: pid_t?
    let channel: any Channel
    let limits: Limits
    private let pending: NIOLoopBoundBox<PendingAnswers>
    /// Set before a deliberate stop, so that the closed pipe is not reported as a failure.
    private let stopping = NIOLockedValueBox(false)
    private let failureHandler = NIOLockedValueBox<(@Sendable (String) -> Void)?>(nil)
    /// A failure that happened before `onFailure` was called (reported to the handler when it comes).
    private let earlyFailure = NIOLockedValueBox<String?>(nil)
    /// The largest frame either side may send (announced in `info`).
    let frameBytesMax: Int

    /// True once `stop()` began.
    var isStopping: Bool { stopping.withLockedValue { $0 } }

    /// Where the application runs.
    enum Endpoint: Sendable {
        /// A child started with `/bin/sh -c "exec COMMAND"`, over its stdin and stdout.
        case command(String)
        /// An application already running, listening on this Unix socket.
        case socket(String)
    }

    /// The application in log lines: "`CMD` (pid N)" or "at `PATH`".
    var name: String { pid.map { "\(label) (pid \($0))" } ?? label }

    private init(label: String, pid: pid_t?, channel: any Channel, limits: Limits, pending: NIOLoopBoundBox<PendingAnswers>) {
        self.label = label
        self.pid = pid
        self.channel = channel
        self.limits = limits
        self.pending = pending
        self.frameBytesMax = ApplicationWire.frameBytesMax(limits: limits)
    }

    /// Starts the application (or connects to it) and checks its `info` answer: the protocol version, and an
    /// empty state (the replica gives the application its state: by executing from sequence number 1, or by
    /// restoring a snapshot).
    /// - Throws: `ApplicationProcessError.startup` with a one-line reason.
    static func start(_ endpoint: Endpoint, limits: Limits, group: any EventLoopGroup, logger: Logger,
                      timeoutMilliseconds: Int64 = 10_000) async throws -> ApplicationProcess {
        let loop = group.next()
        let frameBytesMax = ApplicationWire.frameBytesMax(limits: limits)
        guard frameBytesMax <= Int(UInt32.max) else {
            throw ApplicationProcessError.startup("the cluster's limits allow frames of \(frameBytesMax) bytes, more than the protocol's 4 GiB")
        }
        let pending = NIOLoopBoundBox.makeBoxSendingValue(PendingAnswers(limits: limits), eventLoop: loop)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(ApplicationFrameDecoder(frameBytesMax: frameBytesMax)))
                try channel.pipeline.syncOperations.addHandler(ApplicationAnswerHandler(pending: pending))
            }
        }
        let label: String
        let pid: pid_t?
        let channel: any Channel
        switch endpoint {
        case .command(let command):
            label = "`\(command)`"
            let (child, input, output) = try spawn(command)
            pid = child
            do {
                channel = try await NIOPipeBootstrap(group: loop).channelInitializer(initializer)
                    .takingOwnershipOfDescriptors(input: input, output: output).get()
            } catch {
                kill(child, SIGKILL)
                _ = reap(child, waitMilliseconds: 1_000)
                throw ApplicationProcessError.startup("cannot attach to the application process `\(command)`: \(error)")
            }
        case .socket(let path):
            label = "at `\(path)`"
            pid = nil
            do {
                channel = try await ClientBootstrap(group: loop).channelInitializer(initializer).connect(unixDomainSocketPath: path).get()
            } catch {
                throw ApplicationProcessError.startup("application at `\(path)` at start-up: cannot connect: \(error)")
            }
        }
        let process = ApplicationProcess(label: label, pid: pid, channel: channel, limits: limits, pending: pending)
        channel.closeFuture.whenComplete { _ in process.outputClosed() }
        let info: ApplicationWire.Info
        do {
            let answer = process.send(ApplicationWire.info(frameBytesMax: frameBytesMax), expecting: .info)
            let timeout = loop.scheduleTask(in: .milliseconds(timeoutMilliseconds)) {
                process.abandon(.startup("it did not answer `info` within \(timeoutMilliseconds) ms"))
            }
            defer { timeout.cancel() }
            guard case .info(let answered) = try await answer.get() else { throw ApplicationProcessError.startup("no info") }
            info = answered
        } catch {
            await process.stop()
            throw ApplicationProcessError.startup("application \(label) at start-up: \(error)")
        }
        guard info.version == ApplicationWire.version else {
            await process.stop()
            throw ApplicationProcessError.startup("application \(label) at start-up: it speaks protocol version \(info.version); this replica speaks \(ApplicationWire.version)")
        }
        guard info.lastApplied == 0 else {
            await process.stop()
            throw ApplicationProcessError.startup("application \(label) at start-up: it reports a state at sequence number \(info.lastApplied); "
                + "a replica starts its application empty (it executes from sequence number 1, or restores a snapshot it holds or fetches)")
        }
        logger.notice("application process", metadata: [
            "application": "\(process.name)", "name": "\(info.name)", "protocol": "\(info.version)",
        ])
        return process
    }

    /// Called once with a one-line description when the application fails (not on `stop()`).
    func onFailure(_ handler: @escaping @Sendable (String) -> Void) {
        failureHandler.withLockedValue { $0 = handler }
        if let early = earlyFailure.withLockedValue({ $0 }), let handler = failureHandler.withLockedValue({ handler in defer { handler = nil }; return handler }) {
            handler(early)
        }
    }

    func execute(_ batch: ExecutionBatch) -> EventLoopFuture<[[UInt8]]> {
        let expected = batch.requests.count
        let sequence = batch.sequence.rawValue
        return send(ApplicationWire.execute(sequence: batch.sequence, requests: batch.requests), expecting: .executed(sequence: sequence, count: expected))
            .flatMapThrowing { answer in
                guard case .executed(_, let results) = answer else { throw ApplicationProcessError.unexpected("not an executed frame") }
                return results
            }
    }

    func query(_ requests: [Request]) -> EventLoopFuture<[[UInt8]?]> {
        send(ApplicationWire.query(requests), expecting: .answered(count: requests.count))
            .flatMapThrowing { answer in
                guard case .answered(let results) = answer else { throw ApplicationProcessError.unexpected("not an answered frame") }
                return results
            }
    }

    /// The whole state after every frame sent so far, assembled from the application's chunks.
    func snapshot(_ sequence: SequenceNumber) -> EventLoopFuture<[UInt8]> {
        send(ApplicationWire.snapshot(sequence: sequence), expecting: .snapshot(sequence: sequence.rawValue))
            .flatMapThrowing { answer in
                guard case .snapshotChunk(_, _, _, let state) = answer else { throw ApplicationProcessError.unexpected("not a snapshot") }
                return state
            }
    }

    /// Replaces the application's state, in chunks of `stateChunkBytes`; succeeds once it answered `restored`.
    func restore(_ sequence: SequenceNumber, state: [UInt8]) -> EventLoopFuture<Void> {
        let frames = ApplicationWire.restore(sequence: sequence, state: state, chunkBytes: limits.stateChunkBytes)
        for frame in frames.dropLast() { _ = send(frame, expecting: nil) }
        return send(frames[frames.count - 1], expecting: .restored(sequence: sequence.rawValue)).map { _ in () }
    }

    /// Closes the pipes (the application reads the end of its input and SHOULD exit), waits up to 2 s for a
    /// child to exit, then kills it. An application reached over a socket is only disconnected.
    func stop() async {
        stopping.withLockedValue { $0 = true }
        try? await channel.close()
        guard let pid else { return }
        if !ApplicationProcess.reap(pid, waitMilliseconds: 2_000).exited {
            kill(pid, SIGKILL)
            _ = ApplicationProcess.reap(pid, waitMilliseconds: 1_000)
        }
    }

    /// Writes `frame` on the pipe's loop and, if an answer is expected, waits for it (in order).
    private func send(_ frame: [UInt8], expecting expectation: PendingAnswers.Expectation?) -> EventLoopFuture<ApplicationWire.Response> {
        let loop = channel.eventLoop
        let promise = loop.makePromise(of: ApplicationWire.Response.self)
        let channel = self.channel
        let pending = self.pending
        // Our own frames stay within what `info` announced (a batch holds at most batchRequestsMax requests,
        // queries are split, restore chunks are stateChunkBytes): a larger one is a bug here, reported as a failure.
        let oversized = frame.count - 4 > frameBytesMax
        loop.execute {
            if oversized {
                pending.value.fail(.malformed("the replica built a frame of \(frame.count - 4) bytes, more than the \(self.frameBytesMax) announced"))
                channel.close(promise: nil)
            }
            let answers = pending.value
            if let error = answers.failure {
                promise.fail(error)
                return
            }
            if let expectation { answers.waiting.append((expectation, promise)) } else { promise.succeed(.restored(sequence: 0)) }
            channel.writeAndFlush(ByteBuffer(bytes: frame), promise: nil)
        }
        return promise.futureResult
    }

    /// Fails everything pending with `error` and closes the pipes (used by the start-up timeout).
    private func abandon(_ error: ApplicationProcessError) {
        pending.value.fail(error)
        channel.close(promise: nil)
    }

    /// The application's output closed: fail what waits, and report the failure unless this is a stop.
    private func outputClosed() {
        let stopping = self.stopping.withLockedValue { $0 }
        let how: String
        if stopping {
            how = "was stopped"
        } else if let pid {
            let status = ApplicationProcess.reap(pid, waitMilliseconds: 500)
            how = status.exited ? status.description : "closed its output (pid \(pid) still running)"
        } else {
            how = "closed the connection"
        }
        let answers = pending.value
        let reason = answers.failure ?? .exited(how)
        answers.fail(reason)
        guard !stopping else { return }
        let message = "application \(name) failed: \(reason)"
        earlyFailure.withLockedValue { $0 = message }
        guard let handler = failureHandler.withLockedValue({ handler in defer { handler = nil }; return handler }) else { return }
        handler(message)
    }

    // MARK: Process

    /// Starts `/bin/sh -c "exec COMMAND"` with pipes for stdin and stdout; returns its pid and the replica's
    /// ends (read from its stdout, write to its stdin).
    private static func spawn(_ command: String) throws -> (pid_t, input: CInt, output: CInt) {
        var toChild: [CInt] = [-1, -1]
        var fromChild: [CInt] = [-1, -1]
        guard pipe(&toChild) == 0 else { throw ApplicationProcessError.startup("cannot create a pipe: errno \(errno)") }
        guard pipe(&fromChild) == 0 else {
            close(toChild[0]); close(toChild[1])
            throw ApplicationProcessError.startup("cannot create a pipe: errno \(errno)")
        }
        // Close-on-exec (Glibc does not export pipe2): only the two ends dup2 gives the child survive exec.
        for descriptor in toChild + fromChild { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the child's stdin and stdout; every other pipe end closes at exec.
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        let shell = "/bin/sh"
        let arguments: [String] = [shell, "-c", "exec \(command)"]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // The child starts with no blocked signals and the default action for the ones the replica changes
        // (it is spawned from a worker thread whose mask blocks them, and NIO ignores SIGPIPE), in its own process
        // group: a Ctrl-C at the replica's terminal stops the replica, which then closes the application's input.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        posix_spawnattr_setsigmask(&attributes, &unblocked)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, shell, &actions, &attributes, argv, environ)
        close(toChild[0])
        close(fromChild[1])
        guard result == 0 else {
            close(toChild[1]); close(fromChild[0])
            throw ApplicationProcessError.startup("cannot start the application `\(command)`: error \(result)")
        }
        return (pid, fromChild[0], toChild[1])
    }

    /// How a child ended, if it did.
    struct ExitStatus: CustomStringConvertible {
        var exited: Bool
        var code: Int32 = 0
        var signal: Int32 = 0
        var description: String {
            guard exited else { return "is still running" }
            return signal != 0 ? "was killed by signal \(signal)" : "exited with status \(code)"
        }
    }

    /// Waits up to `waitMilliseconds` for `pid` to end and reaps it.
    static func reap(_ pid: pid_t, waitMilliseconds: Int) -> ExitStatus {
        var waited = 0
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signal = status & 0x7F
                return signal == 0 ? ExitStatus(exited: true, code: (status >> 8) & 0xFF) : ExitStatus(exited: true, signal: signal)
            }
            if result < 0 && errno != EINTR { return ExitStatus(exited: true, code: -1) }
            guard waited < waitMilliseconds else { return ExitStatus(exited: false) }
            usleep(10_000)
            waited += 10
        }
    }
}

/// What the replica waits for from the application, in the order it asked (on the pipe's event loop only).
final class PendingAnswers {
    enum Expectation {
        case info
        case executed(sequence: UInt64, count: Int)
        case answered(count: Int)
        case snapshot(sequence: UInt64)
        case restored(sequence: UInt64)
    }

    let limits: Limits
    var waiting = CircularBuffer<(Expectation, EventLoopPromise<ApplicationWire.Response>)>()
    /// The chunks of the snapshot being received.
    var snapshot: [UInt8] = []
    var snapshotTotal: UInt64?
    /// Set once: everything after fails with it.
    var failure: ApplicationProcessError?

    init(limits: Limits) {
        self.limits = limits
    }

    /// Matches one answer with the oldest expectation.
    func receive(_ body: [UInt8]) throws(ApplicationProcessError) {
        let response = try ApplicationWire.decode(body, resultBytesMax: limits.resultBytesMax)
        if case .failed(let reason) = response { throw .failed(reason) }
        guard let (expectation, promise) = waiting.first else { throw .unexpected("an answer arrived when none was asked for") }
        switch (expectation, response) {
        case (.info, .info):
            break
        case (.executed(let sequence, let count), .executed(let answered, let results)):
            guard answered == sequence else { throw .unexpected("executed batch \(answered), expected \(sequence)") }
            guard results.count == count else { throw .unexpected("\(results.count) results for batch \(sequence) of \(count) requests") }
        case (.answered(let count), .answered(let results)):
            guard results.count == count else { throw .unexpected("\(results.count) read-only answers for \(count) requests") }
        case (.snapshot(let sequence), .snapshotChunk(let answered, let total, let last, let bytes)):
            guard answered == sequence else { throw .unexpected("snapshot chunk of \(answered), expected \(sequence)") }
            guard total <= UInt64(limits.stateBytesMax) else {
                throw .malformed("a snapshot of \(total) bytes, more than stateBytesMax (\(limits.stateBytesMax))")
            }
            if let snapshotTotal, snapshotTotal != total { throw .malformed("snapshot chunks disagree on its size (\(snapshotTotal), \(total))") }
            guard UInt64(snapshot.count + bytes.count) <= total else { throw .malformed("snapshot chunks exceed its size of \(total) bytes") }
            if snapshotTotal == nil { snapshot.reserveCapacity(Int(min(total, 64 << 20))) }
            snapshotTotal = total
            snapshot.append(contentsOf: bytes)
            guard last else { return }
            guard UInt64(snapshot.count) == total else { throw .malformed("the last snapshot chunk ends at \(snapshot.count) of \(total) bytes") }
            let state = snapshot
            snapshot = []
            snapshotTotal = nil
            waiting.removeFirst()
            promise.succeed(.snapshotChunk(sequence: answered, total: total, last: true, bytes: state))
            return
        case (.restored(let sequence), .restored(let answered)):
            guard answered == sequence else { throw .unexpected("restored \(answered), expected \(sequence)") }
        default:
            throw .unexpected("\(response.kindName) while waiting for \(expectation)")
        }
        waiting.removeFirst()
        promise.succeed(response)
    }

    /// Fails every waiting promise; later requests fail at once.
    func fail(_ error: ApplicationProcessError) {
        if failure == nil { failure = error }
        let reason = failure ?? error
        while let (_, promise) = waiting.popFirst() { promise.fail(reason) }
    }
}

extension ApplicationWire.Response {
    var kindName: String {
        switch self {
        case .info: "info reply"
        case .executed: "executed"
        case .answered: "answered"
        case .snapshotChunk: "snapshot chunk"
        case .restored: "restored"
        case .failed: "failed"
        }
    }
}

/// Cuts the application's output into frame bodies (u32 length, then that many bytes); a frame longer than
/// `frameBytesMax` is a protocol error.
struct ApplicationFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = [UInt8]
    let frameBytesMax: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= frameBytesMax else {
            throw ApplicationProcessError.malformed("a frame of \(length) bytes, more than the \(frameBytesMax) announced in info")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readBytes(length: Int(length)) ?? []
        context.fireChannelRead(wrapInboundOut(body))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            throw ApplicationProcessError.malformed("its output ended inside a frame (\(buffer.readableBytes) bytes)")
        }
        return .needMoreData
    }
}

/// Hands each frame to `PendingAnswers`; on any error fails everything pending and closes the pipes.
final class ApplicationAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = [UInt8]
    let pending: NIOLoopBoundBox<PendingAnswers>

    init(pending: NIOLoopBoundBox<PendingAnswers>) {
        self.pending = pending
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try pending.value.receive(unwrapInboundIn(data))
        } catch {
            pending.value.fail(error)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pending.value.fail(error as? ApplicationProcessError ?? .malformed("\(error)"))
        context.close(promise: nil)
    }
}
