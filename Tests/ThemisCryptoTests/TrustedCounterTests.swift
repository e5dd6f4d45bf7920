#if canImport(Glibc)
import Glibc
#endif
// The software trusted subsystem (Hybster's TrInX): a counter value is certified at most once, a continuing
// certificate proves nothing was certified in between, certificates verify at any subsystem with the
// cluster's key and at none without it, and a restart from the store never reuses a value.
import Crypto
import Testing
import ThemisCore
@testable import ThemisCrypto

@Suite("Trusted counter (software TrInX)")
struct TrustedCounterTests {
    let key = SymmetricKey(data: [UInt8](repeating: 7, count: 32))
    let subsystem = TrustedSubsystemID(replica: ReplicaID(0), pillar: 1)
    let digest = ThemisCore.Digest.of([1, 2, 3])

    func counter(store: InMemoryCounterStore = InMemoryCounterStore(), key: SymmetricKey? = nil, id: TrustedSubsystemID? = nil,
                 counters: UInt32 = 2) throws -> SoftwareTrustedCounter {
        try SoftwareTrustedCounter(id: id ?? subsystem, key: key ?? self.key, counters: counters, store: store)
    }

    @Test("An independent certificate needs a value above the counter's; the value is then used up")
    func independentOnlyUpwards() throws {
        var trinx = try counter()
        let first = try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 0, order: 5))
        #expect(first.kind == .independent && first.value == CounterValue(view: 0, order: 5))
        // Equivocation: another message for the same value is refused, as is an older one.
        #expect(throws: TrustedCounterError.valueNotAbove(counter: 0, requested: CounterValue(view: 0, order: 5), current: CounterValue(view: 0, order: 5))) {
            try trinx.certifyIndependent(ThemisCore.Digest.of([9]), counter: 0, value: CounterValue(view: 0, order: 5))
        }
        #expect(throws: TrustedCounterError.self) { try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 0, order: 4)) }
        // Gaps are allowed; a later view is larger whatever the order number.
        _ = try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 0, order: 9))
        _ = try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 1, order: 0))
        // Counters are independent of each other; an unknown one is refused.
        _ = try trinx.certifyIndependent(digest, counter: 1, value: CounterValue(view: 0, order: 1))
        #expect(throws: TrustedCounterError.unknownCounter(2)) { try trinx.certifyIndependent(digest, counter: 2, value: CounterValue(view: 0, order: 1)) }
    }

    @Test("A continuing certificate proves the counter went from one value to the next with nothing in between")
    func continuingCoversTheGap() throws {
        var trinx = try counter()
        _ = try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 3, order: 17))
        let change = try trinx.certifyContinuing(digest, counter: 0, value: CounterValue(view: 4, order: 0))
        #expect(change.kind == .continuing && change.previous == CounterValue(view: 3, order: 17) && change.value == CounterValue(view: 4, order: 0))
        #expect(trinx.verify(change, for: digest))
        // Equal values are allowed for a continuing certificate (x >= current), lower ones are not.
        _ = try trinx.certifyContinuing(digest, counter: 0, value: CounterValue(view: 4, order: 0))
        #expect(throws: TrustedCounterError.self) { try trinx.certifyContinuing(digest, counter: 0, value: CounterValue(view: 3, order: 99)) }
        // A replica cannot claim a shorter history: the previous value is bound by the tag.
        let lying = TrustedCertificate(kind: .continuing, subsystem: change.subsystem, counter: 0, previous: CounterValue(view: 3, order: 10),
                                       value: change.value, tag: change.tag)
        #expect(!trinx.verify(lying, for: digest))
    }

    @Test("Certificates verify at any subsystem holding the cluster's key, for their digest only, and bind every field")
    func verification() throws {
        var trinx = try counter()
        let other = try counter(id: TrustedSubsystemID(replica: ReplicaID(2), pillar: 1))
        let stranger = try counter(key: SymmetricKey(data: [UInt8](repeating: 8, count: 32)))
        let certificate = try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 0, order: 1))
        let mac = trinx.trustedMAC(digest)
        #expect(mac.kind == .mac)
        for made in [certificate, mac] {
            #expect(other.verify(made, for: digest))
            #expect(!other.verify(made, for: ThemisCore.Digest.of([4])))
            #expect(!stranger.verify(made, for: digest))
        }
        let altered = [
            TrustedCertificate(kind: .continuing, subsystem: certificate.subsystem, counter: 0, previous: certificate.previous, value: certificate.value, tag: certificate.tag),
            TrustedCertificate(kind: .independent, subsystem: TrustedSubsystemID(replica: ReplicaID(1), pillar: 1), counter: 0, previous: certificate.previous, value: certificate.value, tag: certificate.tag),
            TrustedCertificate(kind: .independent, subsystem: certificate.subsystem, counter: 1, previous: certificate.previous, value: certificate.value, tag: certificate.tag),
            TrustedCertificate(kind: .independent, subsystem: certificate.subsystem, counter: 0, previous: certificate.previous, value: CounterValue(view: 0, order: 2), tag: certificate.tag),
            TrustedCertificate(kind: .independent, subsystem: certificate.subsystem, counter: 0, previous: certificate.previous, value: certificate.value, tag: Array(certificate.tag.dropLast()) + [certificate.tag.last! ^ 1]),
        ]
        for forged in altered { #expect(!other.verify(forged, for: digest)) }
    }

    @Test("A subsystem restarted from its store never certifies a value it certified before")
    func restartDoesNotReuse() throws {
        let store = InMemoryCounterStore()
        var before = try counter(store: store)
        _ = try before.certifyIndependent(digest, counter: 0, value: CounterValue(view: 2, order: 40))
        var after = try counter(store: store)
        #expect(after.value(of: 0) == CounterValue(view: 2, order: 40))
        #expect(throws: TrustedCounterError.self) { try after.certifyIndependent(ThemisCore.Digest.of([5]), counter: 0, value: CounterValue(view: 2, order: 40)) }
        _ = try after.certifyIndependent(digest, counter: 0, value: CounterValue(view: 2, order: 41))
    }

    @Test("Nothing is certified when the value cannot be made durable")
    func persistenceFailureCertifiesNothing() throws {
        struct FailingStore: TrustedCounterStore {
            func load() throws(TrustedCounterError) -> [UInt32: CounterValue] { [:] }
            func persist(counter: UInt32, value: CounterValue) throws(TrustedCounterError) { throw .persistenceFailed("disk full") }
        }
        var trinx = try SoftwareTrustedCounter(id: subsystem, key: key, store: FailingStore())
        #expect(throws: TrustedCounterError.persistenceFailed("disk full")) {
            try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 0, order: 1))
        }
        #expect(trinx.value(of: 0) == .zero)
        #expect(TrustedCounterError.persistenceFailed("disk full").description == "counter state not persisted: disk full")
    }

    @Test("The file store writes a ceiling once per reservation, restarts above every certified value, and refuses a corrupt file")
    func fileStore() throws {
        let path = "/tmp/themis-counter-test-\(UInt64.random(in: 0...UInt64.max))"
        var trinx = try SoftwareTrustedCounter(id: subsystem, key: key, counters: 1, store: try FileCounterStore(path: path, reservation: 10))
        var last = CounterValue.zero
        for order in UInt64(1)...35 {
            last = try trinx.certifyIndependent(digest, counter: 0, value: CounterValue(view: 0, order: order)).value
        }
        // 35 values with a reservation of 10: ceilings at 11, 22, 33, 44 (one write each).
        let store = try FileCounterStore(path: path, reservation: 10)
        #expect(try store.load()[0] == CounterValue(view: 0, order: 44))
        var restarted = try SoftwareTrustedCounter(id: subsystem, key: key, counters: 1, store: store)
        #expect(restarted.value(of: 0) > last)
        #expect(throws: TrustedCounterError.self) { try restarted.certifyIndependent(digest, counter: 0, value: last) }
        // A new view is above every order number of the old one: one more write.
        _ = try restarted.certifyContinuing(digest, counter: 0, value: CounterValue(view: 1, order: 0))
        #expect(store.syncs == 1)
        // Corrupt: a startup error, never a silent reset to 0.
        let handle = fopen(path, "wb")
        fputs("not a counter file", handle)
        fclose(handle)
        #expect(throws: TrustedCounterError.self) { try FileCounterStore(path: path) }
        remove(path)
    }
}
