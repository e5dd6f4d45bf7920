#if canImport(Glibc)
import Glibc
#endif

/// This process's peak resident memory, read from `/proc/self/status` (Linux; nil elsewhere or if unreadable).
public enum ProcessMemory {
    /// Peak resident set size (VmHWM) in bytes.
    public static func peakResidentBytes() -> UInt64? {
        field("VmHWM:")
    }

    private static func field(_ name: String) -> UInt64? {
        #if os(Linux)
        let descriptor = open("/proc/self/status", O_RDONLY)
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
