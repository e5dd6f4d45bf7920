// The hash-chained ledger: hashes cover index, previous hash, client and entry; a broken chain, a forged
// hash or a malformed snapshot is found; a get stays within a reply; a read-only request never appends.
import Testing
import ThemisApps
import ThemisCore

@Suite("Ledger application")
struct LedgerTests {
    func ledger(_ entries: [String]) -> Ledger {
        var ledger = Ledger()
        for (index, entry) in entries.enumerated() { _ = ledger.apply(.append(Array(entry.utf8)), from: ClientID(UInt32(index % 3))) }
        return ledger
    }

    @Test("Each block's hash covers the previous one: the same entries give the same chain, any change changes every later hash")
    func chaining() {
        let a = ledger(["one", "two", "three"])
        #expect(a == ledger(["one", "two", "three"]))
        #expect(a.blocks[0].previousHash == .zero)
        #expect(a.blocks[1].previousHash == a.blocks[0].hash && a.blocks[2].previousHash == a.blocks[1].hash)
        let b = ledger(["one", "TWO", "three"])
        #expect(b.blocks[0].hash == a.blocks[0].hash)
        #expect(b.blocks[1].hash != a.blocks[1].hash && b.blocks[2].hash != a.blocks[2].hash)
        #expect(Ledger.firstBreak(in: a.blocks) == nil)
        // Block 1 of b spliced into a: the chain breaks at block 2 (its previous hash no longer matches).
        #expect(Ledger.firstBreak(in: [a.blocks[0], b.blocks[1], a.blocks[2]]) == 2)
        // A block with another client but the same hash cannot exist: the client is hashed.
        var other = Ledger()
        _ = other.apply(.append(Array("one".utf8)), from: ClientID(9))
        #expect(other.blocks[0].hash != a.blocks[0].hash)
    }

    @Test("Operations and results round-trip; a get's blocks are checked hash by hash and link by link when decoded")
    func encoding() throws {
        var chain = ledger(["a", "b", "c", "d"])
        for operation in [Ledger.Operation.append([1, 2]), .get(from: 1, count: 2), .head] {
            #expect(try Ledger.Operation(decoding: operation.encoded()) == operation)
        }
        let result = chain.apply(.get(from: 1, count: 2), from: ClientID(0))
        #expect(try Ledger.Result(decoding: result.encoded()) == result)
        #expect(chain.read(.head) == .head(height: 4, hash: chain.blocks[3].hash))
        // One byte of an entry changed in transit: its recomputed hash differs from the one sent.
        var forged = result.encoded()
        forged[1 + 4 + 8 + 4 + 4] ^= 1
        #expect(throws: LedgerError.brokenChain(at: 1)) { try Ledger.Result(decoding: forged) }
        #expect(throws: LedgerError.unknownTag(9)) { try Ledger.Operation(decoding: [9]) }
        #expect(throws: LedgerError.entryTooLarge(Ledger.entryBytesMax + 1)) {
            try Ledger.Operation(decoding: Ledger.Operation.append([UInt8](repeating: 0, count: Ledger.entryBytesMax + 1)).encoded())
        }
    }

    @Test("A get of 256 entries of 16 KiB returns what fits in a reply (at most 60 KiB), at least one block")
    func getIsBounded() {
        var big = Ledger()
        for _ in 0..<10 { _ = big.apply(.append([UInt8](repeating: 7, count: Ledger.entryBytesMax)), from: ClientID(0)) }
        guard case .blocks(let blocks) = big.read(.get(from: 0, count: 256)) else { Issue.record("not blocks"); return }
        #expect(blocks.count == 3)
        #expect(big.read(.get(from: 0, count: 256)).encoded().count <= 60 * 1024)
        #expect(big.read(.get(from: 11, count: 1)) == .error("block 11 does not exist (height 10)"))
        #expect(big.read(.get(from: 10, count: 1)) == .blocks([]))
    }

    @Test("Snapshots restore the same chain; a malformed or oversized snapshot is refused; a full ledger refuses appends")
    func snapshots() async throws {
        let chain = ledger(["x", "y", "z"])
        var restored = Ledger()
        try await restored.restore(from: chain.snapshot())
        #expect(restored == chain)
        #expect(throws: LedgerError.notASnapshot) { try restored.restoreNow(from: Array("tkv1".utf8)) }
        #expect(throws: LedgerError.truncated) { try restored.restoreNow(from: Array(chain.snapshotBytes().dropLast())) }
        #expect(throws: LedgerError.trailingBytes(1)) { try restored.restoreNow(from: chain.snapshotBytes() + [0]) }
        let perBlock = Ledger.blockOverheadBytes
        var small = Ledger(bytesMax: 2 * perBlock + 1)
        // Three blocks of one byte each: the second already passes the bound.
        #expect(throws: LedgerError.tooLarge(2 * perBlock + 2, maximum: 2 * perBlock + 1)) { try small.restoreNow(from: chain.snapshotBytes()) }
        guard case .appended(index: 0, _) = small.apply(.append([1]), from: ClientID(0)),
            case .appended(index: 1, _) = small.apply(.append([]), from: ClientID(0))
        else { Issue.record("two blocks (81 and 80 bytes) fit in 161"); return }
        #expect(small.apply(.append([]), from: ClientID(0)) == .error("ledger is full (\(2 * perBlock + 1) bytes)"), "an empty entry costs its block")
        #expect(restored == chain, "a refused snapshot leaves the state as it was")
    }

    @Test("Read-only: get and head are answered, an append is declined (the client orders it)")
    func readOnly() async throws {
        let chain = ledger(["x"])
        #expect(await chain.executeReadOnly(Ledger.Operation.append([1]).encoded(), from: ClientID(0)) == nil)
        #expect(await chain.executeReadOnly(Ledger.Operation.head.encoded(), from: ClientID(0)) == chain.read(.head).encoded())
        var copy = chain
        let malformed = await copy.execute([], from: ClientID(0))
        #expect(try Ledger.Result(decoding: malformed) == .error("malformed operation: empty input"))
        #expect(copy == chain)
    }
}
