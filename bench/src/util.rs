//! Shared pieces of the benchmarks: statistics, the machine description,
//! parsing opsuite's result lines, and running roprof under `/usr/bin/time -v`
//! while sampling its kernel maps (and optionally its programs' run times).

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::{
    cmd,
    schema::{Machine, Summary},
};

/// Median (mean of the middle two for an even count), min and max; `None`
/// for an empty set.
pub fn summary(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    };
    Some(Summary {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

/// The `key=value` fields of the last line starting with `tag ` in `text`,
/// e.g. `BENCH ops=10 ns=123`.
pub fn tagged_fields(text: &str, tag: &str) -> Option<BTreeMap<String, u64>> {
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(tag)?.strip_prefix(' '))?;
    let fields: BTreeMap<String, u64> = line
        .split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect();
    (!fields.is_empty()).then_some(fields)
}

/// `(ops, ns)` of opsuite's `BENCH ops=N ns=T` line.
pub fn bench_line(text: &str) -> Result<(u64, u64)> {
    let f = tagged_fields(text, "BENCH")
        .with_context(|| format!("no `BENCH ops=… ns=…` line in:\n{}", tail(text, 10)))?;
    match (f.get("ops"), f.get("ns")) {
        (Some(&ops), Some(&ns)) if ns > 0 => Ok((ops, ns)),
        _ => bail!("malformed BENCH line in:\n{}", tail(text, 10)),
    }
}

/// The last `n` lines of `text`, for error messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> Vec<f64> {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// What the report says about the machine and the software measured.
pub fn machine(roprof: &Path, workspace: &Path) -> Result<Machine> {
    let nproc = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let kernel = cmd::stdout(Command::new("uname").arg("-r"))?;
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim())
        })
        .unwrap_or("unknown")
        .to_owned();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let docker = cmd::stdout(&mut cmd::docker([
        "version",
        "--format",
        "{{.Server.Version}}",
    ]))
    .unwrap_or_else(|_| "unknown".into());
    let roprof_version =
        cmd::stdout(Command::new(roprof).arg("--version")).unwrap_or_else(|_| "unknown".into());
    let commit = cmd::stdout(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(workspace),
    )
    .unwrap_or_else(|_| "unknown".into());
    let date = cmd::stdout(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_else(|_| "unknown".into());
    let summary = format!(
        "{nproc} CPUs ({cpu}), {:.1} GiB RAM, Linux {kernel}, Docker {docker}",
        f64::from(u32::try_from(mem_kb / 1024).unwrap_or(u32::MAX)) / 1024.0
    );
    Ok(Machine {
        summary,
        nproc,
        cpu,
        mem_kib: mem_kb,
        kernel,
        docker,
        roprof: roprof_version,
        commit,
        date,
        load_before: loadavg(),
        load_after: Vec::new(),
        other_roprof_tracers_before: foreign_tracers(&BTreeSet::new()),
        bpf_stats_enabled_at_start: None,
    })
}

/// How many syscall-hook programs of roprof (profile and watch: `sys_exit`;
/// guard: `guard_exit`; a roprof from before its one-hook design:
/// `sys_enter`) other than `ours` are loaded: other roprof sessions on this
/// machine, which also run on every syscall.
pub fn foreign_tracers(ours: &BTreeSet<u64>) -> usize {
    bpftool_progs()
        .unwrap_or_default()
        .iter()
        .filter(|p| {
            matches!(
                p.name.as_deref(),
                Some("sys_exit" | "sys_exit_btf" | "guard_exit" | "sys_enter")
            )
        })
        .filter(|p| !ours.contains(&p.id))
        .count()
}

/// An entry of `bpftool -j prog show` (the fields read here).
#[derive(Deserialize)]
struct BpftoolProg {
    id: u64,
    name: Option<String>,
    run_cnt: Option<u64>,
    run_time_ns: Option<u64>,
}

/// An entry of `bpftool -j map show` (the fields read here).
#[derive(Deserialize)]
struct BpftoolMap {
    id: u64,
    name: Option<String>,
    bytes_memlock: Option<u64>,
}

fn bpftool_json<T: serde::de::DeserializeOwned>(args: &[&str]) -> Result<T> {
    let text = cmd::stdout(Command::new("bpftool").arg("-j").args(args))?;
    serde_json::from_str(&text).context("parsing bpftool's JSON")
}

fn bpftool_progs() -> Result<Vec<BpftoolProg>> {
    bpftool_json(&["prog", "show"])
}

