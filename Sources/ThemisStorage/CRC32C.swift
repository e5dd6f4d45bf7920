/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every log record and snapshot:
/// it catches torn and corrupted records (it is not a defence against a forger; the disk is trusted).
public enum CRC32C {
    /// Slicing-by-8 tables: `tables[k * 256 + b]` is the CRC of byte `b` followed by `k` zero bytes. Eight
    /// bytes per step instead of one (a batch's record is about 10 KiB and is checksummed on the protocol loop
    /// before its sync: the byte-wise loop took 3 % of a durable replica's CPU).
    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for index in 0..<256 {
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0x82F6_3B78 : value >> 1 }
            tables[index] = value
        }
        for slice in 1..<8 {
            for index in 0..<256 {
                let previous = tables[(slice - 1) * 256 + index]
                tables[slice * 256 + index] = tables[Int(previous & 0xFF)] ^ (previous >> 8)
            }
        }
        return tables
    }()

    /// The checksum of `bytes`, continuing from `seed` (the checksum of the bytes before them; 0 to start).
    public static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        var crc = ~seed
        let t = Self.tables
        var index = 0
        let count = bytes.count
        while count - index >= 8 {
            let low = crc ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
                | UInt32(bytes[index + 3]) << 24)
            crc = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                ^ t[3 * 256 + Int(bytes[index + 4])] ^ t[2 * 256 + Int(bytes[index + 5])]
                ^ t[256 + Int(bytes[index + 6])] ^ t[Int(bytes[index + 7])]
            index += 8
        }
        while index < count {
            crc = t[Int((crc ^ UInt32(bytes[index])) & 0xFF)] ^ (crc >> 8)
            index += 1
        }
        return ~crc
    }
}
