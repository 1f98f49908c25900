//! Can this host profile? `roprof doctor`'s checklist (kernel, BTF, cgroup
//! v2, privileges, lockdown, a real BPF smoke test, the container engine,
//! free memory), one [`Check`] each, with the remedy for each failure.
//!
//! The remedy texts live here only: `profile`, `attach` and `verify` run the
//! cheap host checks first ([`preflight`]) and map engine and BPF-load
//! errors through [`remedy_for`], so a user sees the same advice whether the
//! doctor or a profiling run found the problem.

pub mod engine;
pub mod host;
pub mod smoke;

use std::fmt;

/// One item of the checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckId {
    /// Kernel version.
    Kernel,
    /// Kernel BTF.
    Btf,
    /// cgroup v2 or the unified hierarchy.
    Cgroup,
    /// root or the BPF capabilities.
    Privileges,
    /// Lockdown mode.
    Lockdown,
    /// Loading and attaching a real program.
    Smoke,
    /// The Docker Engine API (`DOCKER_HOST` or the default socket).
    Engine,
    /// A Podman socket (informational).
    Podman,
    /// A containerd socket (informational).
    Containerd,
    /// Free memory for the ring buffer and maps.
    Memory,
}

impl CheckId {
    /// The name shown in the checklist and in errors.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            CheckId::Kernel => "kernel",
            CheckId::Btf => "kernel BTF",
            CheckId::Cgroup => "cgroup v2",
            CheckId::Privileges => "privileges",
            CheckId::Lockdown => "lockdown",
            CheckId::Smoke => "BPF smoke test",
            CheckId::Engine => "Docker engine",
            CheckId::Podman => "Podman",
            CheckId::Containerd => "containerd",
            CheckId::Memory => "memory",
        }
    }

    /// What to do when this check fails (or warns).
    #[must_use]
    pub fn remedy(self) -> &'static str {
        match self {
            CheckId::Kernel => {
                "upgrade to Linux 5.8 or newer (roprof needs the BPF ring buffer and raw tracepoints)"
            }
            CheckId::Btf => {
                "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 2020) \
                 and let roprof read /sys/kernel/btf/vmlinux; in a container, do not mask /sys"
            }
            CheckId::Cgroup => {
                "boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line), \
                 or mount the unified hierarchy: mount -t cgroup2 none /sys/fs/cgroup/unified"
            }
            CheckId::Privileges => {
                "run roprof as root, or give it CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE \
                 (sudo setcap cap_bpf,cap_perfmon,cap_sys_resource+ep roprof); in a container: \
                 docker run --privileged, or --cap-add SYS_ADMIN (Docker 20.10 knows no CAP_BPF)"
            }
            CheckId::Lockdown => {
                "lockdown=confidentiality forbids reading kernel memory from BPF: boot with \
                 lockdown=integrity (or none), or turn off Secure Boot's lockdown"
            }
            CheckId::Smoke => {
                "the kernel refused roprof's kind of BPF program: fix the checks above first; in a \
                 container, Docker's default seccomp profile allows bpf() only with CAP_SYS_ADMIN \
                 (newer engines: CAP_BPF): run it with --privileged or --cap-add SYS_ADMIN"
            }
            CheckId::Engine => {
                "start the Docker engine (systemctl start docker), or point DOCKER_HOST at a \
                 Docker-API socket (Podman: DOCKER_HOST=unix:///run/podman/podman.sock); in a \
                 container, mount it: -v /var/run/docker.sock:/var/run/docker.sock"
            }
            CheckId::Podman => {
                "roprof talks to Podman through its Docker-compatible API: start podman.socket and \
                 set DOCKER_HOST=unix:///run/podman/podman.sock"
            }
            CheckId::Containerd => {
                "roprof talks the Docker Engine API; containerd alone (a Kubernetes node without \
                 Docker) is not supported: profile the image on a machine with Docker or Podman"
            }
            CheckId::Memory => {
                "free some memory, or give roprof a smaller ring buffer (--ringbuf-bytes, a power \
                 of two; fewer buffered events before loss)"
            }
        }
    }
}

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Fine.
    Pass,
    /// Profiling works, but something is worth knowing.
    Warn,
    /// Profiling cannot work until this is fixed.
    Fail,
}

impl Status {
    /// ✓, ! or ✗.
    #[must_use]
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Which check.
    pub id: CheckId,
    /// Verdict.
    pub status: Status,
    /// What was found (a version, a path, an error).
    pub detail: String,
}

impl Check {
    /// A check with any status.
    #[must_use]
    pub fn new(id: CheckId, status: Status, detail: String) -> Self {
        Check { id, status, detail }
    }
    /// A passing check.
    #[must_use]
    pub fn pass(id: CheckId, detail: String) -> Self {
        Self::new(id, Status::Pass, detail)
    }
    /// A warning.
    #[must_use]
    pub fn warn(id: CheckId, detail: String) -> Self {
        Self::new(id, Status::Warn, detail)
    }
    /// A blocker.
    #[must_use]
    pub fn fail(id: CheckId, detail: String) -> Self {
        Self::new(id, Status::Fail, detail)
    }
}

