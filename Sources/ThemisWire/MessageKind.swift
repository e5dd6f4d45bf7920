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
/// | request 0x20 | client UInt32, timestamp UInt64, operation, authenticator |
/// | reply 0x21 | view, timestamp, client, replica, result, authenticator |
/// | readOnlyRequest 0x22 | as request (client, timestamp, operation, authenticator); answered by each replica from its state, not ordered |
/// | tentativeReply 0x23 | as reply; the replica executed the request before it committed (PBFT's tentative execution): it counts only towards 2f+1 matching replies |
/// | statusQuery 0x30 | nonce UInt64 |
/// | statusReport 0x31 | nonce, replica, view, lastExecuted, lastStableCheckpoint, applicationDigest, connectedReplicas, batchesExecuted, requestsExecuted, peakResidentBytes |
/// | replica 0x40 | protocol id UInt8, then the protocol plug-in's bytes to the end of the payload (its kind byte, fields, authenticator) |
///
/// The kinds 0x10-0x1A were the first protocol's messages in wire version 1; since version 2 every protocol
/// message travels as `replica`, and its kinds are numbered by its plug-in, inside its payload (the first
/// protocol kept those numbers there). They stay retired here.
///
/// Values are grouped by family so a new kind finds a free number in its group. A number, once
/// used, MUST NOT be reused for another kind: old signatures would then verify as the new kind.
package enum MessageKind: UInt8, CaseIterable {
    case hello = 0x01
    case helloProof = 0x02
    case goodbye = 0x03
    case attachClient = 0x04
    case request = 0x20
    case reply = 0x21
    case readOnlyRequest = 0x22
    case tentativeReply = 0x23
    case statusQuery = 0x30
    case statusReport = 0x31
    case replica = 0x40

    package init(of message: WireMessage) {
        switch message {
        case .hello: self = .hello
        case .helloProof: self = .helloProof
        case .goodbye: self = .goodbye
        case .attachClient: self = .attachClient
        case .replica: self = .replica
        case .request: self = .request
        case .reply(let reply): self = reply.tentative ? .tentativeReply : .reply
        case .readOnlyRequest: self = .readOnlyRequest
        case .statusQuery: self = .statusQuery
        case .statusReport: self = .statusReport
        }
    }
}

/// The kind byte of a principal.
package enum PrincipalKind: UInt8 {
    case replica = 0
    case client = 1
}