/// The BPF object ids (`map_id:` or `prog_id:` lines) behind the open file
/// descriptors of process `pid`.
fn fd_object_ids(pid: u32, key: &str) -> BTreeSet<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        })
        .collect()
}

/// The first child of process `pid` (`/usr/bin/time`'s child is roprof).
fn first_child(pid: u32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What `/usr/bin/time -v` measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimeV {
    pub max_rss_kib: u64,
    pub user_secs: f64,
    pub sys_secs: f64,
}

pub fn parse_time_v(text: &str) -> TimeV {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    TimeV {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a KiB count printed as an integer"
        )]
        max_rss_kib: field("Maximum resident set size (kbytes):").unwrap_or(0.0) as u64,
        user_secs: field("User time (seconds):").unwrap_or(0.0),
        sys_secs: field("System time (seconds):").unwrap_or(0.0),
    }
}

/// A roprof run under `/usr/bin/time -v`, with what was sampled meanwhile.
pub struct RoprofRun {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub wall_secs: f64,
    pub time: TimeV,
    /// Largest sum of `bytes_memlock` over roprof's maps seen, and the
    /// per-name breakdown at that sample.
    pub map_memlock_max: u64,
    pub maps_at_max: BTreeMap<String, u64>,
    /// Last sample of roprof's programs: name → (`run_cnt`, `run_time_ns`).
    pub prog_stats: BTreeMap<String, (u64, u64)>,
    /// Largest `VmRSS` sampled, KiB (a cross-check of `time -v`).
    pub sampled_rss_kib: u64,
    /// Other roprof sessions' syscall-hook programs seen while this ran.
    pub foreign_tracers: usize,
}

/// What to sample while roprof runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Nothing: a timed run must not share the CPUs with bpftool.
    None,
    /// `bpftool map show` once a second.
    Maps,
    /// `bpftool prog show` every 100 ms (`kernel.bpf_stats_enabled` must be on).
    Progs,
}

/// Runs `roprof ARGS` under `/usr/bin/time -v`; stdout goes to a file under
/// `work` (a JSON report can be tens of MB) and is read back.
pub fn run_roprof(
    roprof: &Path,
    args: &[String],
    work: &Path,
    sampling: Sampling,
) -> Result<RoprofRun> {
    let out_path = work.join("roprof.stdout");
    let time_path = work.join("roprof.time");
    let out =
        fs::File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?;
    let mut c = Command::new("/usr/bin/time");
    c.arg("-v").arg("-o").arg(&time_path).arg(roprof).args(args);
    let line = cmd::display(&c);
    eprintln!("  $ {line}");
    let start = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let stderr_pipe = child.stderr.take().context("no stderr pipe")?;
    let stderr_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr_pipe }, &mut s);
        s
    });

    let mut run = RoprofRun {
        exit_code: -1,
        stdout: String::new(),
        stderr: String::new(),
        wall_secs: 0.0,
        time: TimeV::default(),
        map_memlock_max: 0,
        maps_at_max: BTreeMap::new(),
        prog_stats: BTreeMap::new(),
        sampled_rss_kib: 0,
        foreign_tracers: 0,
    };
    let interval = match sampling {
        Sampling::Progs => Duration::from_millis(100),
        _ => Duration::from_secs(1),
    };
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for roprof")? {
            break status;
        }
        if sampling != Sampling::None
            && let Some(pid) = first_child(child.id())
        {
            sample(pid, sampling, &mut run);
        }
        thread::sleep(if sampling == Sampling::None {
            Duration::from_millis(20)
        } else {
            interval
        });
    };
    run.wall_secs = start.elapsed().as_secs_f64();
    run.exit_code = status.code().unwrap_or(-1);
    run.stderr = stderr_reader.join().unwrap_or_default();
    run.stdout =
        fs::read_to_string(&out_path).with_context(|| format!("reading {}", out_path.display()))?;
    run.time = parse_time_v(&fs::read_to_string(&time_path).unwrap_or_default());
    Ok(run)
}

