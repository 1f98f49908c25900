//! The host checks that need no engine and load nothing: kernel version,
//! BTF, cgroup v2, privileges, lockdown and free memory. Each reads a file
//! or two under `/proc` and `/sys` (never tracefs or debugfs, which a fresh
//! host may not have mounted); the parsing is split out and unit-tested.

use std::{ffi::CString, path::Path};

use super::{Check, CheckId, Status};
use crate::host::{
    cgroup::{ROOT as CGROUP_ROOT, UNIFIED as CGROUP_UNIFIED, v2_membership},
    kernel_release, parse_release,
};

/// Where the kernel publishes its own BTF.
pub const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
/// The lockdown LSM's state (securityfs).
pub const LOCKDOWN_PATH: &str = "/sys/kernel/security/lockdown";

/// Oldest kernel with everything roprof uses (BPF ring buffer: 5.8).
pub const MIN_KERNEL: (u32, u32) = (5, 8);
/// From this kernel on, BPF memory is charged to the memory cgroup instead
/// of `RLIMIT_MEMLOCK`, so `CAP_SYS_RESOURCE` is no longer needed.
const MEMCG_ACCOUNTING_KERNEL: (u32, u32) = (5, 11);

/// `statfs(2)` magic of a cgroup v2 filesystem.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// BTF header magic (little-endian u16 at offset 0).
const BTF_MAGIC: u16 = 0xEB9F;

/// Capability numbers (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Memory roprof needs besides the ring buffer: its hash maps when full
/// (about 80 MiB for the dedupe and file tables) and its own heap.
const MEMORY_BESIDES_RING: u64 = 128 << 20;
/// Below the ring buffer plus this, loading is likely to fail outright.
const MEMORY_HARD_MINIMUM: u64 = 32 << 20;

/// Kernel version >= [`MIN_KERNEL`].
#[must_use]
pub fn kernel() -> Check {
    let (maj, min) = MIN_KERNEL;
    match kernel_release() {
        Err(e) => Check::warn(
            CheckId::Kernel,
            format!("cannot read /proc/sys/kernel/osrelease: {e}; version not checked"),
        ),
        Ok(release) => match parse_release(&release) {
            Some(v) if v >= MIN_KERNEL => {
                Check::pass(CheckId::Kernel, format!("Linux {release} (>= {maj}.{min})"))
            }
            Some(_) => Check::fail(
                CheckId::Kernel,
                format!("Linux {release} is older than {maj}.{min}"),
            ),
            None => Check::warn(
                CheckId::Kernel,
                format!("cannot parse the kernel release `{release}`; version not checked"),
            ),
        },
    }
}

/// `/sys/kernel/btf/vmlinux` readable and BTF.
#[must_use]
pub fn btf() -> Check {
    btf_at(Path::new(BTF_PATH))
}

fn btf_at(path: &Path) -> Check {
    use std::io::Read as _;
    let mut head = [0u8; 2];
    let res = std::fs::File::open(path).and_then(|mut f| {
        f.read_exact(&mut head)?;
        f.metadata()
    });
    match res {
        Err(e) => Check::fail(CheckId::Btf, format!("cannot read {}: {e}", path.display())),
        Ok(_) if u16::from_le_bytes(head) != BTF_MAGIC => Check::fail(
            CheckId::Btf,
            format!("{} is not BTF (bad magic)", path.display()),
        ),
        Ok(meta) => Check::pass(
            CheckId::Btf,
            format!("{} ({} KiB)", path.display(), meta.len() / 1024),
        ),
    }
}

/// The filesystem type of `path` (`statfs(2)`'s `f_type`).
fn fs_type(path: &Path) -> std::io::Result<i64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statfs is plain data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid, writable statfs
    // for the duration of the call.
    let rc = unsafe { libc::statfs(c.as_ptr(), &raw mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // `allow`, not `expect`: which lint fires depends on the target.
    #[allow(
        clippy::unnecessary_cast,
        clippy::cast_possible_wrap,
        reason = "f_type is i64 on gnu (the cast is a no-op) and c_ulong on musl (magics are 32-bit values, so no wrap)"
    )]
    Ok(st.f_type as i64)
}

