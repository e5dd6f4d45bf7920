#if canImport(Glibc)
import Glibc
#endif

/// Resident memory of a process, read from `/proc/<pid>/status` (Linux; nil elsewhere or if unreadable).
public enum ProcessMemory {
    /// Peak resident set size (VmHWM) in bytes of `pid`, or of this process.
    public static func peakResidentBytes(pid: Int32? = nil) -> UInt64? {
        field("VmHWM:", pid: pid)
    }

    /// Current resident set size (VmRSS) in bytes of `pid`, or of this process.
    public static func residentBytes(pid: Int32? = nil) -> UInt64? {
        field("VmRSS:", pid: pid)
    }

    private static func field(_ name: String, pid: Int32?) -> UInt64? {
        #if os(Linux)
        let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            guard count > 0 else { break }
            contents += chunk[0..<count]
        }
        for line in String(decoding: contents, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name) {
            // "VmHWM:	   22936 kB"
            guard let kilobytes = UInt64(String(line.dropFirst(name.count).filter(\.isNumber))) else { return nil }
            return kilobytes * 1024
        }
        return nil
        #else
        return nil
        #endif
    }
}
