//! `bench.json`: what one `cargo xtask bench` measured, every repetition
//! included. The measuring modules build these values and the renderers
//! ([`crate::report`], [`crate::chart`]) read them, so the file's shape is
//! written down once, here.
//!
//! Numbers that are not known are `null` (an `Option`); the renderers show
//! them as `NaN` or `?`, as a half-finished run leaves them.

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

mod workload;

pub use workload::{
    AnswerServer, ServerAnswer, ServerAttempt, Workload, WorkloadResult, WorkloadServer,
    WorkloadVariant,
};

/// The version of this shape, the file's `schema` field. A file of another
/// version is refused with its version named, not half-read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Schema {
    /// The first shape: redis alone in §4, three variants.
    #[serde(rename = "roprof-bench/1")]
    V1,
    /// nginx and postgres beside redis in §4, with the `watch` and floor
    /// variants; the idle and ticking servers' default profiles in §3
    /// (`answer.servers`). Only fields and variants were added, so a V1
    /// file reads as it was.
    #[serde(rename = "roprof-bench/2")]
    V2,
    /// The current shape: roprof has one syscall hook (`sys_exit`; timed
    /// waits from `hrtimer_start`), so `container_floor` is the empty
    /// programs of those hooks, and `container_floor_two_hooks` (empty
    /// `sys_enter` + `sys_exit`) is the two-hook floor roprof had. In V1
    /// and V2 files `container_floor` had `sys_enter` and `sys_exit`.
    #[serde(rename = "roprof-bench/3")]
    V3,
}

impl Schema {
    /// Does this file's roprof use one syscall hook (V3 on)?
    #[must_use]
    pub fn one_syscall_hook(self) -> bool {
        self == Self::V3
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bench {
    pub schema: Schema,
    /// `--quick`: small sizes, numbers not meaningful.
    pub quick: bool,
    pub sizes: Sizes,
    pub machine: Machine,
    /// The whole measurement, seconds.
    #[serde(rename = "bench_wall_secs")]
    pub wall_secs: f64,
    pub overhead: Overhead,
    pub throughput: Throughput,
    pub answer: Answer,
    /// Real servers under load (absent in older bench.json files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<Workload>,
}

/// How much work each benchmark does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    /// Write-opens per run of the overhead benchmark (in a container).
    pub ops: u64,
    /// Write-opens per run on the host, untraced and under strace (strace is
    /// about 40 times slower, so fewer).
    pub strace_ops: u64,
    /// Interleaved repetitions of each overhead variant and of each real
    /// server's variant.
    pub reps: usize,
    /// Create-writes of the throughput benchmark.
    pub churn_ops: u64,
    /// Distinct paths they cycle over.
    pub churn_distinct: u64,
    /// Repetitions of each time-to-answer method.
    pub answer_reps: usize,
    /// Requests per `redis-benchmark` test (SET, GET) of the real-server
    /// rows (absent in older bench.json files: no such rows).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redis_requests: u64,
    /// Seconds of each `wrk` run against nginx (absent before V2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wrk_secs: u64,
    /// Seconds of each `pgbench` run (absent before V2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pgbench_secs: u64,
    /// `pgbench -i` scale factor, once per container outside the timed part
    /// (absent before V2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pgbench_scale: u64,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "the signature serde's skip_serializing_if calls"
)]
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The machine and the software measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub summary: String,
    pub nproc: usize,
    pub cpu: String,
    pub mem_kib: u64,
    pub kernel: String,
    pub docker: String,
    /// `roprof --version`.
    pub roprof: String,
    pub commit: String,
    pub date: String,
    pub load_before: Vec<f64>,
    #[serde(default)]
    pub load_after: Vec<f64>,
    /// Other roprof sessions' syscall-hook programs loaded at the start.
    pub other_roprof_tracers_before: usize,
    /// `kernel.bpf_stats_enabled` as found (the bench holds it at 0).
    #[serde(default)]
    pub bpf_stats_enabled_at_start: Option<String>,
}

/// Median and range of a set of measurements.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

