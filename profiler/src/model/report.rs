//! The saved report: the run's metadata, what was observed, and the plan.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    CPath, Ended, Health, ImageConfig, MountPlan, ObserveOptions, PathObservation, PhaseTime,
    Round, RunOptions, SeedDigest, Settings,
};

/// What was lost or truncated during a run (all zero in a complete profile).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Losses {
    /// Events dropped because the ring buffer was full.
    pub ringbuf_drops: u64,
    /// Paths the kernel could not read in full.
    pub truncated_paths: u64,
    /// Processes that could not be followed (traced map full).
    pub traced_full: u64,
    /// Files whose byte counts are missing (files map full).
    pub files_full: u64,
    /// Kernel reads that failed while building events.
    pub read_errors: u64,
    /// Events lost because a tail call to the next kernel stage failed.
    #[serde(default)]
    pub tail_call_fails: u64,
}

impl Losses {
    /// True when nothing was lost (truncated paths count as a loss).
    #[must_use]
    pub fn is_clean(&self) -> bool {
        *self == Losses::default()
    }
}

impl std::fmt::Display for Losses {
    /// The non-zero counters, in words (`3 ring buffer drops, 1 truncated
    /// path`); `nothing lost` when clean.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts = [
            (self.ringbuf_drops, "ring buffer drop"),
            (self.truncated_paths, "truncated path"),
            (self.traced_full, "unfollowed process (traced map full)"),
            (self.files_full, "file without byte counts (files map full)"),
            (self.read_errors, "failed kernel read"),
            (self.tail_call_fails, "failed tail call"),
        ];
        let parts: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}{}", if *n == 1 { "" } else { "s" }))
            .collect();
        if parts.is_empty() {
            f.write_str("nothing lost")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Counters of tracer activity (not losses), and where the time went (not
/// `Eq`: it holds `f64`s).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceStats {
    /// Records received from the kernel.
    pub events: u64,
    /// Operations folded into dedupe entries in the kernel.
    pub deduped: u64,
    /// Dedupe map was full (events then sent without dedupe).
    pub dedup_full: u64,
    /// roprof's own peak resident memory (`VmHWM`) when the report was
    /// written, in KiB; 0 when unknown.
    #[serde(default)]
    pub peak_rss_kib: u64,
    /// `io_uring_setup` calls by the container's processes: writes
    /// submitted through `io_uring` are not traced.
    #[serde(default)]
    pub io_uring_setups: u64,
    /// Instructions the kernel's verifier processed for each eBPF program
    /// at load (its budget is 1M per program; kernels 5.16 and later report it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verified_insns: BTreeMap<String, u32>,
    /// How the kernel side read the current task and the syscall's
    /// registers on its hot path: `btf` (plain loads through
    /// `bpf_get_current_task_btf` and the typed `pt_regs` of the
    /// `tp_btf/sys_exit` hook, Linux 5.11+) or `probe_read` (a helper call
    /// per field, on the untyped raw tracepoint: older kernels, or a kernel
    /// that refused the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_reads: Option<TaskReads>,
    /// Wall time per phase of the run, in order (a closed loop adds
    /// `verify`; each round has its own in `rounds`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTime>,
    /// Seconds the eBPF programs took to load, verify and attach; this runs
    /// in the background, overlapping `inspect`, `create` and `listing`, and
    /// happens once per roprof process.
    #[serde(default)]
    pub bpf_load_secs: f64,
}

/// Metadata of the run that produced the observations (not `Eq`: it holds
/// an `f64`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "report fields users read, each a yes/no of its own"
)]
pub struct RunMeta {
    /// `profile`, `attach`, `verify`, `iterate`, `watch` or `merge`.
    pub mode: RunMode,
    /// Container id.
    #[serde(default)]
    pub container_id: String,
    /// The run had `--read-only` (verify, iterate rounds).
    #[serde(default)]
    pub read_only: bool,
    /// Seconds observed.
    pub observed_secs: f64,
    /// Why the observation window ended (absent in reports of roprof
    /// versions before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    /// Exit code, if the container exited.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Killed by the OOM killer.
    #[serde(default)]
    pub oom_killed: bool,
    /// Last lines of the container's log.
    #[serde(default)]
    pub logs_tail: Vec<String>,
    /// Writes before this point were not seen (attach mode).
    #[serde(default)]
    pub partial_start: bool,
    /// The run did not cover the container's normal life: interrupted by a
    /// signal, the engine was lost, or the container was OOM-killed.
    #[serde(default)]
    pub incomplete: bool,
    /// Why the report is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Notes for the reader (e.g. "attached to a running container").
    #[serde(default)]
    pub notes: Vec<String>,
    /// Health of the probe/HEALTHCHECK at the end; `None` without one.
    #[serde(default)]
    pub health: Option<Health>,
    /// Exit status of `--exercise` (128 + N when killed by signal N); absent
    /// without an exercise or when it had not finished when the window
    /// ended (it is then killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise_exit: Option<i64>,
    /// Programs of the container that ended with a non-zero status or a
    /// signal, one entry per program and status, as the kernel saw every
    /// exit (helpers under a supervisor included). `None` in reports of
    /// roprof versions before it was recorded, and for runs without a
    /// tracer of their own: nothing is compared then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_exits: Option<Vec<ProcessExit>>,
    /// What the observed run did not cover, which every output states
    /// (see [`super::Caveat`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caveats: Vec<super::Caveat>,
    /// The verdict of the read-only run of the final plan, when a
    /// verification ran to its end (absent otherwise, and in reports of
    /// roprof versions before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The container's sockets during the window (absent when they could
    /// not be read, and in reports of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<Served>,
}

