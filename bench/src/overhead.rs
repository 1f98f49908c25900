//! Tracing overhead: opsuite's `bench N DIR` (N x open-for-write + write one
//! byte + close over 32 files, timed inside the process with the monotonic
//! clock, so container start-up is excluded) run untraced, under roprof,
//! under a comparable bpftrace script, and — on the host, as a separate pair —
//! untraced and under `strace -f`.
//!
//! The variants are interleaved: repetition `r` runs each once, starting at a
//! different variant each time, so drift in the machine's load spreads over
//! all of them.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result};

use crate::{
    attached, cmd,
    docker::image_name,
    floor::Floor,
    roprof_report::RoprofReport,
    schema::{
        self, Diagnosis, Overhead, ProgramStats, Run, RunExtra, Sizes, Variant, VariantResult,
    },
    util::{self, BpfStats, Sampling},
};

/// Where the benchmark writes inside the container (its root filesystem,
/// an overlayfs upper layer, as a real workload's writes would be).
const CONTAINER_DIR: &str = "/tmp/b";

/// The bpftrace comparison: the same hooks roprof needs for this workload
/// (openat entry and exit, write entry), filtered by command name, counting
/// per file name in a map.
const BPFTRACE_PROGRAM: &str = r#"tracepoint:syscalls:sys_enter_openat /comm == "opsuite"/ { @fname[tid] = args->filename; }
tracepoint:syscalls:sys_exit_openat /@fname[tid]/ { @opens[str(@fname[tid])] = count(); delete(@fname[tid]); }
tracepoint:syscalls:sys_enter_write /comm == "opsuite"/ { @writes = count(); }"#;

/// One timed run: what opsuite reported, plus whatever else was measured.
struct Sample {
    ops: u64,
    ns: u64,
    extra: RunExtra,
}

impl Sample {
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 * 1e9 / self.ns as f64
    }
}

pub fn run(roprof: &Path, sizes: &Sizes, work: &Path) -> Result<Overhead> {
    let opsuite = host_opsuite(work)?;
    let tracepoints = attached::syscall_tracepoints().context("listing the syscall tracepoints")?;
    let hooked = attached::hooked_tracepoints(|s| tracepoints.iter().any(|t| t == s));
    let (hooked_script, hooked_n) = attached::hooked_syscalls_script(&hooked);
    let scripts = Scripts {
        all: attached::all_syscalls_script(),
        hooked: hooked_script,
    };
    let mut samples: BTreeMap<Variant, Vec<Sample>> = BTreeMap::new();
    for rep in 0..sizes.reps {
        for i in 0..Variant::ALL.len() {
            let variant = Variant::ALL[(rep + i) % Variant::ALL.len()];
            eprintln!(
                "roprof-bench: overhead rep {}/{}: {}",
                rep + 1,
                sizes.reps,
                variant.key()
            );
            let s = run_variant(variant, roprof, &opsuite, sizes, work, &scripts)
                .with_context(|| format!("overhead benchmark, {}", variant.key()))?;
            eprintln!(
                "roprof-bench:   {:.0} ops/s ({} ops in {} ms)",
                s.ops_per_sec(),
                s.ops,
                s.ns / 1_000_000
            );
            samples.entry(variant).or_default().push(s);
        }
    }

    let mut variants = BTreeMap::new();
    for (&v, runs) in &samples {
        let rates: Vec<f64> = runs.iter().map(Sample::ops_per_sec).collect();
        let base = &samples[&v.baseline()];
        // Paired by repetition: run r of this variant against run r of its
        // baseline, which ran next to it.
        let paired: Vec<f64> = runs
            .iter()
            .zip(base)
            .map(|(s, b)| s.ops_per_sec() / b.ops_per_sec())
            .collect();
        let rate = util::summary(&rates).context("no runs")?;
        let base_rate = util::summary(&base.iter().map(Sample::ops_per_sec).collect::<Vec<_>>())
            .context("no baseline runs")?;
        variants.insert(
            v,
            VariantResult {
                baseline: v.baseline(),
                ops_per_sec: rate,
                ratio_of_medians: rate.median / base_rate.median,
                paired_ratio: util::summary(&paired),
                runs: runs
                    .iter()
                    .map(|s| Run {
                        ops: s.ops,
                        ns: s.ns,
                        ops_per_sec: s.ops_per_sec(),
                        extra: s.extra.clone(),
                    })
                    .collect(),
            },
        );
    }

    eprintln!(
        "roprof-bench: overhead: where roprof's time goes (bpf_stats_enabled, one extra run) ..."
    );
    let diagnosis = diagnose(roprof, sizes, work).unwrap_or_else(|e| {
        eprintln!("roprof-bench: warning: the bpf_stats run failed: {e:#}");
        Diagnosis::Failed {
            error: format!("{e:#}"),
        }
    });
    eprintln!("roprof-bench: overhead: peak RSS by ring-buffer size (two small runs) ...");
    let mut rss_by_ringbuf = BTreeMap::new();
    for bytes in [1u64 << 20, 16 << 20] {
        let mut args = roprof_args("1000");
        args.splice(1..1, ["--ringbuf-bytes".to_owned(), bytes.to_string()]);
        let run = util::run_roprof(roprof, &args, work, Sampling::None)?;
        RoprofReport::from_run(&run)?;
        rss_by_ringbuf.insert(bytes, run.time.max_rss_kib);
    }
    Ok(Overhead {
        rss_kib_by_ringbuf_bytes: rss_by_ringbuf,
        ops: sizes.ops,
        strace_ops: sizes.strace_ops,
        reps: sizes.reps,
        container_dir: CONTAINER_DIR.into(),
        bpftrace_program: BPFTRACE_PROGRAM.into(),
        bpftrace_idle_all_syscalls_program: scripts.all,
        bpftrace_idle_hooked_syscalls_program: scripts.hooked,
        hooked_syscall_tracepoints: hooked_n,
        variants,
        bpf_stats: diagnosis,
    })
}

