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

/// The address of kernel symbol `name` in `/proc/kallsyms`; `None` when
/// absent, or hidden (`kptr_restrict` shows every address as 0).
#[must_use]
pub fn kernel_symbol(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    symbol_in(&text, name)
}

/// [`kernel_symbol`] in the text of `/proc/kallsyms` (`addr type name
/// [module]` lines).
fn symbol_in(kallsyms: &str, name: &str) -> Option<u64> {
    kallsyms.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let addr = f.next()?;
        let _kind = f.next()?;
        (f.next()? == name)
            .then(|| u64::from_str_radix(addr, 16).ok())
            .flatten()
            .filter(|a| *a != 0)
    })
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

#[cfg(test)]
mod tests {
    use super::symbol_in;

    #[test]
    fn a_kernel_symbol_is_found_by_its_exact_name_unless_hidden() {
        let text = "ffffffff8142de30 t hrtimer_wakeup\n\
                    ffffffff8142de00 t hrtimer_wakeup_extra\n\
                    ffffffffc0a01000 t helper\t[nf_tables]\n";
        assert_eq!(
            symbol_in(text, "hrtimer_wakeup"),
            Some(0xffff_ffff_8142_de30)
        );
        assert_eq!(symbol_in(text, "helper"), Some(0xffff_ffff_c0a0_1000));
        assert_eq!(symbol_in(text, "hrtimer_wake"), None, "no prefix match");
        assert_eq!(
            symbol_in("0000000000000000 t hrtimer_wakeup\n", "hrtimer_wakeup"),
            None,
            "kptr_restrict hides addresses as 0"
        );
    }
}
