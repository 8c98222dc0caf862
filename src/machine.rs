//! What this machine is called.

/// This machine's name, to tell servers apart in events and logs and to name certificates.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}