/// The two idle bpftrace scripts of the hook-kind comparison.
struct Scripts {
    all: String,
    hooked: String,
}

fn run_variant(
    v: Variant,
    roprof: &Path,
    opsuite: &Path,
    sizes: &Sizes,
    work: &Path,
    scripts: &Scripts,
) -> Result<Sample> {
    let n = sizes.ops.to_string();
    match v {
        Variant::Untraced => {
            let (out, wall) = docker_bench(&n)?;
            let (ops, ns) = util::bench_line(&out)?;
            Ok(Sample {
                ops,
                ns,
                extra: RunExtra {
                    wall_secs: Some(wall),
                    ..RunExtra::default()
                },
            })
        }
        Variant::Roprof => {
            let run = util::run_roprof(roprof, &roprof_args(&n), work, Sampling::None)?;
            let report = RoprofReport::from_run(&run)?;
            let (ops, ns) = util::bench_line(&report.logs_tail())?;
            Ok(Sample {
                ops,
                ns,
                extra: RunExtra {
                    wall_secs: Some(run.wall_secs),
                    exit_code: Some(run.exit_code),
                    max_rss_kib: Some(run.time.max_rss_kib),
                    user_secs: Some(run.time.user_secs),
                    sys_secs: Some(run.time.sys_secs),
                    observed_secs: report.run.observed_secs,
                    stats: Some(report.stats),
                    losses: Some(report.losses),
                    ..RunExtra::default()
                },
            })
        }
        Variant::Bpftrace => bpftrace_bench(&n),
        Variant::Floor
        | Variant::FloorSysExit
        | Variant::FloorSysEnter
        | Variant::FloorTwoHooks => {
            let floor = match v {
                Variant::FloorSysExit => Floor::attach_only(&[roprof_bench_ebpf::SYS_EXIT_HOOK])?,
                Variant::FloorSysEnter => Floor::attach_only(&["sys_enter"])?,
                Variant::FloorTwoHooks => Floor::attach_only(&roprof_bench_ebpf::TWO_HOOKS)?,
                _ => Floor::attach()?,
            };
            beside(
                &n,
                move || {
                    drop(floor);
                    Ok(())
                },
                |()| RunExtra::default(),
            )
        }
        Variant::Neighbour | Variant::GuardNeighbour => {
            let tool = if v == Variant::Neighbour {
                attached::neighbour(roprof)?
            } else {
                attached::guard(roprof)?
            };
            beside(&n, || tool.stop(), |_| RunExtra::default())
        }
        Variant::ReadOnlyUntraced | Variant::ReadOnlyGuarded => {
            read_only_bench(&n, (v == Variant::ReadOnlyGuarded).then_some(roprof))
        }
        Variant::BpftraceAll | Variant::BpftraceHooked => {
            let script = if v == Variant::BpftraceAll {
                &scripts.all
            } else {
                &scripts.hooked
            };
            let tool = attached::bpftrace(script)?;
            beside(
                &n,
                || tool.stop(),
                |l| RunExtra {
                    hits: Some(attached::hits(&l)),
                    ..RunExtra::default()
                },
            )
        }
        Variant::HostUntraced | Variant::HostStrace => {
            host_bench(v == Variant::HostStrace, opsuite, sizes, work)
        }
    }
}

