// Proves that the key-value store executes put/get/delete deterministically, answers malformed
// operations with `.error` without changing state, and that snapshots are canonical (equal states give
// equal bytes whatever the history) and restore exactly, refusing garbage with a typed error.
import Testing
import ThemisApps
import ThemisCore

@Suite struct KeyValueStoreTests {
    let client = ClientID(1)

    func run(_ store: inout KeyValueStore, _ operation: KeyValueOperation) async throws -> KeyValueResult {
        try KeyValueResult(decoding: await store.execute(operation.encoded(), from: client))
    }

    @Test func putGetAndDelete() async throws {
        var store = KeyValueStore()
        #expect(try await run(&store, .get(key: "a")) == .value(nil))
        #expect(try await run(&store, .put(key: "a", value: [1])) == .ok)
        #expect(try await run(&store, .get(key: "a")) == .value([1]))
        #expect(try await run(&store, .put(key: "a", value: [2, 3])) == .ok)
        #expect(try await run(&store, .get(key: "a")) == .value([2, 3]))
        #expect(try await run(&store, .delete(key: "a")) == .ok)
        #expect(try await run(&store, .get(key: "a")) == .value(nil))
        #expect(try await run(&store, .delete(key: "a")) == .ok)
        #expect(store.count == 0)
    }

    @Test func keysAreComparedByTheirBytes() {
        // "é" precomposed and decomposed are equal Strings but different bytes: two keys.
        var store = KeyValueStore()
        _ = store.apply(.put(key: "\u{E9}", value: [1]))
        _ = store.apply(.put(key: "e\u{301}", value: [2]))
        #expect(store.count == 2)
        #expect(store.value(for: "\u{E9}") == [1])
        #expect(store.value(for: "e\u{301}") == [2])
    }

    @Test func malformedOperationsGiveAnErrorAndChangeNothing() async throws {
        var store = KeyValueStore()
        _ = store.apply(.put(key: "a", value: [1]))
        let before = store.snapshotBytes()
        for garbage: [UInt8] in [[], [0], [42, 1, 2], [1, 0, 5], [2, 0, 1, 0xFF]] {
            let result = try KeyValueResult(decoding: await store.execute(garbage, from: client))
            guard case .error = result else {
                Issue.record("\(garbage) gave \(result)")
                continue
            }
        }
        #expect(store.snapshotBytes() == before)
        let first = await store.execute([42], from: client)
        #expect(first == (await store.execute([42], from: client)))
    }

    @Test func boundsAreEnforcedWhenApplyingDirectly() {
        var store = KeyValueStore(entriesMax: 2)
        guard case .error = store.apply(.put(key: String(repeating: "k", count: 1025), value: [])) else {
            Issue.record("a 1025-byte key was stored")
            return
        }
        guard case .error = store.apply(.put(key: "k", value: [UInt8](repeating: 0, count: 65_537))) else {
            Issue.record("a 64 KiB + 1 value was stored")
            return
        }
        #expect(store.apply(.put(key: "a", value: [])) == .ok)
        #expect(store.apply(.put(key: "b", value: [])) == .ok)
        #expect(store.apply(.put(key: "c", value: [])) == .error("store is full (2 entries)"))
        #expect(store.apply(.put(key: "a", value: [1])) == .ok)
    }

    @Test func snapshotsAreCanonicalWhateverTheHistory() {
        var first = KeyValueStore()
        var second = KeyValueStore()
        for key in ["b", "a", "c", "ab", "", "z"] { _ = first.apply(.put(key: key, value: Array(key.utf8))) }
        for key in ["z", "", "ab", "c", "a", "b", "gone"] { _ = second.apply(.put(key: key, value: Array(key.utf8))) }
        _ = second.apply(.delete(key: "gone"))
        #expect(first == second)
        #expect(first.snapshotBytes() == second.snapshotBytes())
    }

    @Test func theSameOperationsGiveTheSameSnapshotAndResults() async {
        var first = KeyValueStore()
        var second = KeyValueStore()
        var generator = SplitMix(seed: 42)
        for _ in 0..<500 {
            let key = "k\(generator.next() % 40)"
            let operation: KeyValueOperation
            switch generator.next() % 3 {
            case 0: operation = .put(key: key, value: [UInt8](repeating: UInt8(generator.next() % 256), count: Int(generator.next() % 8)))
            case 1: operation = .get(key: key)
            default: operation = .delete(key: key)
            }
            let bytes = operation.encoded()
            #expect(await first.execute(bytes, from: client) == (await second.execute(bytes, from: client)))
        }
        #expect(await first.snapshot() == (await second.snapshot()))
    }

    @Test func restoreGivesAnEqualStateAndEqualSnapshot() async throws {
        var original = KeyValueStore()
        for index in 0..<100 { _ = original.apply(.put(key: "key \(index)", value: [UInt8(index)])) }
        let snapshot = await original.snapshot()
        var restored = KeyValueStore()
        _ = restored.apply(.put(key: "stale", value: [9]))
        try await restored.restore(from: snapshot)
        #expect(restored == original)
        #expect(await restored.snapshot() == snapshot)
        #expect(restored.value(for: "stale") == nil)
    }

    @Test func garbageSnapshotsThrowAndLeaveTheStateAlone() async {
        var original = KeyValueStore()
        _ = original.apply(.put(key: "a", value: [1]))
        _ = original.apply(.put(key: "b", value: [2]))
        let good = original.snapshotBytes()
        var store = KeyValueStore()
        _ = store.apply(.put(key: "keep", value: [7]))
        // A swapped order: the entries for "a" and "b" exchanged.
        let aEntry = Array(good[8..<16])
        let bEntry = Array(good[16..<24])
        let unsorted = Array(good[0..<8]) + bEntry + aEntry
        let duplicated = Array(good[0..<8]) + aEntry + aEntry
        let cases: [([UInt8], KeyValueError)] = [
            ([], .notASnapshot), (Array("nope".utf8), .notASnapshot), (Array(good.dropLast()), .truncated),
            (good + [0], .trailingBytes(1)), (unsorted, .unsortedKeys), (duplicated, .unsortedKeys),
            (Array("tkv1".utf8) + [0xFF, 0xFF, 0xFF, 0xFF], .tooManyEntries(Int(UInt32.max), maximum: 1 << 20)),
        ]
        for (bytes, expected) in cases {
            await #expect(throws: expected) { try await store.restore(from: bytes) }
        }
        #expect(store.value(for: "keep") == [7])
        #expect(store.count == 1)
    }
}

/// A tiny deterministic generator, so the test does not depend on the platform's random numbers.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
