import ThemisCore

/// A FIFO of requests with amortised O(1) removal from the front (no Deque in the core's dependencies).
package struct RequestQueue: Sendable {
    private var storage: [Request] = []
    private var head = 0

    package init() {}

    package var count: Int { storage.count - head }
    package var isEmpty: Bool { count == 0 }

    /// What the queue's storage holds (the consumed prefix too, until it is compacted), by the size model
    /// of `RetainedBytes`.
    package var retainedBytes: Int { SizeModel.bytes(storage) }

    package mutating func append(_ request: Request) {
        storage.append(request)
    }

    /// Removes and returns up to `maximum` requests from the front, and no more than `bytesMax` bytes
    /// of operations and authenticators (at least one request), so a batch always fits in a frame.
    package mutating func popFirst(_ maximum: Int, bytesMax: Int = .max) -> [Request] {
        var end = head
        var bytes = 0
        while end < storage.count, end - head < maximum {
            bytes += storage[end].operation.count + storage[end].authenticator.count + 64
            if end > head && bytes > bytesMax { break }
            end += 1
        }
        let batch = Array(storage[head..<end])
        head = end
        // Compact once the consumed prefix dominates, so memory stays bounded by the live count.
        if head > 1024 && head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return batch
    }
}
