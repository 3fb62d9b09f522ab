public import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Bytes from the kernel's CSPRNG, fetched 4 KiB at a time and handed out once each:
/// one system call per ~250 ids instead of two per id (`getrandom` per id was 6% of a bulk import's profile).
/// Consumed bytes are zeroed in the pool.
///
/// Not a global: the composition root makes one and hands it to `Runtime.live(random:)`.
public final class KernelRandomPool: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
    private var offset = 4096
    /// `/dev/urandom`, opened once: the same kernel CSPRNG as `getrandom`, which Glibc's Swift module
    /// does not expose. Failing to read it is unrecoverable: no ids, no tokens.
    private let device = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    public init() {}

    deinit {
        if device >= 0 { close(device) }
        bytes.deallocate()
    }

    private func refill() {
        precondition(device >= 0, "cannot open /dev/urandom")
        var filled = 0
        while filled < bytes.count {
            let result = read(device, bytes.baseAddress! + filled, bytes.count - filled)
            if result > 0 {
                filled += result
            } else if result == 0 || errno != EINTR {
                fatalError("reading /dev/urandom failed (errno \(errno))")
            }
        }
        offset = 0
    }

    /// Fills `target` with fresh random bytes.
    public func fill(_ target: UnsafeMutableRawBufferPointer) {
        lock.lock()
        defer { lock.unlock() }
        var written = 0
        while written < target.count {
            if offset == bytes.count { refill() }
            let count = min(target.count - written, bytes.count - offset)
            (target.baseAddress! + written).copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
            (bytes.baseAddress! + offset).initializeMemory(as: UInt8.self, repeating: 0, count: count)
            offset += count
            written += count
        }
    }

    /// A generator over this pool.
    public var generator: Generator { Generator(pool: self) }

    public struct Generator: RandomNumberGenerator {
        let pool: KernelRandomPool
        public mutating func next() -> UInt64 {
            var value: UInt64 = 0
            withUnsafeMutableBytes(of: &value) { pool.fill($0) }
            return value
        }
    }
}
