import ThemisCore

/// Runs the application off the protocol thread, batch by batch, from one long-lived task.
///
/// An async hop costs tens of microseconds here, so the executor pays it per batch, not per request:
/// the protocol loop enqueues whole `ExecutionBatch`es and gets the results of each back in one callback.
final class ApplicationExecutor: Sendable {
    enum Job: Sendable {
        case batch(ExecutionBatch)
        /// Report the last executed sequence number and the application's state digest after every
        /// batch queued so far.
        case status(@Sendable (SequenceNumber, Digest) -> Void)
    }

    private let continuation: AsyncStream<Job>.Continuation
    private let stream: AsyncStream<Job>

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    func submit(_ job: Job) {
        continuation.yield(job)
    }

    func finish() {
        continuation.finish()
    }

    /// Consumes jobs until `finish()`.
    /// - Parameter onExecuted: called with each batch's results (and snapshot digest for checkpoints).
    func run<App: Application>(
        _ application: App,
        onExecuted: @escaping @Sendable (SequenceNumber, [[UInt8]], Digest?) -> Void
    ) async {
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
                var digest: Digest?
                if batch.checkpoint {
                    digest = Digest.of(await application.snapshot())
                }
                lastExecuted = batch.sequence
                onExecuted(batch.sequence, results, digest)
            case .status(let report):
                report(lastExecuted, Digest.of(await application.snapshot()))
            }
        }
    }
}
