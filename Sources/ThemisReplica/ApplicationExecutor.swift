import NIOConcurrencyHelpers
import NIOCore
import ThemisCore

/// Runs the application, batch by batch: off the protocol thread from one long-lived task, or, for a
/// `SynchronousApplication`, inside `submit` on the protocol loop (`runInline`).
///
/// An async hop costs tens of microseconds here, so the task pays it per batch, not per request: the protocol
/// loop enqueues whole `ExecutionBatch`es and gets the results of each back in one callback. An inline
/// application pays no hop at all: its results go back to the loop as a task queued behind the current step.
final class ApplicationExecutor: Sendable {
    enum Job: Sendable {
        case batch(ExecutionBatch)
        /// Replace the application's state with a snapshot fetched by state transfer.
        case install(SequenceNumber, [UInt8])
        /// Report the last executed sequence number and the application's state digest after every
        /// batch queued so far.
        case status(@Sendable (SequenceNumber, Digest) -> Void)
        /// Answer read-only requests on the state after every batch queued so far (`executeReadOnly`).
        case readOnly([Request], @Sendable ([[UInt8]?]) -> Void)
    }

    private let continuation: AsyncStream<Job>.Continuation
    private let stream: AsyncStream<Job>
    /// Inline mode (`init(inline: true)`): the jobs submitted before `runInline` (data-directory recovery
    /// submits before the application runs), then the application; nil in task mode.
    private let inline: NIOLockedValueBox<InlineState>?

    private struct InlineState {
        var pending: [Job] = []
        var runner: InlineRunner?
        /// `finish()` was called: later jobs are dropped, as a finished stream drops them in task mode.
        var finished = false
    }

    /// - Parameter inline: the application will be a `SynchronousApplication` run by `runInline`.
    init(inline: Bool = false) {
        (stream, continuation) = AsyncStream.makeStream(of: Job.self)
        self.inline = inline ? NIOLockedValueBox(InlineState()) : nil
    }

    /// Queues `job`; in inline mode, once `runInline` started, runs it before returning.
    func submit(_ job: Job) {
        guard let inline else {
            continuation.yield(job)
            return
        }
        inline.withLockedValue { state in
            if state.finished {
                return
            } else if state.runner != nil {
                state.runner!.run(job)
            } else {
                state.pending.append(job)
            }
        }
    }

    /// No job submitted after this runs (in task mode the jobs queued before it still run).
    func finish() {
        continuation.finish()
        inline?.withLockedValue { $0.finished = true }
    }

    /// Inline mode: runs `application` inside every later `submit` (the protocol loop), after the jobs queued so
    /// far, in order. Once the application refuses a snapshot it reports the failure and runs nothing more, as
    /// `run` does. Call once, instead of `run`.
    func runInline(
        _ application: any SynchronousApplication,
        onExecuted: @escaping @Sendable (SequenceNumber, [[UInt8]], [UInt8]?) -> Void,
        onFailure: @escaping @Sendable (String) -> Void
    ) {
        guard let inline else { preconditionFailure("runInline on an executor made for a task") }
        inline.withLockedValue { state in
            precondition(state.runner == nil, "runInline called twice")
            var runner = InlineRunner(application: application, onExecuted: onExecuted, onFailure: onFailure)
            for job in state.pending { runner.run(job) }
            state.pending = []
            state.runner = runner
        }
    }

    /// Why the replica stops when the application refuses a snapshot of checkpoint `sequence`.
    static func refusedSnapshot(_ sequence: SequenceNumber, _ error: any Error) -> String {
        // The snapshot matched the digest a quorum agreed on, so the application rejecting it
        // means its snapshot and restore disagree: stop, never execute on the old state.
        "application refused the snapshot of checkpoint \(sequence.rawValue): \(error); "
            + "the replica stops rather than execute on a state it is unsure of"
    }

    /// Consumes jobs until `finish()`, or until the application refuses a snapshot: then it reports the
    /// failure and stops, because executing further batches on a state it is unsure of could make this
    /// replica diverge (issue 9, finding 7). Later jobs are never run.
    /// - Parameters:
    ///   - onExecuted: called with each batch's results (and snapshot digest for checkpoints).
    ///   - onFailure: called once, with a one-line description, when the executor stops on a failure.
    func run<App: Application>(
        _ application: App,
        onExecuted: @escaping @Sendable (SequenceNumber, [[UInt8]], [UInt8]?) -> Void,
        onFailure: @escaping @Sendable (String) -> Void
    ) async {
        precondition(inline == nil, "run on an executor made for inline mode")
        var application = application
        var lastExecuted = SequenceNumber.zero
        for await job in stream {
            switch job {
            case .batch(let batch):
                var results: [[UInt8]] = []
                results.reserveCapacity(batch.requests.count)
                for request in batch.requests {
                    results.append(await application.execute(request.operation, from: request.client))
                }
                var snapshot: [UInt8]?
                if batch.checkpoint {
                    snapshot = await application.snapshot()
                }
                lastExecuted = batch.sequence
                onExecuted(batch.sequence, results, snapshot)
            case .install(let sequence, let snapshot):
                do {
                    try await application.restore(from: snapshot)
                    lastExecuted = sequence
                } catch {
                    onFailure(Self.refusedSnapshot(sequence, error))
                    return
                }
            case .status(let report):
                report(lastExecuted, Digest.of(await application.snapshot()))
            case .readOnly(let requests, let report):
                var results: [[UInt8]?] = []
                results.reserveCapacity(requests.count)
                for request in requests {
                    results.append(await application.executeReadOnly(request.operation, from: request.client))
                }
                report(results)
            }
        }
    }

    /// Batches sent to an application process and not yet answered, at most (the pipelining bound: the
    /// next batch goes out before the last is answered, up to this many; then the executor waits).
    static let processBatchesInFlightMax = 16