fn roprof_args(n: &str) -> Vec<String> {
    [
        "profile",
        "--quiet",
        "--format",
        "json",
        "--duration",
        "120s",
    ]
    .into_iter()
    .map(String::from)
    .chain([
        image_name("writer"),
        "bench".into(),
        n.into(),
        CONTAINER_DIR.into(),
    ])
    .collect()
}

/// opsuite on the host, under `strace -f` when `strace`.
fn host_bench(strace: bool, opsuite: &Path, sizes: &Sizes, work: &Path) -> Result<Sample> {
    let dir = work.join("host-bench");
    let _ = fs::remove_dir_all(&dir);
    let m = sizes.strace_ops.to_string();
    let mut c = if strace {
        let mut c = Command::new("strace");
        c.args(["-f", "-o", "/dev/null"]).arg(opsuite);
        c
    } else {
        Command::new(opsuite)
    };
    c.arg("bench").arg(&m).arg(&dir);
    let out = cmd::stdout(&mut c)?;
    let (ops, ns) = util::bench_line(&out)?;
    Ok(Sample {
        ops,
        ns,
        extra: RunExtra {
            dir: Some(dir),
            ..RunExtra::default()
        },
    })
}

/// The loop in a read-only container (`--tmpfs /tmp/b`), with `roprof
/// guard` guarding it when `guard` names the binary.
fn read_only_bench(n: &str, guard: Option<&Path>) -> Result<Sample> {
    let tool = guard.map(attached::guard).transpose()?;
    let result = docker_bench_with(n, &["--read-only", "--tmpfs", CONTAINER_DIR]);
    if let Some(t) = tool {
        t.stop()?;
    }
    let (out, wall) = result?;
    let (ops, ns) = util::bench_line(&out)?;
    Ok(Sample {
        ops,
        ns,
        extra: RunExtra {
            wall_secs: Some(wall),
            ..RunExtra::default()
        },
    })
}

/// `docker run --rm writer bench N /tmp/b`: its stdout and wall seconds.
fn docker_bench(n: &str) -> Result<(String, f64)> {
    docker_bench_with(n, &[])
}

/// [`docker_bench`] with extra `docker run` options.
fn docker_bench_with(n: &str, options: &[&str]) -> Result<(String, f64)> {
    let start = Instant::now();
    let image = image_name("writer");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(options);
    args.extend([image.as_str(), "bench", n, CONTAINER_DIR]);
    let out = cmd::stdout(&mut cmd::docker(args))?;
    Ok((out, start.elapsed().as_secs_f64()))
}

/// The untraced container loop while something is attached; `stop`
/// detaches it afterwards (however the loop went), and `extra` reads what
/// it left.
fn beside<T>(
    n: &str,
    stop: impl FnOnce() -> Result<T>,
    extra: impl FnOnce(T) -> RunExtra,
) -> Result<Sample> {
    let result = docker_bench(n);
    let left = stop()?;
    let (out, wall) = result?;
    let (ops, ns) = util::bench_line(&out)?;
    let extra = RunExtra {
        wall_secs: Some(wall),
        ..extra(left)
    };
    Ok(Sample { ops, ns, extra })
}