/// A variant of the overhead benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    #[serde(rename = "container_untraced")]
    Untraced,
    #[serde(rename = "container_roprof")]
    Roprof,
    #[serde(rename = "container_floor")]
    Floor,
    /// Only the empty `sys_exit` program: the single-hook floor (and guard's).
    #[serde(rename = "container_floor_sys_exit")]
    FloorSysExit,
    /// Only the empty `sys_enter` program.
    #[serde(rename = "container_floor_sys_enter")]
    FloorSysEnter,
    /// Empty `sys_enter` and `sys_exit` programs: the two-hook floor
    /// (roprof's syscall hooks before issue 33; absent before V3).
    #[serde(rename = "container_floor_two_hooks")]
    FloorTwoHooks,
    #[serde(rename = "container_neighbour")]
    Neighbour,
    #[serde(rename = "container_bpftrace")]
    Bpftrace,
    #[serde(rename = "container_bpftrace_idle_all_syscalls")]
    BpftraceAll,
    #[serde(rename = "container_bpftrace_idle_hooked_syscalls")]
    BpftraceHooked,
    HostUntraced,
    HostStrace,
    /// The untraced container loop while `roprof guard` runs on the host
    /// (the container is writable, so not guarded: guard's neighbour).
    #[serde(rename = "container_guard_neighbour")]
    GuardNeighbour,
    /// The loop in a read-only container (`--read-only --tmpfs /tmp/b`),
    /// untraced: the baseline of the guarded row.
    #[serde(rename = "container_read_only_untraced")]
    ReadOnlyUntraced,
    /// The same read-only container while `roprof guard` guards it.
    #[serde(rename = "container_read_only_guarded")]
    ReadOnlyGuarded,
}

impl Variant {
    /// Every variant, in the order a repetition starts from.
    pub const ALL: [Self; 15] = [
        Self::Untraced,
        Self::Roprof,
        Self::Floor,
        Self::FloorSysExit,
        Self::FloorSysEnter,
        Self::FloorTwoHooks,
        Self::Neighbour,
        Self::Bpftrace,
        Self::BpftraceAll,
        Self::BpftraceHooked,
        Self::HostUntraced,
        Self::HostStrace,
        Self::GuardNeighbour,
        Self::ReadOnlyUntraced,
        Self::ReadOnlyGuarded,
    ];

    /// The name in bench.json and in progress lines.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Untraced => "container_untraced",
            Self::Roprof => "container_roprof",
            Self::Floor => "container_floor",
            Self::FloorSysExit => "container_floor_sys_exit",
            Self::FloorSysEnter => "container_floor_sys_enter",
            Self::FloorTwoHooks => "container_floor_two_hooks",
            Self::Neighbour => "container_neighbour",
            Self::Bpftrace => "container_bpftrace",
            Self::BpftraceAll => "container_bpftrace_idle_all_syscalls",
            Self::BpftraceHooked => "container_bpftrace_idle_hooked_syscalls",
            Self::HostUntraced => "host_untraced",
            Self::HostStrace => "host_strace",
            Self::GuardNeighbour => "container_guard_neighbour",
            Self::ReadOnlyUntraced => "container_read_only_untraced",
            Self::ReadOnlyGuarded => "container_read_only_guarded",
        }
    }

    /// The untraced run a variant is compared with.
    #[must_use]
    pub fn baseline(self) -> Self {
        match self {
            Self::HostUntraced | Self::HostStrace => Self::HostUntraced,
            Self::ReadOnlyUntraced | Self::ReadOnlyGuarded => Self::ReadOnlyUntraced,
            _ => Self::Untraced,
        }
    }
}

/// The tracing-overhead benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// Peak RSS (KiB) of a small run by `--ringbuf-bytes` value.
    pub rss_kib_by_ringbuf_bytes: BTreeMap<u64, u64>,
    pub ops: u64,
    pub strace_ops: u64,
    pub reps: usize,
    pub container_dir: String,
    pub bpftrace_program: String,
    pub bpftrace_idle_all_syscalls_program: String,
    pub bpftrace_idle_hooked_syscalls_program: String,
    /// Hooked syscalls this kernel has a tracepoint for.
    pub hooked_syscall_tracepoints: usize,
    pub variants: BTreeMap<Variant, VariantResult>,
    /// The extra run with `kernel.bpf_stats_enabled`.
    pub bpf_stats: Diagnosis,
}

impl Overhead {
    /// A variant's results, if it was measured.
    #[must_use]
    pub fn variant(&self, v: Variant) -> Option<&VariantResult> {
        self.variants.get(&v)
    }
}

/// One variant's repetitions and how they compare with its baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub baseline: Variant,
    pub ops_per_sec: Summary,
    pub ratio_of_medians: f64,
    /// Run r against run r of the baseline (which ran next to it).
    pub paired_ratio: Option<Summary>,
    pub runs: Vec<Run>,
}

/// One timed run: what opsuite reported, plus what else was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub ops: u64,
    pub ns: u64,
    pub ops_per_sec: f64,
    pub extra: RunExtra,
}

/// What a variant measures beside opsuite's count and time; which fields
/// are there depends on the variant.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunExtra {
    /// End to end, container start and stop included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_secs: Option<f64>,
    /// roprof's exit code, peak RSS and CPU time (`/usr/bin/time -v`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rss_kib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_secs: Option<f64>,
    /// From roprof's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<RoprofStats>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub losses: Option<Losses>,
    /// The bpftrace script's counts of the container's opens and writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_counted: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_counted: Option<u64>,
    /// An idle bpftrace filter's matches (0 expected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hits: Option<u64>,
    /// Where a host run wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// roprof's `losses` counters, by name.
