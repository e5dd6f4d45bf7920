import ThemisCore

/// An append-only, hash-chained ledger (the framework's blockchain use case): every appended entry becomes a
/// block whose hash covers its index, the previous block's hash, the appending client and the entry, so a
/// block cannot change without changing every hash after it. `themis replica --app ledger` runs it; `themis
/// ledger append|get|head|verify` is its client.
///
/// Block hash: SHA-256 of `DigestBuilder(domain: "themis.ledger.block.v1")` with the index (u64), the previous
/// hash (32 bytes; zero before the first block), the client id (u64) and the entry (u64 length, bytes).
public struct Ledger: Application, Equatable {
    public static let entryBytesMax = 16 * 1024
    /// Blocks one `get` returns at most (fewer if they would pass 60 KiB, within the default `resultBytesMax`).
    public static let blocksPerGetMax = 256
    static let snapshotMagic: [UInt8] = Array("tld1".utf8)

    public struct Block: Hashable, Sendable {
        public let index: UInt64
        public let client: ClientID
        public let entry: [UInt8]
        public let previousHash: Digest
        public let hash: Digest

        public init(index: UInt64, client: ClientID, entry: [UInt8], previousHash: Digest) {
            self.index = index
            self.client = client
            self.entry = entry
            self.previousHash = previousHash
            self.hash = Block.hash(index: index, client: client, entry: entry, previousHash: previousHash)
        }

        public static func hash(index: UInt64, client: ClientID, entry: [UInt8], previousHash: Digest) -> Digest {
            var builder = DigestBuilder(domain: "themis.ledger.block.v1")
            builder.append(index)
            builder.append(previousHash)
            builder.append(UInt64(client.rawValue))
            builder.append(bytes: entry)
            return builder.finish()
        }
    }

    public enum Operation: Hashable, Sendable {
        case append([UInt8])
        /// Blocks from `from` on, at most `count`.
        case get(from: UInt64, count: UInt32)
        /// The height (number of blocks) and the last block's hash.
        case head

        public func encoded() -> [UInt8] {
            var writer = ByteWriter()
            switch self {
            case .append(let entry):
                writer.append(UInt8(1))
                writer.append(UInt32(truncatingIfNeeded: entry.count))
                writer.append(contentsOf: entry)
            case .get(let from, let count):
                writer.append(UInt8(2))
                writer.append(from)
                writer.append(count)
            case .head:
                writer.append(UInt8(3))
            }
            return writer.bytes
        }

        public init(decoding bytes: [UInt8]) throws(LedgerError) {
            var reader = ByteReader(bytes)
            switch reader.readUInt8() {
            case 1:
                guard let length = reader.readUInt32() else { throw .truncated }
                guard length <= Ledger.entryBytesMax else { throw .entryTooLarge(Int(length)) }
                guard let entry = reader.readBytes(Int(length)) else { throw .truncated }
                self = .append(entry)
            case 2:
                guard let from = reader.readUInt64(), let count = reader.readUInt32() else { throw .truncated }
                self = .get(from: from, count: count)
            case 3:
                self = .head
            case nil: throw .empty
            case let tag?: throw .unknownTag(tag)
            }
            guard reader.remainingCount == 0 else { throw .trailingBytes(reader.remainingCount) }
        }
    }

    public enum Result: Hashable, Sendable {
        case appended(index: UInt64, hash: Digest)
        case blocks([Block])
        case head(height: UInt64, hash: Digest)
        case error(String)

        public func encoded() -> [UInt8] {
            var writer = ByteWriter()
            switch self {
            case .appended(let index, let hash):
                writer.append(UInt8(0))
                writer.append(index)
                writer.append(contentsOf: hash.bytes)
            case .blocks(let blocks):
                writer.append(UInt8(1))
                writer.append(UInt32(truncatingIfNeeded: blocks.count))
                for block in blocks {
                    writer.append(block.index)
                    writer.append(block.client.rawValue)
                    writer.append(UInt32(truncatingIfNeeded: block.entry.count))
                    writer.append(contentsOf: block.entry)
                    writer.append(contentsOf: block.previousHash.bytes)
                    writer.append(contentsOf: block.hash.bytes)
                }
            case .head(let height, let hash):
                writer.append(UInt8(2))
                writer.append(height)
                writer.append(contentsOf: hash.bytes)
            case .error(let message):
                let utf8 = Array(message.utf8)
                writer.append(UInt8(3))
                writer.append(UInt32(truncatingIfNeeded: utf8.count))
                writer.append(contentsOf: utf8)
            }
            return writer.bytes
        }