/// The untraced container run while the bpftrace script is attached; the
/// script's counts say whether it saw every open.
fn bpftrace_bench(n: &str) -> Result<Sample> {
    let tool = attached::bpftrace(BPFTRACE_PROGRAM)?;
    beside(
        n,
        || tool.stop(),
        |maps| {
            let (opens, writes) = bpftrace_counts(&maps, CONTAINER_DIR);
            RunExtra {
                opens_counted: Some(opens),
                writes_counted: Some(writes),
                ..RunExtra::default()
            }
        },
    )
}

/// Sum of `@opens[DIR/…]` and the `@writes` count in bpftrace's map dump.
fn bpftrace_counts(lines: &[String], dir: &str) -> (u64, u64) {
    let prefix = format!("@opens[{dir}/");
    let mut opens = 0;
    let mut writes = 0;
    for line in lines {
        let Some((key, value)) = line.rsplit_once(": ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        if key.starts_with(&prefix) {
            opens += value;
        } else if key == "@writes" {
            writes = value;
        }
    }
    (opens, writes)
}

/// The container's opsuite binary, copied out of the image so the host runs
/// the very same static executable.
fn host_opsuite(work: &Path) -> Result<PathBuf> {
    let dest = work.join("opsuite");
    let name = format!("roprof-bench-cp-{}", std::process::id());
    let _cleanup = util::Cleanup {
        containers: vec![name.clone()],
        volumes: vec![],
    };
    cmd::stdout(&mut cmd::docker([
        "create",
        "--name",
        &name,
        &image_name("writer"),
    ]))?;
    cmd::stdout(cmd::docker(["cp", &format!("{name}:/usr/local/bin/opsuite")]).arg(&dest))?;
    Ok(dest)
}

/// One more roprof run with `kernel.bpf_stats_enabled`, sampling the run
/// count and time of roprof's own programs every 100 ms: the cost per
/// invocation, and invocations per benchmark operation. Kept out of the timed
/// comparison because the statistics themselves cost time.
fn diagnose(roprof: &Path, sizes: &Sizes, work: &Path) -> Result<Diagnosis> {
    let run = {
        let _stats = BpfStats::enable()?;
        util::run_roprof(
            roprof,
            &roprof_args(&sizes.ops.to_string()),
            work,
            Sampling::Progs,
        )?
    };
    let report = RoprofReport::from_run(&run)?;
    let (ops, ns) = util::bench_line(&report.logs_tail())?;
    let mut progs = BTreeMap::new();
    let mut ns_per_op = 0.0;
    for (name, &(cnt, time)) in &run.prog_stats {
        if cnt == 0 {
            continue;
        }
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let (avg, per_op) = (time as f64 / cnt as f64, cnt as f64 / ops as f64);
        ns_per_op += avg * per_op;
        progs.insert(
            name.clone(),
            ProgramStats {
                run_cnt: cnt,
                run_time_ns: time,
                avg_ns: avg,
                runs_per_op: per_op,
            },
        );
    }
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let op_ns = ns as f64 / ops as f64;
    Ok(Diagnosis::Measured(schema::BpfStats {
        ops,
        ns_per_op_total: op_ns,
        bpf_ns_per_op: ns_per_op,
        programs: progs,
        note: "last sample of `bpftool prog show` taken <=100 ms before roprof exited; \
               runs_per_op may be slightly low"
            .into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bpftrace_maps_under_the_bench_dir_only() {
        let lines: Vec<String> = [
            "Attaching 3 probes...",
            "",
            "@opens[/etc/ld.so.cache]: 1",
            "@opens[/tmp/b/b0]: 10",
            "@opens[/tmp/b/b31]: 12",
            "@writes: 23",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(bpftrace_counts(&lines, "/tmp/b"), (22, 23));
    }

    #[test]
    fn variants_compare_with_their_own_baseline() {
        assert_eq!(Variant::HostStrace.baseline(), Variant::HostUntraced);
        assert_eq!(Variant::Roprof.baseline(), Variant::Untraced);
        assert_eq!(Variant::Bpftrace.baseline(), Variant::Untraced);
        assert_eq!(Variant::Floor.baseline(), Variant::Untraced);
        assert_eq!(Variant::Neighbour.baseline(), Variant::Untraced);
    }
}