pub type Losses = BTreeMap<String, u64>;

/// roprof's report `stats`: the fields the bench reads, and the rest kept
/// as roprof wrote them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoprofStats {
    pub events: u64,
    pub deduped: u64,
    #[serde(default)]
    pub dedup_full: Option<u64>,
    #[serde(default)]
    pub bpf_load_secs: Option<f64>,
    #[serde(default)]
    pub phases: Vec<Phase>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One timed phase of a roprof run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub phase: String,
    pub secs: f64,
}

/// Where roprof's time goes: the `bpf_stats_enabled` run, or why it failed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Diagnosis {
    Measured(BpfStats),
    Failed { error: String },
}

/// roprof's programs' run counts and times over one traced run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BpfStats {
    pub ops: u64,
    pub ns_per_op_total: f64,
    pub bpf_ns_per_op: f64,
    pub programs: BTreeMap<String, ProgramStats>,
    pub note: String,
}

/// One program's share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramStats {
    pub run_cnt: u64,
    pub run_time_ns: u64,
    pub avg_ns: f64,
    pub runs_per_op: f64,
}

/// The throughput and loss benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub ops: u64,
    pub distinct: u64,
    pub dir: String,
    pub tmpfs: String,
    pub exit_code: i32,
    pub wall_secs: f64,
    pub observed_secs: f64,
    pub workload_ns: u64,
    pub workload_ops_per_sec: f64,
    pub events: u64,
    pub deduped: u64,
    pub stats: RoprofStats,
    pub losses: Losses,
    pub paths_in_report: usize,
    pub events_per_sec: f64,
    pub kernel_handled_per_sec: f64,
    pub roprof_cpu_secs: f64,
    pub roprof_user_secs: f64,
    pub roprof_sys_secs: f64,
    pub max_rss_kib_json: u64,
    pub sampled_rss_kib_json: u64,
    pub json_report_bytes: usize,
    pub max_rss_kib_docker: u64,
    pub sampled_rss_kib_docker: u64,
    pub exit_code_docker: i32,
    /// Peak sum of `bytes_memlock` over roprof's maps, and the maps then.
    pub map_memlock_bytes: u64,
    pub maps: BTreeMap<String, u64>,
    pub map_memlock_bytes_docker_run: u64,
    pub other_roprof_tracers: usize,
}

/// A method of the time-to-answer benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "roprof_verify")]
    Roprof,
    #[serde(rename = "roprof_profile")]
    RoprofProfile,
    #[serde(rename = "roprof_iterate")]
    RoprofIterate,
    #[serde(rename = "docker_run_stop")]
    RunStop,
    #[serde(rename = "trial_and_error")]
    Naive,
    #[serde(rename = "docker_diff")]
    Diff,
}

impl Method {
    /// Every method, in the order a repetition starts from.
    pub const ALL: [Self; 6] = [
        Self::Roprof,
        Self::RoprofProfile,
        Self::RoprofIterate,
        Self::RunStop,
        Self::Naive,
        Self::Diff,
    ];

    /// The name in bench.json and in progress lines.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Roprof => "roprof_verify",
            Self::RoprofProfile => "roprof_profile",
            Self::RoprofIterate => "roprof_iterate",
            Self::RunStop => "docker_run_stop",
            Self::Naive => "trial_and_error",
            Self::Diff => "docker_diff",
        }
    }
}

/// The time-to-answer benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub image: String,
    pub reps: usize,
    pub max_rounds: usize,
    pub start_timeout_secs: u64,
    pub roprof_duration: String,
    pub methods: BTreeMap<Method, MethodResult>,
    /// Other servers' default profiles against their run + stop (absent
    /// before V2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerAnswer>,
}

impl Answer {
    /// A method's results, if it was measured.
    #[must_use]
    pub fn method(&self, m: Method) -> Option<&MethodResult> {
        self.methods.get(&m)
    }
}

/// One method's attempts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    pub wall_secs: Option<Summary>,
    pub runs: Vec<usize>,
    pub works: Vec<bool>,
    pub attempts: Vec<Attempt>,
}

impl MethodResult {
    /// Median over the attempts of their seconds per container run (roprof
    /// methods only).
    #[must_use]
    pub fn secs_per_run(&self) -> Option<f64> {
        let mut xs: Vec<f64> = self
            .attempts
            .iter()
            .filter_map(|a| match &a.extra {
                AttemptExtra::Roprof(r) => Some(r.secs_per_run),
                _ => None,
            })
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.get(xs.len() / 2).copied()
    }
}

