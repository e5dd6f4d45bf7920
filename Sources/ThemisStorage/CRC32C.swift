/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every log record and snapshot:
/// it catches torn and corrupted records (it is not a defence against a forger; the disk is trusted).
public enum CRC32C {
    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0x82F6_3B78 : value >> 1 }
        return value
    }

    /// The checksum of `bytes`, continuing from `seed` (the checksum of the bytes before them; 0 to start).
    public static func checksum(_ bytes: some Sequence<UInt8>, seed: UInt32 = 0) -> UInt32 {
        var crc = ~seed
        let table = Self.table
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }
}
