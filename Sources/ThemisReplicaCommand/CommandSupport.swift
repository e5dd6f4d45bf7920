// Helpers shared by the `themis` and `themis-replica` command-line tools.
import ArgumentParser
import Dispatch
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Prints one line to standard error.
public func printError(_ message: String) {
    var standardError = StandardError()
    print(message, to: &standardError)
}

public struct StandardError: TextOutputStream {
    public init() {}

    public mutating func write(_ string: String) {
        _ = try? FileDescriptor.standardError.writeAll(Array(string.utf8))
    }
}

/// Runs `body`; on an error prints `themis: <error>` as one line and exits with status 1.
public func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("themis: \(error)")
        throw ExitCode.failure
    }
}

/// The directory part of a path ("." if none).
public func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let prefix = String(path[..<slash])
    return prefix.isEmpty ? "/" : prefix
}

/// Waits until SIGTERM or SIGINT arrives. The caller then drains; a second signal ends the process at once
/// (the default action is restored).
public func waitForTerminationSignal() async {
    signal(SIGTERM, SIG_IGN)
    signal(SIGINT, SIG_IGN)
    let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
    let sources = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield(number) }
        source.resume()
        return source
    }
    for await _ in stream { break }
    for source in sources { source.cancel() }
    signal(SIGTERM, SIG_DFL)
    signal(SIGINT, SIG_DFL)
}