/// One attempt at a working read-only nginx.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub wall_secs: f64,
    pub runs: usize,
    pub works: bool,
    /// The flags (or the whole `docker run` line) it proposes.
    pub answer: Vec<String>,
    pub extra: AttemptExtra,
}

/// What each kind of method records beside time and runs. Told apart by
/// their fields (each kind has one the others lack), as in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttemptExtra {
    Roprof(Box<RoprofAttempt>),
    Diff(DiffAttempt),
    TrialAndError(TrialAndErrorAttempt),
    RunStop(RunStopAttempt),
}

/// A roprof method's attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoprofAttempt {
    pub roprof_exit_code: i32,
    pub verified: bool,
    /// HTTP status of the independent check of roprof's `docker run` line.
    pub check_status: Option<u16>,
    pub check_runs_not_counted: usize,
    pub secs_per_run: f64,
    /// From roprof's report.json (`None` if it wrote none).
    pub ended: Option<String>,
    pub phases: Option<Vec<Phase>>,
    pub bpf_load_secs: Option<f64>,
    pub rounds: Option<Vec<RoprofRound>>,
    /// roprof's progress lines: seconds since the start, line.
    pub progress: Vec<(f64, String)>,
}

/// One closed-loop round of a roprof run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoprofRound {
    pub kind: Option<String>,
    pub passed: Option<bool>,
    pub ended: Option<String>,
    pub phases: Option<Vec<Phase>>,
}

/// The `docker diff` method's attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffAttempt {
    pub writable_status: Option<u16>,
    pub diff: Vec<String>,
    pub check_status: Option<u16>,
}

/// The trial-and-error method's attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialAndErrorAttempt {
    pub rounds: Vec<NaiveRound>,
}

/// One round of trial and error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NaiveRound {
    pub mounts: Vec<String>,
    pub status: Option<u16>,
    pub erofs: Vec<String>,
}

/// `docker run` + `docker stop`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunStopAttempt {
    pub status: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKED_IN: &str = include_str!("../../../reports/bench.json");

    #[test]
    fn the_checked_in_bench_json_reads_back_whole() {
        let bench: Bench = serde_json::from_str(CHECKED_IN)
            .unwrap_or_else(|e| panic!("reports/bench.json should fit the typed schema: {e}"));
        // Written again, it is the same document: no field was dropped or
        // reinterpreted (key order aside).
        let original: serde_json::Value =
            serde_json::from_str(CHECKED_IN).expect("reports/bench.json is JSON");
        let again = serde_json::to_value(&bench).expect("serialisable");
        assert_eq!(
            again, original,
            "reports/bench.json should survive a typed round trip unchanged"
        );
        assert!(
            matches!(
                bench
                    .answer
                    .method(Method::Roprof)
                    .map(|m| &m.attempts[0].extra),
                Some(AttemptExtra::Roprof(_))
            ),
            "a roprof attempt should read as one"
        );
        assert!(
            matches!(bench.overhead.bpf_stats, Diagnosis::Measured(_)),
            "the bpf_stats run should read as measured"
        );
    }

    #[test]
    fn another_schema_version_is_refused_by_name() {
        let current = serde_json::to_string(&Schema::V3).expect("serialises");
        let current = current.trim_matches('"');
        assert!(
            CHECKED_IN.contains(current),
            "the checked-in file is {current}"
        );
        let text = CHECKED_IN.replacen(current, "roprof-bench/9", 1);
        let err = serde_json::from_str::<Bench>(&text).expect_err("unknown version");
        assert!(err.to_string().contains("roprof-bench/9"), "{err}");
    }

    #[test]
    fn keys_match_the_serialised_names() {
        for v in Variant::ALL {
            assert_eq!(
                serde_json::to_value(v).expect("a string"),
                serde_json::Value::from(v.key())
            );
        }
        for m in Method::ALL {
            assert_eq!(
                serde_json::to_value(m).expect("a string"),
                serde_json::Value::from(m.key())
            );
        }
        for v in WorkloadVariant::ALL {
            assert_eq!(
                serde_json::to_value(v).expect("a string"),
                serde_json::Value::from(v.key())
            );
        }
        for s in WorkloadServer::ALL {
            assert_eq!(
                serde_json::to_value(s).expect("a string"),
                serde_json::Value::from(s.key())
            );
        }
        for s in AnswerServer::ALL {
            assert_eq!(
                serde_json::to_value(s).expect("a string"),
                serde_json::Value::from(s.key())
            );
            assert_eq!(
                serde_json::to_value(s.behaviour()).expect("a string"),
                serde_json::Value::from(s.behaviour().key())
            );
        }
    }
}