/// True when `path` is a readable cgroup v2 mount.
fn is_cgroup2(path: &Path) -> Result<bool, String> {
    match fs_type(path) {
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(t) if t != CGROUP2_SUPER_MAGIC => Ok(false),
        Ok(_) => std::fs::read_dir(path)
            .map(|_| true)
            .map_err(|e| format!("{} is cgroup2 but unreadable: {e}", path.display())),
    }
}

/// cgroup v2 at `/sys/fs/cgroup`, or the hybrid unified hierarchy; failing
/// both, membership of a v2 cgroup (a container on a hybrid host sees no
/// unified mount, yet the engine put it in a v2 cgroup).
#[must_use]
pub fn cgroup() -> Check {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    cgroup_at(Path::new(CGROUP_ROOT), Path::new(CGROUP_UNIFIED), &own)
}

fn cgroup_at(root: &Path, unified: &Path, own: &str) -> Check {
    let root_why = match is_cgroup2(root) {
        Ok(true) => {
            return Check::pass(CheckId::Cgroup, format!("cgroup v2 at {}", root.display()));
        }
        Ok(false) => format!("{} is not cgroup2", root.display()),
        Err(e) => format!("cannot inspect {e}"),
    };
    let unified_why = match is_cgroup2(unified) {
        Ok(true) => {
            return Check::pass(
                CheckId::Cgroup,
                format!("hybrid: unified hierarchy at {}", unified.display()),
            );
        }
        Ok(false) => format!("{} is not cgroup2", unified.display()),
        Err(e) => e,
    };
    let why = format!("{root_why}, and {unified_why}");
    match v2_membership(own) {
        // Only the engine (or systemd) creates v2 cgroups: the unified
        // hierarchy is in use, which is what the kernel side needs.
        Some(path) if path != "/" => Check::warn(
            CheckId::Cgroup,
            format!(
                "no cgroup2 mount visible ({why}), but this process is in the v2 cgroup {path}: \
                 profile works; attach reads the hierarchy and needs it (in a container: \
                 -v /sys/fs/cgroup:/sys/fs/cgroup:ro --cgroupns=host)"
            ),
        ),
        _ => Check::fail(CheckId::Cgroup, why),
    }
}

/// Effective uid and capability set, from `/proc/self/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creds {
    /// Effective user id.
    pub euid: u32,
    /// `CapEff` bits.
    pub cap_eff: u64,
}

/// Parses the `Uid:` and `CapEff:` lines of `/proc/<pid>/status`.
#[must_use]
pub fn parse_status(status: &str) -> Option<Creds> {
    let mut euid = None;
    let mut cap_eff = None;
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Uid:") {
            euid = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
        } else if let Some(rest) = line.strip_prefix("CapEff:") {
            cap_eff = u64::from_str_radix(rest.trim(), 16).ok();
        }
    }
    Some(Creds {
        euid: euid?,
        cap_eff: cap_eff?,
    })
}

/// The capabilities roprof lacks, given `creds` and the kernel version
/// (`None` when unknown). Returns (blocking, merely advised).
#[must_use]
pub fn missing_caps(
    creds: Creds,
    kernel: Option<(u32, u32)>,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let has = |c: u32| creds.cap_eff & (1u64 << c) != 0;
    let admin = has(CAP_SYS_ADMIN);
    let mut blocking = Vec::new();
    let mut advised = Vec::new();
    if !(has(CAP_BPF) || admin) {
        blocking.push("CAP_BPF");
    }
    if !(has(CAP_PERFMON) || admin) {
        blocking.push("CAP_PERFMON");
    }
    if !has(CAP_SYS_RESOURCE) {
        if kernel.is_some_and(|k| k >= MEMCG_ACCOUNTING_KERNEL) {
            advised.push("CAP_SYS_RESOURCE");
        } else {
            blocking.push("CAP_SYS_RESOURCE");
        }
    }
    (blocking, advised)
}

