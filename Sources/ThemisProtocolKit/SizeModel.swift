import ThemisCore

/// The size model every protocol core's memory accounting uses (PBFT's `RetainedBytes`, Hybster's), so
/// bounds and measured figures compare: a request costs `requestOverhead` plus its operation and
/// authenticator; a vote or proof entry `entryOverhead` plus its authenticator; a slot `slotOverhead`; a
/// per-client record `recordOverhead`. The overheads over-state what Swift allocates for the fixed fields.
package enum SizeModel {
    package static let requestOverhead = 64
    package static let entryOverhead = 96
    package static let slotOverhead = 160
    package static let recordOverhead = 64

    package static func bytes(_ request: Request) -> Int { requestOverhead + request.operation.count + request.authenticator.count }
    package static func bytes(_ requests: [Request]) -> Int { requests.reduce(0) { $0 + bytes($1) } }
    package static func entry(_ authenticator: [UInt8]) -> Int { entryOverhead + authenticator.count }
}
