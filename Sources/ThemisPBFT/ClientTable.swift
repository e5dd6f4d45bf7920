import ThemisCore

/// Per client: the last executed timestamp and its reply (the reply cache), for exactly-once execution.
/// It is part of the checkpointed state: its digest enters every checkpoint digest.
struct ClientTable: Sendable {
    struct Record: Sendable, Hashable {
        var lastExecuted: Timestamp
        var lastReply: Reply
    }

    /// Results of executed requests.
    private(set) var records: [ClientID: Record] = [:]
    /// The highest timestamp per client handed to the application (execution may lag behind ordering).
    private(set) var scheduled: [ClientID: Timestamp] = [:]

    var count: Int { records.count }

    /// By the size model of `RetainedBytes`: a record and a reply per client, a scheduled timestamp.
    var retainedBytes: Int {
        records.values.reduce(0) { $0 + RetainedBytes.recordOverhead + RetainedBytes.entryOverhead + $1.lastReply.result.count + $1.lastReply.authenticator.count }
            + scheduled.count * RetainedBytes.recordOverhead
    }

    init() {}

    /// A table installed by state transfer: nothing is scheduled beyond what it executed.
    init(records: [ClientID: Record]) {
        self.records = records
    }

    /// Forgets scheduled-but-unexecuted timestamps (after installing a state, which replaces execution).
    mutating func resetScheduled() {
        scheduled = [:]
    }

    func lastExecuted(_ client: ClientID) -> Timestamp { records[client]?.lastExecuted ?? .zero }

    func lastScheduled(_ client: ClientID) -> Timestamp { scheduled[client] ?? lastExecuted(client) }

    func cachedReply(_ client: ClientID, _ timestamp: Timestamp) -> Reply? {
        guard let record = records[client], record.lastExecuted == timestamp else { return nil }
        return record.lastReply
    }

    /// Marks a request as handed to the application; returns false if it (or a later one) already was.
    mutating func schedule(_ request: Request) -> Bool {
        guard request.timestamp > lastScheduled(request.client) else { return false }
        scheduled[request.client] = request.timestamp
        return true
    }

    mutating func recordExecution(_ reply: Reply) {
        records[reply.client] = Record(lastExecuted: reply.timestamp, lastReply: reply)
    }

    /// A canonical digest: clients in id order, each with its last timestamp and reply result.
    func digest() -> Digest {
        var builder = DigestBuilder(domain: "themis.client-table.v1")
        builder.append(UInt64(records.count))
        for client in records.keys.sorted() {
            guard let record = records[client] else { continue }
            builder.append(client.rawValue)
            builder.append(record.lastExecuted.rawValue)
            builder.append(bytes: record.lastReply.result)
        }
        return builder.finish()
    }
}