/// root, or `CAP_BPF` + `CAP_PERFMON` + `CAP_SYS_RESOURCE`.
#[must_use]
pub fn privileges() -> Check {
    let creds = match std::fs::read_to_string("/proc/self/status") {
        Err(e) => {
            return Check::fail(
                CheckId::Privileges,
                format!("cannot read /proc/self/status: {e}"),
            );
        }
        Ok(s) => match parse_status(&s) {
            Some(c) => c,
            None => {
                return Check::fail(
                    CheckId::Privileges,
                    "no Uid/CapEff lines in /proc/self/status".into(),
                );
            }
        },
    };
    let kernel = crate::host::kernel_version();
    let who = if creds.euid == 0 {
        "root".to_owned()
    } else {
        format!("uid {}", creds.euid)
    };
    match missing_caps(creds, kernel) {
        (blocking, _) if !blocking.is_empty() => Check::fail(
            CheckId::Privileges,
            format!("{who} without {}", blocking.join(", ")),
        ),
        (_, advised) if !advised.is_empty() => Check::warn(
            CheckId::Privileges,
            format!(
                "{who} without {} (not needed on kernels >= 5.11, which charge BPF memory to the memory cgroup)",
                advised.join(", ")
            ),
        ),
        _ => Check::pass(
            CheckId::Privileges,
            format!("{who} with CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE (or CAP_SYS_ADMIN)"),
        ),
    }
}

/// The active mode in the lockdown file's `none [integrity] confidentiality`.
#[must_use]
pub fn parse_lockdown(text: &str) -> Option<&str> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(&text[start..end])
}