        /// Decodes a result; each block of a `get` is rebuilt from its fields, its hash recomputed and checked
        /// against the hash the replicas sent, and each block's previous hash against the block before it in
        /// the range (`LedgerError.brokenChain`); `Ledger.firstBreak` checks a whole chain from block 0.
        public init(decoding bytes: [UInt8]) throws(LedgerError) {
            var reader = ByteReader(bytes)
            switch reader.readUInt8() {
            case 0:
                guard let index = reader.readUInt64(), let hash = reader.readBytes(32).flatMap(Digest.init(bytes:)) else { throw .truncated }
                self = .appended(index: index, hash: hash)
            case 1:
                guard let count = reader.readUInt32() else { throw .truncated }
                var blocks: [Block] = []
                var previous: Digest?
                for _ in 0..<count {
                    guard let index = reader.readUInt64(), let client = reader.readUInt32(), let length = reader.readUInt32() else { throw .truncated }
                    guard length <= Ledger.entryBytesMax else { throw .entryTooLarge(Int(length)) }
                    guard let entry = reader.readBytes(Int(length)), let previousHash = reader.readBytes(32).flatMap(Digest.init(bytes:)),
                        let hash = reader.readBytes(32).flatMap(Digest.init(bytes:))
                    else { throw .truncated }
                    let block = Block(index: index, client: ClientID(client), entry: entry, previousHash: previousHash)
                    guard block.hash == hash, previous == nil || previous == previousHash else { throw .brokenChain(at: index) }
                    blocks.append(block)
                    previous = hash
                }
                self = .blocks(blocks)
            case 2:
                guard let height = reader.readUInt64(), let hash = reader.readBytes(32).flatMap(Digest.init(bytes:)) else { throw .truncated }
                self = .head(height: height, hash: hash)
            case 3:
                guard let length = reader.readUInt32(), let utf8 = reader.readBytes(Int(length)) else { throw .truncated }
                self = .error(String(decoding: utf8, as: UTF8.self))
            case nil: throw .empty
            case let tag?: throw .unknownTag(tag)
            }
            guard reader.remainingCount == 0 else { throw .trailingBytes(reader.remainingCount) }
        }
    }

    /// What one block costs against `bytesMax` besides its entry (its index, client and two hashes), so that
    /// empty entries cannot grow the ledger without bound.
    public static let blockOverheadBytes = 80
    /// The most bytes the ledger holds (entries plus `blockOverheadBytes` per block); an append past it is refused.
    public let bytesMax: Int
    public private(set) var blocks: [Block] = []
    private var entryBytes = 0

    public init(bytesMax: Int = 64 << 20) {
        self.bytesMax = bytesMax
    }

    public var height: UInt64 { UInt64(blocks.count) }
    public var headHash: Digest { blocks.last?.hash ?? .zero }

    public mutating func apply(_ operation: Operation, from client: ClientID) -> Result {
        switch operation {
        case .append(let entry):
            guard entryBytes + entry.count + Self.blockOverheadBytes <= bytesMax else { return .error("ledger is full (\(bytesMax) bytes)") }
            let block = Block(index: height, client: client, entry: entry, previousHash: headHash)
            blocks.append(block)
            entryBytes += entry.count + Self.blockOverheadBytes
            return .appended(index: block.index, hash: block.hash)
        case .get, .head:
            return read(operation)
        }
    }

    /// Answers `get` and `head` (an append is answered with an error: it is not a read).
    public func read(_ operation: Operation) -> Result {
        switch operation {
        case .append: return .error("an append is not a read")
        case .head: return .head(height: height, hash: headHash)
        case .get(let from, let count):
            guard from <= height else { return .error("block \(from) does not exist (height \(height))") }
            var selected: [Block] = []
            var bytes = 5
            var index = Int(from)
            while index < blocks.count, selected.count < min(Int(count), Self.blocksPerGetMax) {
                let size = 8 + 4 + 4 + blocks[index].entry.count + 64
                // The first block always fits (an entry is at most 16 KiB, a result may have 64 KiB).
                guard selected.isEmpty || bytes + size <= 60 * 1024 else { break }
                selected.append(blocks[index])
                bytes += size
                index += 1
            }
            return .blocks(selected)
        }
    }

