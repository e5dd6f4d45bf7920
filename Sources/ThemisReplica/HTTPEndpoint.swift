import NIOCore
import NIOHTTP1
import NIOPosix
import ThemisCore

/// The replica's operations endpoint (`--http-port`): `GET /metrics` (Prometheus text format), `GET /status`
/// (JSON) and `GET /health` (200 `ok` when the replica can take part in ordering: not recovering and linked to
/// at least n - f - 1 other replicas; 503 with the reason otherwise). Plain HTTP/1.1 on its own listener;
/// every answer is computed on demand (the protocol loop is asked once per `/status` or `/health`, never per
/// message).
enum HTTPEndpoint {
    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
    }

    typealias Router = @Sendable (_ method: HTTPMethod, _ path: String) -> EventLoopFuture<Response>

    static func start(host: String, port: Int, group: any EventLoopGroup, router: @escaping Router) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(HTTPRouteHandler(router: router))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

/// Answers one request at a time per connection with the router's response.
final class HTTPRouteHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: HTTPEndpoint.Router
    private var head: HTTPRequestHead?

    init(router: @escaping HTTPEndpoint.Router) {
        self.router = router
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            let path = String(request.uri.prefix { $0 != "?" })
            let keepAlive = request.isKeepAlive
            let channel = context.channel
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            router(request.method, path).hop(to: context.eventLoop).whenComplete { result in
                let response = (try? result.get())
                    ?? HTTPEndpoint.Response(status: .internalServerError, contentType: "text/plain", body: Array("unavailable\n".utf8))
                let context = bound.value
                guard channel.isActive else { return }
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: response.contentType)
                headers.add(name: "Content-Length", value: "\(response.body.count)")
                if !keepAlive { headers.add(name: "Connection", value: "close") }
                context.write(NIOAny(HTTPServerResponsePart.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))), promise: nil)
                context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
                let sent = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
                if !keepAlive { sent.whenComplete { _ in channel.close(promise: nil) } }
            }
        }
    }
}