/// What the container listened on and accepted during the window, read
/// from its network namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// `tcp/PORT` and `udp/PORT` it listened on (or was bound to).
    pub listened: Vec<String>,
    /// TCP connections it accepted.
    pub accepted: u64,
}

/// How the read-only run of the final plan compared with the observed run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// No difference: the image behaves the same.
    Verified,
    /// No difference but the writes the plan leaves to fail on purpose
    /// (`plan.unmounted`): those fail with EROFS, and the application may
    /// say so in its output.
    VerifiedWithExceptions,
    /// The read-only run differed.
    Failed,
}

impl Verification {
    /// The name users see (`verified_with_exceptions`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Verified => "verified",
            Verification::VerifiedWithExceptions => "verified_with_exceptions",
            Verification::Failed => "failed",
        }
    }

    /// The verdict in words, naming what fails by design (`plan`'s
    /// `unmounted`) when the read-only run matched but for it.
    #[must_use]
    pub fn describe(self, plan: &super::MountPlan) -> String {
        match self {
            Verification::Verified => {
                "verified: the read-only run behaved the same as the writable run".to_owned()
            }
            Verification::VerifiedWithExceptions => {
                let n: usize = plan.unmounted.iter().map(|u| u.paths.len()).sum();
                let dirs: Vec<String> = plan.unmounted.iter().map(|u| u.dir.display()).collect();
                format!(
                    "verified_with_exceptions: verified, except {n} write(s) below {} that fail \
                     by design",
                    dirs.join(", ")
                )
            }
            Verification::Failed => "failed: the read-only run differed".to_owned(),
        }
    }
}

/// A program of the container that ended other than with status 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessExit {
    /// The program's name as the kernel knows it (`comm`: the executed
    /// file's name, 15 bytes at most).
    pub program: String,
    /// How it ended.
    pub status: ExitStatus,
    /// How many processes of that program ended so (a crash loop under a
    /// supervisor counts each restart).
    pub count: u64,
    /// The first of them ended while roprof was stopping the container
    /// (the stop's signals, or its kill after the grace period): reported,
    /// not compared, since who is still running at the stop is timing.
    #[serde(default)]
    pub at_stop: bool,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// `exit(N)` with N > 0.
    Code(u8),
    /// Killed by this signal.
    Signal(u8),
}

