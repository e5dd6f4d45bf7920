import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Crypto
import ThemisCore
import ThemisCrypto
import ThemisReplicaCommand

/// `themis counter-probe`: certifies order numbers on a software trusted counter over a counter file and
/// prints each value once its certificate exists (so after a kill -9, every printed value was certified).
/// The kill -9 test (IntegrationTests) restarts it and checks that no printed value is certified again.
struct CounterProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "counter-probe", abstract: "Certify values on a file-backed software trusted counter (the kill -9 test).",
        shouldDisplay: false)

    @Option(help: "The counter file.") var file: String
    @Option(help: "Certificates to make (0: until killed).") var count = 0
    @Option(help: "Order numbers per fsync (FileCounterStore's reservation).") var reservation: UInt64 = 64

    func run() async throws {
        try await reportingErrors {
            let store = try FileCounterStore(path: file, reservation: reservation)
            var counter = try SoftwareTrustedCounter(id: TrustedSubsystemID(replica: ReplicaID(0), pillar: 0),
                                                     key: SymmetricKey(data: [UInt8](repeating: 1, count: 32)), store: store)
            var made = 0
            var order = counter.value(of: 0).order
            while count == 0 || made < count {
                order += 1
                let certificate = try counter.certifyIndependent(Digest.of(Array("probe \(order)".utf8)), counter: 0,
                                                                 value: CounterValue(view: 0, order: order))
                print("certified \(certificate.value.order)")
                fflush(nil)
                made += 1
            }
            print("syncs \(store.syncs)")
        }
    }
}