    public mutating func execute(_ operation: [UInt8], from client: ClientID) async -> [UInt8] {
        do {
            return apply(try Operation(decoding: operation), from: client).encoded()
        } catch {
            return Result.error("malformed operation: \(error)").encoded()
        }
    }

    public func executeReadOnly(_ operation: [UInt8], from client: ClientID) async -> [UInt8]? {
        guard let decoded = try? Operation(decoding: operation) else { return nil }
        if case .append = decoded { return nil }
        return read(decoded).encoded()
    }

    public func snapshot() async -> [UInt8] { snapshotBytes() }

    /// "tld1", u64 block count, then per block u32 client, u32 entry length, entry. The hashes are not stored:
    /// a restore recomputes them, so a snapshot cannot carry a chain whose hashes do not match its blocks.
    public func snapshotBytes() -> [UInt8] {
        var writer = ByteWriter()
        writer.append(contentsOf: Self.snapshotMagic)
        writer.append(UInt64(blocks.count))
        for block in blocks {
            writer.append(block.client.rawValue)
            writer.append(UInt32(truncatingIfNeeded: block.entry.count))
            writer.append(contentsOf: block.entry)
        }
        return writer.bytes
    }

    public mutating func restore(from snapshot: [UInt8]) async throws(LedgerError) {
        try restoreNow(from: snapshot)
    }

    public mutating func restoreNow(from snapshot: [UInt8]) throws(LedgerError) {
        var reader = ByteReader(snapshot)
        guard reader.readBytes(Self.snapshotMagic.count) == Self.snapshotMagic else { throw .notASnapshot }
        guard let count = reader.readUInt64() else { throw .truncated }
        var restored: [Block] = []
        var bytes = 0
        var previous = Digest.zero
        for index in 0..<count {
            guard let client = reader.readUInt32(), let length = reader.readUInt32() else { throw .truncated }
            guard length <= Self.entryBytesMax else { throw .entryTooLarge(Int(length)) }
            guard let entry = reader.readBytes(Int(length)) else { throw .truncated }
            bytes += entry.count + Self.blockOverheadBytes
            guard bytes <= bytesMax else { throw .tooLarge(bytes, maximum: bytesMax) }
            let block = Block(index: index, client: ClientID(client), entry: entry, previousHash: previous)
            restored.append(block)
            previous = block.hash
        }
        guard reader.remainingCount == 0 else { throw .trailingBytes(reader.remainingCount) }
        blocks = restored
        entryBytes = bytes
    }

    /// Checks that `blocks` (all of a ledger, from block 0) form one chain: consecutive indexes from 0, each
    /// block's previous hash the hash of the one before (zero for the first), each hash recomputed.
    /// - Returns: the index of the first block that breaks the chain, or nil if it is intact.
    public static func firstBreak(in blocks: [Block]) -> UInt64? {
        var previous = Digest.zero
        for (position, block) in blocks.enumerated() {
            guard block.index == UInt64(position), block.previousHash == previous,
                block.hash == Block.hash(index: block.index, client: block.client, entry: block.entry, previousHash: previous)
            else { return UInt64(position) }
            previous = block.hash
        }
        return nil
    }
}

public enum LedgerError: Error, Hashable, Sendable, CustomStringConvertible {
    case empty
    case unknownTag(UInt8)
    case truncated
    case trailingBytes(Int)
    case entryTooLarge(Int)
    case notASnapshot
    case tooLarge(Int, maximum: Int)
    case brokenChain(at: UInt64)

    public var description: String {
        switch self {
        case .empty: "empty input"
        case .unknownTag(let tag): "unknown tag \(tag)"
        case .truncated: "input ends inside a field"
        case .trailingBytes(let count): "\(count) bytes after the last field"
        case .entryTooLarge(let count): "entry of \(count) bytes is larger than \(Ledger.entryBytesMax)"
        case .notASnapshot: "not a ledger snapshot"
        case .tooLarge(let bytes, let maximum): "\(bytes) bytes of blocks, at most \(maximum) allowed"
        case .brokenChain(let index): "the chain breaks at block \(index)"
        }
    }
}
