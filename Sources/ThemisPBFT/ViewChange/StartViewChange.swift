import ThemisCore
import ThemisProtocolKit

/// Leaving a view: VIEW-CHANGE with the checkpoint proof and the prepared certificates (PBFT 4.4).
extension PBFTReplica {
    /// Stops accepting normal-case messages of the current view and announces the move to `target`.
    mutating func startViewChange(to target: View, into actions: inout [PBFTAction]) {
        // Recovering: its VIEW-CHANGE could leave out what it prepared before; it enters views by NEW-VIEW only.
        guard !recovery.active else { return }
        precondition(target > view, "view change to \(target) from \(view)")
        status = .viewChanging(to: target)
        // A batch executed tentatively that did not commit here in this view is undone.
        abandonTentative(into: &actions)
        viewChange.attempts += 1
        viewChange.requestDeadline = nil
        viewChange.viewChangeDeadline = now + timeoutTicks
        let message = ViewChange(
            newView: target, stableCheckpoint: lowWatermark, stableDigest: checkpoints.stableDigest ?? .zero,
            checkpointProof: checkpoints.stableProof,
            prepared: viewChange.preparedCertificates.filter { $0.key > lowWatermark }.sorted { $0.key < $1.key }.map(\.value),
            sender: id)
        viewChange.received[id] = Authenticated(message, authenticator: [])
        persist(.viewChange(message), into: &actions)
        actions.append(.broadcast(.viewChange(message)))
        actions.append(.observe(.viewChangeStarted(target)))
        sendNewViewIfReady(into: &actions)
    }

    /// The view this replica is in or moving to.
    var targetView: View {
        switch status {
        case .normal: return view
        case .viewChanging(let target): return target
        }
    }
}
