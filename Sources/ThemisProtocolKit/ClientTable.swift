import ThemisCore

/// Per client: the last executed timestamp and its reply (the reply cache), for exactly-once execution.
/// It is part of the checkpointed state: its digest enters every checkpoint digest.
package struct ClientTable: Sendable {
    package struct Record: Sendable, Hashable {
        package var lastExecuted: Timestamp
        package var lastReply: Reply

        package init(lastExecuted: Timestamp, lastReply: Reply) {
            self.lastExecuted = lastExecuted
            self.lastReply = lastReply
        }
    }

    /// Results of executed requests.
    package private(set) var records: [ClientID: Record] = [:]
    /// The highest timestamp per client handed to the application (execution may lag behind ordering).
    package private(set) var scheduled: [ClientID: Timestamp] = [:]

    package var count: Int { records.count }

    /// By the size model of `RetainedBytes`: a record and a reply per client, a scheduled timestamp.
    package var retainedBytes: Int {
        records.values.reduce(0) { $0 + SizeModel.recordOverhead + SizeModel.entryOverhead + $1.lastReply.result.count + $1.lastReply.authenticator.count }
            + scheduled.count * SizeModel.recordOverhead
    }

    package init() {}

    /// A table installed by state transfer: nothing is scheduled beyond what it executed.
    package init(records: [ClientID: Record]) {
        self.records = records
    }

    /// Forgets scheduled-but-unexecuted timestamps (after installing a state, which replaces execution).
    package mutating func resetScheduled() {
        scheduled = [:]
    }

    package func lastExecuted(_ client: ClientID) -> Timestamp { records[client]?.lastExecuted ?? .zero }

    package func lastScheduled(_ client: ClientID) -> Timestamp { scheduled[client] ?? lastExecuted(client) }

    package func cachedReply(_ client: ClientID, _ timestamp: Timestamp) -> Reply? {
        guard let record = records[client], record.lastExecuted == timestamp else { return nil }
        return record.lastReply
    }

    /// Marks a request as handed to the application; returns false if it (or a later one) already was.
    package mutating func schedule(_ request: Request) -> Bool {
        guard request.timestamp > lastScheduled(request.client) else { return false }
        scheduled[request.client] = request.timestamp
        return true
    }

    package mutating func recordExecution(_ reply: Reply) {
        records[reply.client] = Record(lastExecuted: reply.timestamp, lastReply: reply)
    }

    /// The batch these requests came in committed: their cached replies (if tentative) become final.
    package mutating func confirmReplies(of requests: [Request]) {
        for request in requests {
            guard let record = records[request.client], record.lastExecuted == request.timestamp, record.lastReply.tentative else { continue }
            records[request.client]?.lastReply = record.lastReply.marked(tentative: false)
        }
    }

    /// A canonical digest: clients in id order, each with its last timestamp and reply result.
    package func digest() -> Digest {
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