impl ExitStatus {
    /// Decodes the kernel's `task_struct.exit_code` (`None` for 0): the low
    /// seven bits are the killing signal, else bits 8-15 the exit status.
    #[must_use]
    pub fn from_kernel(code: u32) -> Option<Self> {
        let sig = (code & 0x7f) as u8;
        let status = ((code >> 8) & 0xff) as u8;
        if sig != 0 {
            Some(ExitStatus::Signal(sig))
        } else if status != 0 {
            Some(ExitStatus::Code(status))
        } else {
            None
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exited {c}"),
            ExitStatus::Signal(s) => match signal_name(*s) {
                Some(n) => write!(f, "was killed by {n}"),
                None => write!(f, "was killed by signal {s}"),
            },
        }
    }
}

/// Names of the signals that end processes (Linux numbering, the same on
/// `x86_64` and arm64).
fn signal_name(s: u8) -> Option<&'static str> {
    Some(match s {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// A saved profile: everything needed to re-render any format.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
    pub schema_version: u32,
    /// roprof version that wrote it.
    pub roprof_version: String,
    /// The image.
    pub image: ImageConfig,
    /// The user's run options.
    pub run_options: RunOptions,
    /// Run metadata.
    pub run: RunMeta,
    /// Losses; a report with losses is not trustworthy.
    pub losses: Losses,
    /// Tracer activity.
    pub stats: TraceStats,
    /// Every observed path, sorted.
    pub paths: Vec<PathObservation>,
    /// The plan.
    pub plan: MountPlan,
    /// Closed-loop rounds (verify, repair, iterate, leave-one-out), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Round>,
    /// The planner's settings the plan was made with, repairs included
    /// (`verify --repair` continues from them).
    #[serde(default)]
    pub settings: Settings,
    /// How the run was observed (window, probe, exercise), for `roprof
    /// check`; absent in reports of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe: Option<ObserveOptions>,
    /// The image's content below each seeded or persistent mount of the
    /// plan, sorted by target: `roprof check` warns when it changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<SeedDigest>,
    /// Which input reports each path was observed in (`roprof merge`),
    /// sorted by path; empty in the report of one run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<PathSources>,
}

/// The input reports of `roprof merge` that observed one path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSources {
    /// The path.
    pub path: CPath,
    /// The reports, as named on the command line, in their order there.
    pub reports: Vec<String>,
}

/// Which workflow made a run, as the report's `run.mode` says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// `roprof profile` (and `--compose`, `--manifest`).
    #[default]
    Profile,
    /// `roprof attach`.
    Attach,
    /// A read-only run with a plan (`roprof verify`, `--verify`).
    Verify,
    /// `--mode iterate`.
    Iterate,
    /// `roprof watch`.
    Watch,
    /// `roprof merge`: one plan from several reports.
    Merge,
    /// `roprof guard`: the failed writes of a read-only workload in production.
    Guard,
}

impl RunMode {
    /// The name users see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Profile => "profile",
            RunMode::Attach => "attach",
            RunMode::Verify => "verify",
            RunMode::Iterate => "iterate",
            RunMode::Watch => "watch",
            RunMode::Guard => "guard",
            RunMode::Merge => "merge",
        }
    }
}

/// How the kernel side read the current task on its hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskReads {
    /// Plain loads through `bpf_get_current_task_btf` and the BTF-typed
    /// syscall hook `sys_exit_btf` (Linux 5.11+).
    Btf,
    /// A `bpf_probe_read_kernel` call per field (older kernels, or a
    /// verifier that refused the BTF variant).
    ProbeRead,
}

#[cfg(test)]
mod tests {
    use super::ExitStatus;

    #[test]
    fn kernel_exit_codes_decode_to_a_status_or_a_signal() {
        assert_eq!(ExitStatus::from_kernel(0), None, "status 0 is no failure");
        assert_eq!(ExitStatus::from_kernel(1 << 8), Some(ExitStatus::Code(1)));
        assert_eq!(
            ExitStatus::from_kernel(255 << 8),
            Some(ExitStatus::Code(255))
        );
        assert_eq!(ExitStatus::from_kernel(9), Some(ExitStatus::Signal(9)));
        assert_eq!(
            ExitStatus::from_kernel(0x80 + 11),
            Some(ExitStatus::Signal(11)),
            "a core dump still names the signal"
        );
        assert_eq!(ExitStatus::Signal(15).to_string(), "was killed by SIGTERM");
        assert_eq!(ExitStatus::Code(3).to_string(), "exited 3");
    }
}
