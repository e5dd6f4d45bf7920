import NIOCore
import ThemisClientCore
import ThemisCore
import ThemisWire

/// Everything the client mutates, confined to its event loop.
struct ClientState {
    var core: ClientCore
    var queue: [(operation: [UInt8], readOnly: Bool, promise: EventLoopPromise<[UInt8]>)] = []
    var current: EventLoopPromise<[UInt8]>?
    var closed = false

    init(core: ClientCore) {
        self.core = core
    }

    mutating func failAll(_ error: any Error) {
        current?.fail(error)
        current = nil
        for entry in queue { entry.promise.fail(error) }
        queue = []
    }
}
