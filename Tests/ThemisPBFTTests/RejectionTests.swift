// Rejection kinds are the labels the replica's counters use: the case name, never the details.
import Testing
import ThemisCore
import ThemisPBFT

@Suite("Rejection kinds")
struct RejectionTests {
    @Test("The kind is the case name; the description carries the details")
    func kindIsTheCaseName() {
        let stale = Rejection.staleCheckpoint(SequenceNumber(128))
        #expect(stale.kind == "staleCheckpoint")
        #expect(stale.description.contains("128"))
        #expect(Rejection.invalidCertificate("proof has 4 of 5").kind == "invalidCertificate")
        #expect(Rejection.wrongView(message: View(2), current: View(1)).kind == "wrongView")
        #expect(Rejection.duplicate.kind == "duplicate")
    }
}