/// A failed check that stops a profiling run before it starts.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}\n  remedy: {}\n  (`roprof doctor` runs the whole checklist)", .0.id.title(), .0.detail, .0.id.remedy())]
pub struct Blocker(pub Check);

/// The checks that need neither the engine nor a BPF load, in checklist
/// order; `ring` is the ring buffer size in bytes.
#[must_use]
pub fn host_checks(ring: u64) -> Vec<Check> {
    vec![
        host::kernel(),
        host::btf(),
        host::cgroup(),
        host::privileges(),
        host::lockdown(),
        host::memory(ring),
    ]
}

/// Every check, in order: the host, the smoke test, the engines.
pub async fn run_all(ring: u64) -> Vec<Check> {
    let mut checks = host_checks(ring);
    let memory = checks.pop();
    checks.push(smoke::check());
    checks.extend(engine::checks().await);
    checks.extend(memory);
    checks
}

/// The first failed check, if any.
#[must_use]
pub fn first_blocker(checks: &[Check]) -> Option<&Check> {
    checks.iter().find(|c| c.status == Status::Fail)
}

/// The host checks a profiling run makes before it creates anything: the
/// first failure, as an error carrying the doctor's remedy.
pub fn preflight(ringbuf_bytes: Option<u32>) -> Result<(), Blocker> {
    let ring = ringbuf_bytes.map_or(DEFAULT_RING_BYTES, u64::from);
    match first_blocker(&host_checks(ring)) {
        Some(c) => Err(Blocker(c.clone())),
        None => Ok(()),
    }
}

/// The kernel ring buffer's size when `--ringbuf-bytes` is not given (the
/// eBPF object's `EVENTS` map).
pub const DEFAULT_RING_BYTES: u64 = 4 << 20;

/// The checklist item whose remedy applies to `err` (an engine that does not
/// answer, BTF that cannot be read, a BPF load refused), if any.
#[must_use]
pub fn remedy_for(err: &anyhow::Error) -> Option<CheckId> {
    use crate::{runtime::RuntimeError, trace::TraceError};
    err.chain().find_map(|e| {
        if let Some(RuntimeError::Unreachable { .. }) = e.downcast_ref::<RuntimeError>() {
            return Some(CheckId::Engine);
        }
        match e.downcast_ref::<TraceError>()? {
            TraceError::Btf(crate::trace::btf::BtfError::Read { .. }) => Some(CheckId::Btf),
            TraceError::Load(_) | TraceError::Program { .. } => Some(CheckId::Smoke),
            _ => None,
        }
    })
}

impl fmt::Display for Check {
    /// One checklist line: mark, title, what was found; then, for a
    /// failure, the remedy on its own line (a warning's detail says what
    /// it means).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:<15} {}",
            self.status.mark(),
            self.id.title(),
            self.detail
        )?;
        if self.status == Status::Fail {
            write!(f, "\n  remedy: {}", self.id.remedy())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_mark_title_and_remedy() {
        let ok = Check::pass(CheckId::Kernel, "Linux 6.1 (>= 5.8)".into());
        assert_eq!(ok.to_string(), "✓ kernel          Linux 6.1 (>= 5.8)");
        let bad = Check::fail(CheckId::Btf, "cannot read /sys/kernel/btf/vmlinux".into());
        let text = bad.to_string();
        assert!(text.starts_with("✗ kernel BTF      cannot read"), "{text}");
        assert!(
            text.ends_with(&format!("\n  remedy: {}", CheckId::Btf.remedy())),
            "{text}"
        );
        let warn = Check::warn(CheckId::Memory, "low".into());
        assert_eq!(warn.to_string(), "! memory          low");
    }

    #[test]
    fn the_first_failure_is_the_blocker() {
        let checks = [
            Check::pass(CheckId::Kernel, String::new()),
            Check::warn(CheckId::Lockdown, String::new()),
            Check::fail(CheckId::Cgroup, "tmpfs".into()),
            Check::fail(CheckId::Engine, String::new()),
        ];
        assert_eq!(first_blocker(&checks).map(|c| c.id), Some(CheckId::Cgroup));
        assert_eq!(first_blocker(&checks[..2]), None);
        let e = Blocker(checks[2].clone()).to_string();
        assert!(
            e.starts_with("cgroup v2: tmpfs\n  remedy: boot with cgroup v2"),
            "{e}"
        );
    }

    #[test]
    fn errors_map_to_their_check() {
        let engine = anyhow::Error::new(crate::runtime::RuntimeError::Unreachable {
            endpoint: "unix:///nonexistent.sock".into(),
            source: Box::new(bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: "x".into(),
            }),
        })
        .context("connecting");
        assert_eq!(remedy_for(&engine), Some(CheckId::Engine));
        let btf = anyhow::Error::new(crate::trace::TraceError::Btf(
            crate::trace::btf::BtfError::Read {
                path: "/sys/kernel/btf/vmlinux".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
        ));
        assert_eq!(remedy_for(&btf), Some(CheckId::Btf));
        assert_eq!(remedy_for(&anyhow::anyhow!("image missing")), None);
    }
}
