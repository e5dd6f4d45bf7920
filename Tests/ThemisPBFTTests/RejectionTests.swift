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

    @Test("Event kinds are the case names too, and the four protocol-neutral events map to `CommonEvent`")
    func eventKinds() {
        let digest = Digest.of([1, 2, 3])
        #expect(Event.checkpointTaken(SequenceNumber(8), digest).kind == "checkpointTaken")
        #expect(Event.viewChanged(View(1), primary: ReplicaID(1)).kind == "viewChanged")
        #expect(Event.batchProposed(SequenceNumber(1), requests: 3).kind == "batchProposed")
        #expect(Event.checkpointTaken(SequenceNumber(8), digest).common == .checkpointTaken(SequenceNumber(8), digest))
        #expect(Event.stateTransferFinished(SequenceNumber(16)).common == .stateTransferFinished(SequenceNumber(16)))
        #expect(Event.prepared(SequenceNumber(1)).common == nil)
        #expect(Event.viewChanged(View(2), primary: ReplicaID(2)).summary == "entered new view 2, primary 2")
    }
}
