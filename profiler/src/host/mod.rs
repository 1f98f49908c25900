//! What roprof knows about the host it runs on: the kernel's release and
//! limits, and cgroup v2 (where the hierarchy is mounted, which cgroup a
//! process is in, and how runtimes name a container's cgroup).
//!
//! The bottom layer: it reads files under `/proc` and `/sys` and imports
//! nothing else of roprof. doctor, trace, session and watch all ask here,
//! so one host fact has one parser.

pub mod cgroup;

/// Parses `major.minor` from a kernel release such as `6.1.0-18-amd64`.
#[must_use]
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> std::io::Result<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned())
}

/// The running kernel's `(major, minor)`, when it can be read and parsed.
#[must_use]
pub fn kernel_version() -> Option<(u32, u32)> {
    kernel_release().ok().and_then(|r| parse_release(&r))
}

/// `kernel.pid_max`: one more than the highest pid (and tid) the kernel
/// hands out.
#[must_use]
pub fn pid_max() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
}

/// This process's peak resident memory (`VmHWM`), in KiB.
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of the kernel side's
/// record timestamps (`bpf_ktime_get_ns`).
#[must_use]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always
    // supported, and on failure `ts` stays zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap_or(0)
}