/// Lockdown mode: `confidentiality` forbids reading kernel memory from BPF.
#[must_use]
pub fn lockdown() -> Check {
    match std::fs::read_to_string(LOCKDOWN_PATH) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Check::pass(
            CheckId::Lockdown,
            format!(
                "not reported (no {LOCKDOWN_PATH} here); the smoke test reads kernel memory as roprof does"
            ),
        ),
        Err(e) => Check::warn(
            CheckId::Lockdown,
            format!("cannot read {LOCKDOWN_PATH}: {e}"),
        ),
        Ok(text) => match parse_lockdown(&text) {
            Some("confidentiality") => Check::fail(
                CheckId::Lockdown,
                "lockdown=confidentiality: BPF may not read kernel memory".into(),
            ),
            Some(mode) => Check::pass(CheckId::Lockdown, format!("lockdown={mode}")),
            None => Check::warn(
                CheckId::Lockdown,
                format!("cannot parse {LOCKDOWN_PATH}: `{}`", text.trim()),
            ),
        },
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
#[must_use]
pub fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// What the memory check concludes for `available` bytes and a ring buffer
/// of `ring` bytes.
#[must_use]
pub fn memory_status(available: u64, ring: u64) -> Status {
    if available < ring + MEMORY_HARD_MINIMUM {
        Status::Fail
    } else if available < ring + MEMORY_BESIDES_RING {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// Free memory for the ring buffer (`ring` bytes) and the maps.
#[must_use]
pub fn memory(ring: u64) -> Check {
    let available = match std::fs::read_to_string("/proc/meminfo") {
        Ok(text) => parse_mem_available(&text),
        Err(e) => {
            return Check::warn(CheckId::Memory, format!("cannot read /proc/meminfo: {e}"));
        }
    };
    let Some(available) = available else {
        return Check::warn(CheckId::Memory, "no MemAvailable in /proc/meminfo".into());
    };
    let mib = |b: u64| b >> 20;
    let detail = format!(
        "{} MiB available; the ring buffer takes {} MiB, the maps and roprof up to {} MiB more",
        mib(available),
        mib(ring).max(1),
        mib(MEMORY_BESIDES_RING)
    );
    Check::new(CheckId::Memory, memory_status(available, ring), detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases() {
        for (release, want) in [
            ("6.18.44-fc-v857", Some((6, 18))),
            ("5.8.0", Some((5, 8))),
            ("5.10.0-28-amd64", Some((5, 10))),
            ("4.18.0-513.el8.x86_64", Some((4, 18))),
            ("6.1rc2", Some((6, 1))),
            ("garbage", None),
            ("", None),
        ] {
            assert_eq!(parse_release(release), want, "release {release}");
        }
        assert!(parse_release("5.7.19").unwrap() < MIN_KERNEL);
        assert!(parse_release("5.8.0").unwrap() >= MIN_KERNEL);
    }

    const STATUS: &str = "Name:\tcat\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status(STATUS),
            Some(Creds {
                euid: 0,
                cap_eff: 0x0000_01ff_feff_ffff
            })
        );
        assert_eq!(parse_status("Name:\tcat\n"), None);
    }

    #[test]
    fn capabilities() {
        let with = |caps: &[u32]| Creds {
            euid: 1000,
            cap_eff: caps.iter().map(|c| 1u64 << c).sum(),
        };
        let new = Some((6, 1));
        let old = Some((5, 8));
        let none: Vec<&str> = vec![];
        assert_eq!(
            missing_caps(with(&[CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE]), old),
            (none.clone(), none.clone())
        );
        assert_eq!(
            missing_caps(with(&[CAP_SYS_ADMIN, CAP_SYS_RESOURCE]), old),
            (none.clone(), none.clone())
        );
        assert_eq!(
            missing_caps(with(&[CAP_BPF, CAP_PERFMON]), new),
            (none.clone(), vec!["CAP_SYS_RESOURCE"])
        );
        assert_eq!(
            missing_caps(with(&[CAP_BPF, CAP_PERFMON]), old),
            (vec!["CAP_SYS_RESOURCE"], none.clone())
        );
        assert_eq!(
            missing_caps(with(&[]), new),
            (vec!["CAP_BPF", "CAP_PERFMON"], vec!["CAP_SYS_RESOURCE"])
        );
        // Unknown kernel: assume the old rule.
        assert_eq!(
            missing_caps(with(&[CAP_BPF, CAP_PERFMON]), None).0,
            vec!["CAP_SYS_RESOURCE"]
        );
        // A root shell whose capabilities were dropped is not enough.
        let dropped = Creds {
            euid: 0,
            cap_eff: 0,
        };
        assert_eq!(missing_caps(dropped, new).0, vec!["CAP_BPF", "CAP_PERFMON"]);
    }

    #[test]
    fn lockdown_modes() {
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality\n"),
            Some("integrity")
        );
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality"),
            Some("none")
        );
        assert_eq!(
            parse_lockdown("none integrity [confidentiality]"),
            Some("confidentiality")
        );
        assert_eq!(parse_lockdown("none"), None);
    }

    #[test]
    fn memory_thresholds() {
        let meminfo = "MemTotal:       24684104 kB\nMemFree:        21940000 kB\nMemAvailable:   24137860 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(24_137_860 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        let ring = 4 << 20;
        assert_eq!(memory_status(8 << 30, ring), Status::Pass);
        assert_eq!(memory_status(100 << 20, ring), Status::Warn);
        assert_eq!(memory_status(20 << 20, ring), Status::Fail);
        assert_eq!(memory_status(100 << 20, 1 << 30), Status::Fail);
    }

    #[test]
    fn btf_file_checks() {
        let dir = std::env::temp_dir().join(format!("roprof-btf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, [0x9F, 0xEB, 1, 0]).unwrap();
        let bad = dir.join("bad");
        std::fs::write(&bad, b"ELF!").unwrap();
        assert_eq!(btf_at(&good).status, Status::Pass);
        let b = btf_at(&bad);
        assert_eq!(b.status, Status::Fail);
        assert!(b.detail.contains("bad magic"), "{}", b.detail);
        let m = btf_at(&dir.join("missing"));
        assert_eq!(m.status, Status::Fail);
        assert!(m.detail.contains("missing"), "names the path: {}", m.detail);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_plain_directory_is_not_cgroup2() {
        let dir = std::env::temp_dir();
        let unified = dir.join("roprof-no-such-unified");
        let c = cgroup_at(&dir, &unified, "0::/\n");
        assert_eq!(c.status, Status::Fail, "{}", c.detail);
        assert!(c.detail.contains("is not cgroup2"), "{}", c.detail);
        assert!(c.detail.contains("roprof-no-such-unified"), "{}", c.detail);
        // No v2 line at all (a pure v1 host): the same.
        let v1 = cgroup_at(&dir, &unified, "4:memory:/docker/abc\n");
        assert_eq!(v1.status, Status::Fail, "{}", v1.detail);
        // In a v2 cgroup below the root: the engine uses the hierarchy.
        let inside = cgroup_at(&dir, &unified, "4:memory:/docker/abc\n0::/docker/abc\n");
        assert_eq!(inside.status, Status::Warn, "{}", inside.detail);
        assert!(inside.detail.contains("/docker/abc"), "{}", inside.detail);
    }
}