    /// Consumes jobs until `finish()`, driving an application in its own process (`ApplicationProcess`):
    /// batches are pipelined (up to `processBatchesInFlightMax` unanswered), their results reported in order;
    /// a restore is awaited before anything after it is sent. The first failure of the process (it exits,
    /// breaks the protocol, refuses a snapshot) is reported once and ends the run: no later job is sent.
    func run(
        process: ApplicationProcess,
        onExecuted: @escaping @Sendable (SequenceNumber, [[UInt8]], [UInt8]?) -> Void,
        onFailure: @escaping @Sendable (String) -> Void
    ) async {
        precondition(inline == nil, "run on an executor made for inline mode")
        let failed = NIOLockedValueBox(false)
        let name = process.name
        let report: @Sendable (String) -> Void = { message in
            // A stop closes the pipes on purpose: what fails then is not the application's fault.
            guard !process.isStopping, failed.withLockedValue({ already in defer { already = true }; return !already }) else { return }
            onFailure(message)
        }
        process.onFailure(report)
        let failure: @Sendable (any Error) -> Void = { error in
            report("application \(name) failed: \(error)")
        }
        var lastSent = SequenceNumber.zero
        // Batches sent and not yet answered (oldest first); `answered` counts those that completed.
        var inFlight = CircularBuffer<EventLoopFuture<Void>>()
        let answered = NIOLockedValueBox(0)
        var sent = 0
        for await job in stream {
            guard !failed.withLockedValue({ $0 }) else { return }
            switch job {
            case .batch(let batch):
                let sequence = batch.sequence
                let results = process.execute(batch)
                let done: EventLoopFuture<Void>
                if batch.checkpoint {
                    done = results.and(process.snapshot(sequence)).map { results, snapshot in onExecuted(sequence, results, snapshot) }
                } else {
                    done = results.map { results in onExecuted(sequence, results, nil) }
                }
                done.whenComplete { result in
                    answered.withLockedValue { $0 += 1 }
                    if case .failure(let error) = result { failure(error) }
                }
                lastSent = sequence
                sent += 1
                inFlight.append(done)
                let unanswered = sent - answered.withLockedValue { $0 }
                while inFlight.count > unanswered { inFlight.removeFirst() }
                if inFlight.count >= Self.processBatchesInFlightMax, let oldest = inFlight.popFirst() {
                    guard (try? await oldest.get()) != nil else { return }
                }
            case .install(let sequence, let snapshot):
                do {
                    try await process.restore(sequence, state: snapshot).get()
                    lastSent = sequence
                } catch {
                    report("application \(name) failed: \(error) (while restoring the snapshot of checkpoint "
                        + "\(sequence.rawValue)); the replica stops rather than execute on a state it is unsure of")
                    return
                }
            case .status(let answer):
                let sequence = lastSent
                process.snapshot(sequence).whenComplete { result in
                    switch result {
                    case .success(let state): answer(sequence, Digest.of(state))
                    case .failure(let error): failure(error)
                    }
                }
            case .readOnly(let requests, let answer):
                // At most batchRequestsMax per query frame, so that the frames and their answers stay within
                // frameBytesMax (a job may hold up to readOnlyInFlightMax reads).
                let step = max(1, process.limits.batchRequestsMax)
                let queries = stride(from: 0, to: requests.count, by: step).map { start in
                    process.query(Array(requests[start..<min(requests.count, start + step)]))
                }
                EventLoopFuture.whenAllSucceed(queries, on: process.channel.eventLoop).whenComplete { result in
                    switch result {
                    case .success(let parts): answer(parts.flatMap { $0 })
                    case .failure(let error): failure(error)
                    }
                }
            }
        }
        // The stream ended (a stop): let the batches in flight finish, so that their results are reported
        // (the server kills an application that does not answer within its stop deadline).
        for batch in inFlight { _ = try? await batch.get() }
    }
}

/// A `SynchronousApplication` run inside `ApplicationExecutor.submit`, job by job, as `ApplicationExecutor.run`
/// runs an `Application` in its task.
private struct InlineRunner: Sendable {
    var application: any SynchronousApplication
    let onExecuted: @Sendable (SequenceNumber, [[UInt8]], [UInt8]?) -> Void
    let onFailure: @Sendable (String) -> Void
    var lastExecuted = SequenceNumber.zero
    /// The application refused a snapshot: nothing more runs.
    var failed = false

    init(application: any SynchronousApplication, onExecuted: @escaping @Sendable (SequenceNumber, [[UInt8]], [UInt8]?) -> Void,
         onFailure: @escaping @Sendable (String) -> Void) {
        self.application = application
        self.onExecuted = onExecuted
        self.onFailure = onFailure
    }

    mutating func run(_ job: ApplicationExecutor.Job) {
        guard !failed else { return }
        switch job {
        case .batch(let batch):
            var results: [[UInt8]] = []
            results.reserveCapacity(batch.requests.count)
            for request in batch.requests {
                results.append(application.executeSynchronously(request.operation, from: request.client))
            }
            let snapshot = batch.checkpoint ? application.snapshotSynchronously() : nil
            lastExecuted = batch.sequence
            onExecuted(batch.sequence, results, snapshot)
        case .install(let sequence, let snapshot):
            do {
                try application.restoreSynchronously(from: snapshot)
                lastExecuted = sequence
            } catch {
                failed = true
                onFailure(ApplicationExecutor.refusedSnapshot(sequence, error))
            }
        case .status(let report):
            report(lastExecuted, Digest.of(application.snapshotSynchronously()))
        case .readOnly(let requests, let report):
            report(requests.map { application.executeReadOnlySynchronously($0.operation, from: $0.client) })
        }
    }
}
