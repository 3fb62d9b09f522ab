public import Foundation

extension UUID {
    /// The canonical lower-case text form (`3f2a…-…`), the form every backend stores and every
    /// response shows. Formatted by hand: Foundation's `uuidString` goes through `sprintf` on Linux,
    /// which showed up in import profiles.
    public var lowercasedString: String {
        @inline(__always) func digit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x57 + value }  // 0-9, a-f
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { buffer in
                var out = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        buffer[out] = UInt8(ascii: "-")
                        out += 1
                    }
                    buffer[out] = digit(byte >> 4)
                    buffer[out + 1] = digit(byte & 0x0F)
                    out += 2
                }
                return out
            }
        }
    }
}
