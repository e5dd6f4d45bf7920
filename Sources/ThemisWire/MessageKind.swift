import ThemisCore

/// The kind byte of a payload, and of the bytes that authenticate a message of that kind.
///
/// Payload layout (all integers big-endian, fixed width; a byte string is a UInt32 length then the bytes):
///
/// | kind | fields after `version, kind` |
/// |------|------------------------------|
/// | hello 0x01 | principal (kind byte 0 replica / 1 client, UInt32 id), nonce (byte string of exactly 32), clusterTag UInt64 |
/// | helloProof 0x02 | proof (byte string) |
/// | goodbye 0x03 | reason (byte string, UTF-8, at most 512) |
/// | attachClient 0x04 | client UInt32, proof (byte string) |
/// | relayedRequest 0x10 | relayedBy UInt32, request, authenticator |
/// | prePrepare 0x11 | view, sequence, digest (32 bytes), sender, count UInt32, count × request, authenticator |
/// | prepare 0x12, commit 0x13 | view, sequence, digest, sender, authenticator |
/// | checkpoint 0x14 | sequence, stateDigest, sender, authenticator |
/// | viewChange 0x15 | view-change body (below), authenticator |
/// | newView 0x16 | view, sender, count UInt32, count × (view-change body, authenticator), count UInt32, count × (pre-prepare header, authenticator), authenticator |
/// | fetchState 0x17 | sequence, stateDigest, offset UInt64, sender, authenticator |
/// | stateChunk 0x18 | sequence, stateDigest, totalBytes UInt64, offset UInt64, bytes (byte string, at most `Limits.stateChunkBytes`), count UInt32 (at most `Limits.stateChunksMax`), count × chunk digest, sender, authenticator |
/// | fetchBatches 0x19 | from (sequence), sender, authenticator |
/// | committedBatches 0x1A | sender, count UInt32 (at most `Limits.committedBatchesPerMessageMax`), count × pre-prepare fields, authenticator |
/// | request 0x20 | client UInt32, timestamp UInt64, operation, authenticator |
/// | reply 0x21 | view, timestamp, client, replica, result, authenticator |
/// | statusQuery 0x30 | nonce UInt64 |
/// | statusReport 0x31 | nonce, replica, view, lastExecuted, lastStableCheckpoint, applicationDigest |
///
/// A view-change body is newView, stableCheckpoint, stableDigest, sender, then the checkpoint proof
/// (count UInt32, count × (checkpoint fields, authenticator)), then the prepared certificates (count
/// UInt32, count × (pre-prepare header, authenticator, count UInt32, count × (prepare fields,
/// authenticator))). A "pre-prepare header" is view, sequence, digest, sender, request count, without
/// the requests (the digest binds them; a replica fetches a batch it lacks with FETCH-BATCHES), so
/// VIEW-CHANGE and NEW-VIEW sizes do not grow with batch sizes. "Pre-prepare fields" (prePrepare,
/// committedBatches) are the header followed by the requests. Each pre-prepare of a NEW-VIEW's O is followed by the new
/// primary's own authenticator over it (a byte string, possibly empty), so a backup can later forward
/// it inside a prepared certificate. Counts are bounded before use: see
/// `WireCodec.certificateEntriesMax` and `WireCodec.preparedCertificatesMax`. The pre-prepares of a
/// COMMITTED-BATCHES carry no authenticator of their own: the outer one covers them all.
///
/// Values are grouped by family so a new kind finds a free number in its group. A number, once
/// used, MUST NOT be reused for another kind: old signatures would then verify as the new kind.
enum MessageKind: UInt8, CaseIterable {
    case hello = 0x01
    case helloProof = 0x02
    case goodbye = 0x03
    case attachClient = 0x04
    case relayedRequest = 0x10
    case prePrepare = 0x11
    case prepare = 0x12
    case commit = 0x13
    case checkpoint = 0x14
    case viewChange = 0x15
    case newView = 0x16
    case fetchState = 0x17
    case stateChunk = 0x18
    case fetchBatches = 0x19
    case committedBatches = 0x1A
    case request = 0x20
    case reply = 0x21
    case statusQuery = 0x30
    case statusReport = 0x31

    init(of message: WireMessage) {
        switch message {
        case .hello: self = .hello
        case .helloProof: self = .helloProof
        case .goodbye: self = .goodbye
        case .attachClient: self = .attachClient
        case .pbft(let message, _): self.init(of: message)
        case .request: self = .request
        case .reply: self = .reply
        case .statusQuery: self = .statusQuery
        case .statusReport: self = .statusReport
        }
    }

    init(of message: PBFTMessage) {
        switch message {
        case .request: self = .relayedRequest
        case .prePrepare: self = .prePrepare
        case .prepare: self = .prepare
        case .commit: self = .commit
        case .checkpoint: self = .checkpoint
        case .viewChange: self = .viewChange
        case .newView: self = .newView
        case .fetchState: self = .fetchState
        case .stateChunk: self = .stateChunk
        case .fetchBatches: self = .fetchBatches
        case .committedBatches: self = .committedBatches
        }
    }
}

/// The kind byte of a principal.
enum PrincipalKind: UInt8 {
    case replica = 0
    case client = 1
}
