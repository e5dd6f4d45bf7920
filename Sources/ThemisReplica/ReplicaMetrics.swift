import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import Synchronization
import ThemisCore

/// A monotonic count, readable here (status reports, tests) and exported as a Prometheus counter. Lock-free:
/// two relaxed atomic additions per increment, so the connections' event loops and the protocol loop count
/// without contending on a lock.
public final class Tally: Sendable {
    private let total = Atomic<Int>(0)
    private let exported: Counter?

    init(_ exported: Counter?) {
        self.exported = exported
    }

    public func add(_ amount: Int = 1) {
        guard amount > 0 else { return }
        total.wrappingAdd(amount, ordering: .relaxed)
        exported?.increment(by: Int64(amount))
    }

    public var value: Int { total.load(ordering: .relaxed) }
}

/// What a replica counts, for `/metrics` (Prometheus text format, from `registry`), `/status` and the status
/// reports. Names start with `themis_`; see README "Metrics, status and health".
///
/// Without an operations endpoint (`exporting` false) nothing is exported: the tallies count only for the
/// status reports, and the Prometheus registry, the histograms, the gauges, the per-connection byte counting
/// and the latency timings do not exist: a replica that nobody scrapes pays neither their CPU nor the
/// resident pages of their code (with all of it on, and event kinds then named by reflection, peak RSS at 40
/// clients was 1.5 MiB higher; without, 0.2 MiB: `themis bench --local --clients 40`, A/B against c5e6e02).
public final class ReplicaMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry?
    public var exporting: Bool { registry != nil }

    // Inputs.
    /// Protocol messages from replicas, and client requests (before verification).
    public let messagesReceived: Tally
    public let requestsReceived: Tally
    /// Messages whose authenticator (or an embedded request's) did not verify.
    public let authenticationFailures: Tally
    /// Messages naming a sender other than the authenticated peer of the link.
    public let forgedSenders: Tally
    /// PRE-PREPAREs that verified except for a client request in the batch (prepared only once vouched for).
    public let unverifiedBatches: Tally
    /// Read-only requests received (verified or not), answered by the application, and dropped because
    /// `readOnlyInFlightMax` waited for it.
    public let readOnlyReceived: Tally
    public let readOnlyAnswered: Tally
    public let readOnlyDropped: Tally
    /// Status queries dropped because `statusQueriesPendingMax` were waiting.
    public let statusQueriesDropped: Tally

    // Connections.
    /// Connections closed for a protocol violation (malformed frame, failed handshake, ...).
    public let connectionsRejected: Tally
    /// Connections refused because `Limits.connectionsMax` were open.
    public let connectionsRefused: Tally
    public let connectionsAccepted: Tally
    public let connectionsOpen: Gauge?
    /// Outgoing frames dropped because the peer does not read (its write buffer passed the high watermark).
    public let framesDroppedUnwritable: Tally
    /// Times a connection stopped reading because the protocol loop was behind (read backpressure).
    public let readPauses: Tally

    // Protocol and execution.
    public let batchesExecuted: Tally
    public let requestsExecuted: Tally
    public let batchSize: ValueHistogram?
    /// From the moment a batch is handed to the application to its results (the application's part of latency).
    public let executionSeconds: DurationHistogram?
    /// From a request's admission at this replica to the execution of its batch here (ordering and execution),
    /// for one request in 16 (chosen by its digest).
    public let orderingSeconds: DurationHistogram?
    public let viewChanges: Tally
    public let checkpointsStable: Tally
    public let stateTransfers: Tally
    /// PBFT's tentative execution: undos of chains of batches executed before they committed.
    public let tentativeUndone: Tally
    public let view: Gauge?
    public let lastExecuted: Gauge?
    public let stableCheckpoint: Gauge?

    /// Per-label counters made on first use (rejection and event kinds, peers): a few dozen labels, each
    /// looked up under this lock once per link or per rare event, never per message.
    private let labelled = NIOLockedValueBox<[String: Tally]>([:])

    /// - Parameter registry: where to export (nil: count for the status reports only).
    public init(registry: PrometheusCollectorRegistry? = nil) {
        self.registry = registry
        func tally(_ name: String, _ help: String) -> Tally { Tally(registry?.makeCounter(descriptor: .themis(name, help))) }
        messagesReceived = tally("themis_messages_received_total", "Protocol messages received from replicas (before verification).")
        requestsReceived = tally("themis_requests_received_total", "Client requests received (before verification).")
        authenticationFailures = tally("themis_authentication_failures_total", "Messages or requests whose authenticator did not verify.")
        forgedSenders = tally("themis_forged_senders_total", "Messages naming a sender other than the link's authenticated peer.")
        unverifiedBatches = tally("themis_unverified_batches_total", "Pre-prepares holding a request whose authenticator this replica could not verify.")
        readOnlyReceived = tally("themis_read_only_received_total", "Read-only requests received.")
        readOnlyAnswered = tally("themis_read_only_answered_total", "Read-only requests the application answered.")
        readOnlyDropped = tally("themis_read_only_dropped_total", "Read-only requests dropped because too many waited for the application.")
        statusQueriesDropped = tally("themis_status_queries_dropped_total", "Status queries dropped because too many waited.")
        connectionsRejected = tally("themis_connections_rejected_total", "Connections closed for a protocol violation (malformed frame, failed handshake).")
        connectionsRefused = tally("themis_connections_refused_total", "Connections refused because connectionsMax were open.")
        connectionsAccepted = tally("themis_connections_accepted_total", "Incoming connections accepted (before their handshake).")
        connectionsOpen = registry?.makeGauge(descriptor: .themis("themis_connections_open", "Incoming connections open now."))
        framesDroppedUnwritable = tally("themis_frames_dropped_unwritable_total", "Outgoing frames dropped because the peer did not read.")
        readPauses = tally("themis_read_pauses_total", "Times a connection stopped reading because the protocol loop was behind.")
        batchesExecuted = tally("themis_batches_executed_total", "Batches the application executed.")
        requestsExecuted = tally("themis_requests_executed_total", "Requests the application executed.")
        batchSize = registry?.makeValueHistogram(descriptor: .themis("themis_batch_size", "Requests per executed batch."),
                                                buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512])
        let latencyBuckets: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                                          .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                          .milliseconds(250), .seconds(1), .seconds(5)]
        executionSeconds = registry?.makeDurationHistogram(
            descriptor: .themis("themis_execution_seconds", "Seconds from handing a batch to the application to its results."), buckets: latencyBuckets)
        orderingSeconds = registry?.makeDurationHistogram(
            descriptor: .themis("themis_ordering_seconds", "Seconds from a request's admission here to its execution here (one request in 16)."),
            buckets: latencyBuckets)
        viewChanges = tally("themis_view_changes_total", "Views this replica entered after the first.")
        checkpointsStable = tally("themis_checkpoints_stable_total", "Checkpoints that became stable.")
        stateTransfers = tally("themis_state_transfers_total", "State transfers this replica finished.")
        tentativeUndone = tally("themis_tentative_undone_total", "Undos of tentatively executed batches (a view change before they committed), one per undone chain.")
        view = registry?.makeGauge(descriptor: .themis("themis_view", "The replica's current view."))
        lastExecuted = registry?.makeGauge(descriptor: .themis("themis_last_executed", "The last sequence number the application executed."))
        stableCheckpoint = registry?.makeGauge(descriptor: .themis("themis_stable_checkpoint", "The last stable checkpoint."))
    }

    /// The counter `name{label="value"}`, made on first use.
    func labelled(_ name: String, _ label: String, _ value: String, help: String) -> Tally {
        labelled.withLockedValue { made in
            let key = "\(name)\u{0}\(value)"
            if let tally = made[key] { return tally }
            let tally = Tally(registry?.makeCounter(descriptor: .themis(name, help), labels: [(label, value)]))
            made[key] = tally
            return tally
        }
    }

    func rejection(_ kind: String) -> Tally {
        labelled("themis_rejections_total", "kind", kind, help: "Inputs the protocol core rejected, by kind.")
    }

    func event(_ kind: String) -> Tally {
        labelled("themis_events_total", "kind", kind, help: "Protocol events, by kind.")
    }

    func handshakeFailure(_ reason: String) -> Tally {
        labelled("themis_handshake_failures_total", "reason", reason, help: "Connections refused during or right after their handshake, by reason.")
    }

    /// Bytes and frames to and from one peer label (`replica-I`, `clients` for all clients together,
    /// `unauthenticated` before a handshake ends).
    func traffic(_ peer: String) -> PeerTraffic {
        PeerTraffic(
            bytesIn: labelled("themis_bytes_received_total", "peer", peer, help: "Bytes received, by peer."),
            bytesOut: labelled("themis_bytes_sent_total", "peer", peer, help: "Bytes sent, by peer."),
            framesIn: labelled("themis_frames_received_total", "peer", peer, help: "Frames received, by peer."),
            framesOut: labelled("themis_frames_sent_total", "peer", peer, help: "Frames sent, by peer."))
    }

    /// The label of a peer in the traffic counters (clients together: their number is unbounded).
    static func label(of peer: Principal?) -> String {
        switch peer {
        case .replica(let id)?: "replica-\(id.rawValue)"
        case .client?: "clients"
        case nil: "unauthenticated"
        }
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        registry?.emitToBuffer() ?? []
    }
}

/// The traffic counters of one peer label.
struct PeerTraffic: Sendable {
    let bytesIn: Tally
    let bytesOut: Tally
    let framesIn: Tally
    let framesOut: Tally
}

/// Counts the bytes a connection reads and writes (first in its pipeline, on its event loop): into the
/// `unauthenticated` counters until `attribute(to:)` names the peer after its handshake.
final class TrafficCountingHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let metrics: ReplicaMetrics
    private(set) var traffic: PeerTraffic

    init(metrics: ReplicaMetrics) {
        self.metrics = metrics
        self.traffic = metrics.traffic(ReplicaMetrics.label(of: nil))
    }

    func attribute(to peer: Principal) {
        traffic = metrics.traffic(ReplicaMetrics.label(of: peer))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        traffic.bytesIn.add(unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        traffic.bytesOut.add(unwrapOutboundIn(data).readableBytes)
        context.write(data, promise: promise)
    }
}

extension MetricNameDescriptor {
    /// A descriptor whose name is `name` as given (already `themis_`-prefixed, with its unit suffix).
    static func themis(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}
