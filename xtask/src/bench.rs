//! `cargo xtask bench`: measures roprof side by side with the alternatives in
//! one run and writes `reports/bench.md`, `reports/bench.svg` and the raw
//! numbers in `reports/bench.json`.
//!
//! Three benchmarks:
//! - [`overhead`]: a write-open microbenchmark (opsuite `bench`) untraced,
//!   under roprof, under a comparable bpftrace script, and (on the host, as a
//!   separate comparison) under `strace -f`;
//! - [`throughput`]: a million create-writes over 100k distinct paths under
//!   roprof: events per second, losses, kernel map memory, peak RSS;
//! - [`answer`]: time and container runs to a working read-only nginx, with
//!   `roprof profile --verify`, a naive trial-and-error loop, and `docker diff`.
//!
//! The machine is small and shared, so timings are only ever reported as
//! medians of interleaved repetitions (with min–max) and as ratios; nothing
//! here is asserted, and no test depends on it.

mod answer;
mod chart;
mod floor;
mod overhead;
mod report;
mod throughput;
mod util;

use std::{fs, path::PathBuf};

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::{build_roprof, cmd, images, setup, step, workspace_root};

/// How much work each benchmark does.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Write-opens per run of the overhead benchmark (in a container).
    pub ops: u64,
    /// Write-opens per run on the host, untraced and under strace (strace is
    /// about 40 times slower, so fewer).
    pub strace_ops: u64,
    /// Interleaved repetitions of each overhead variant.
    pub reps: usize,
    /// Create-writes of the throughput benchmark.
    pub churn_ops: u64,
    /// Distinct paths they cycle over.
    pub churn_distinct: u64,
    /// Repetitions of each time-to-answer method.
    pub answer_reps: usize,
}

impl Sizes {
    const FULL: Self = Self {
        ops: 500_000,
        strace_ops: 20_000,
        reps: 5,
        churn_ops: 1_000_000,
        churn_distinct: 100_000,
        answer_reps: 3,
    };
    /// For trying the harness itself: minutes less, numbers not meaningful.
    const QUICK: Self = Self {
        ops: 50_000,
        strace_ops: 2_000,
        reps: 2,
        churn_ops: 100_000,
        churn_distinct: 10_000,
        answer_reps: 1,
    };
}

pub fn bench(quick: bool, render_only: bool) -> Result<()> {
    if render_only {
        let path = output_dir().join("bench.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let raw: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return write_outputs(&raw);
    }
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    step(
        "benchmark tools (bpftrace, strace, time, bpftool)",
        ensure_tools,
    )?;
    setup::docker_step()?;
    images::build(&["writer".into(), "nginx".into()], false)?;
    let roprof = build_roprof()?;
    let work = crate::target_dir()?.join("bench");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let mut machine = util::machine(&roprof)?;
    let stats_off = util::BpfStats::disable()?;
    machine["bpf_stats_enabled_at_start"] = json!(stats_off.previous());
    eprintln!(
        "xtask: bench on {}",
        machine["summary"].as_str().unwrap_or("?")
    );
    let started = std::time::Instant::now();

    eprintln!(
        "xtask: [1/3] tracing overhead ({} x {} ops per variant) ...",
        sizes.reps, sizes.ops
    );
    let overhead = overhead::run(&roprof, &sizes, &work)?;
    eprintln!("xtask: [2/3] event throughput and loss ...");
    let throughput = throughput::run(&roprof, &sizes, &work)?;
    eprintln!("xtask: [3/3] time and runs to a working read-only nginx ...");
    let answer = answer::run(&roprof, &sizes)?;

    drop(stats_off);
    machine["load_after"] = json!(util::loadavg());
    let raw: Value = json!({
        "schema": "roprof-bench/1",
        "quick": quick,
        "sizes": {
            "ops": sizes.ops, "strace_ops": sizes.strace_ops, "reps": sizes.reps,
            "churn_ops": sizes.churn_ops, "churn_distinct": sizes.churn_distinct,
            "answer_reps": sizes.answer_reps,
        },
        "machine": machine,
        "bench_wall_secs": started.elapsed().as_secs_f64(),
        "overhead": overhead,
        "throughput": throughput,
        "answer": answer,
    });

    write_outputs(&raw)
}

/// Writes bench.json, bench.svg and bench.md from the raw numbers, and the
/// headline to stdout.
fn write_outputs(raw: &Value) -> Result<()> {
    let out = output_dir();
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let path = out.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("xtask: wrote {}", path.display());
        Ok(())
    };
    write(
        "bench.json",
        &(serde_json::to_string_pretty(raw).context("serialising bench.json")? + "\n"),
    )?;
    write("bench.svg", &chart::svg(raw))?;
    write("bench.md", &report::markdown(raw))?;
    println!("{}", report::headline(raw));
    Ok(())
}

fn output_dir() -> PathBuf {
    workspace_root().join("reports")
}

/// The tools the comparisons run, installed through apt when missing.
fn ensure_tools() -> Result<String> {
    let mut done = Vec::new();
    for (program, package, why) in [
        ("bpftrace", "bpftrace", "the bpftrace comparison"),
        ("strace", "strace", "the strace comparison"),
        ("/usr/bin/time", "time", "measuring roprof's peak RSS"),
        ("bpftool", "bpftool", "reading kernel map memory"),
    ] {
        let what = cmd::ensure_program(program, &[package], why)?;
        done.push(format!("{program}: {what}"));
    }
    Ok(done.join(", "))
}