fn sample(pid: u32, sampling: Sampling, run: &mut RoprofRun) {
    if let Some(rss) = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
    {
        run.sampled_rss_kib = run.sampled_rss_kib.max(rss);
    }
    match sampling {
        Sampling::None => {}
        Sampling::Maps => {
            let ids = fd_object_ids(pid, "map_id:");
            let progs = fd_object_ids(pid, "prog_id:");
            run.foreign_tracers = run.foreign_tracers.max(foreign_tracers(&progs));
            if ids.is_empty() {
                return;
            }
            let Ok(maps) = bpftool_json::<Vec<BpftoolMap>>(&["map", "show"]) else {
                return;
            };
            let mut by_name = BTreeMap::new();
            for m in maps.into_iter().filter(|m| ids.contains(&m.id)) {
                let name = m.name.unwrap_or_else(|| "?".to_owned());
                *by_name.entry(name).or_insert(0) += m.bytes_memlock.unwrap_or(0);
            }
            let total: u64 = by_name.values().sum();
            if total >= run.map_memlock_max {
                run.map_memlock_max = total;
                run.maps_at_max = by_name;
            }
        }
        Sampling::Progs => {
            let ids = fd_object_ids(pid, "prog_id:");
            let Ok(progs) = bpftool_progs() else {
                return;
            };
            let stats: BTreeMap<String, (u64, u64)> = progs
                .into_iter()
                .filter(|p| ids.contains(&p.id))
                .filter_map(|p| Some((p.name?, (p.run_cnt?, p.run_time_ns?))))
                .collect();
            // Keep each program's largest count: roprof closes its programs
            // one by one on the way out.
            for (name, (cnt, time)) in stats {
                let e = run.prog_stats.entry(name).or_insert((0, 0));
                if cnt >= e.0 {
                    *e = (cnt, time);
                }
            }
        }
    }
}

/// Turns on `kernel.bpf_stats_enabled` (per-program run counts and times)
/// and puts back the previous value when dropped.
pub struct BpfStats {
    previous: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    pub fn enable() -> Result<Self> {
        Self::set("1")
    }

    /// Turns the statistics off: while they are on, every run of every BPF
    /// program on the host pays two clock reads, which would inflate every
    /// traced row (and the floor) of the timed comparison. A host where
    /// someone left them on is measured as a fresh one is.
    pub fn disable() -> Result<Self> {
        Self::set("0")
    }

    /// The value found before this guard changed it.
    pub fn previous(&self) -> &str {
        &self.previous
    }

    fn set(value: &str) -> Result<Self> {
        let previous = fs::read_to_string(BPF_STATS)
            .with_context(|| format!("reading {BPF_STATS}"))?
            .trim()
            .to_owned();
        fs::write(BPF_STATS, value).with_context(|| format!("writing {BPF_STATS}"))?;
        Ok(Self { previous })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = fs::write(BPF_STATS, &self.previous);
    }
}

/// Removes the named containers and volumes however a benchmark ends.
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            // -v: anonymous volumes (volatile seeded mounts) go too.
            let _ = cmd::output(cmd::docker(["rm", "-f", "-v"]).args(&self.containers));
        }
        if !self.volumes.is_empty() {
            let _ = cmd::output(cmd::docker(["volume", "rm", "-f"]).args(&self.volumes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_take_the_middle() {
        let s = summary(&[3.0, 1.0, 2.0]).expect("non-empty");
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let s = summary(&[4.0, 1.0, 2.0, 3.0]).expect("non-empty");
        assert!(
            (s.median - 2.5).abs() < 1e-12,
            "even count: mean of the middle two"
        );
        assert_eq!(summary(&[]), None, "nothing to summarise");
    }

    #[test]
    fn reads_the_last_tagged_line() {
        let out = "noise\nBENCH ops=10 ns=5\nBENCH ops=20 ns=7\nBENCHMARK x=1\n";
        assert_eq!(bench_line(out).expect("a BENCH line"), (20, 7));
        let f = tagged_fields("CHURN ops=3 distinct=2 ns=9", "CHURN").expect("fields");
        assert_eq!(f["distinct"], 2);
        assert!(
            bench_line("LOOP done").is_err(),
            "no BENCH line is an error"
        );
        assert!(
            bench_line("BENCH ops=1 ns=0").is_err(),
            "zero time is malformed"
        );
    }

    #[test]
    fn parses_gnu_time_output() {
        let text = "\tCommand being timed: \"x\"\n\tUser time (seconds): 0.07\n\
                    \tSystem time (seconds): 1.71\n\tMaximum resident set size (kbytes): 64044\n";
        let t = parse_time_v(text);
        assert_eq!(t.max_rss_kib, 64044);
        assert!((t.user_secs - 0.07).abs() < 1e-9 && (t.sys_secs - 1.71).abs() < 1e-9);
    }
}
