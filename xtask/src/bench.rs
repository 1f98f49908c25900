//! `cargo xtask bench`: prepares the machine (the tools the comparisons run,
//! Docker, the fixture images, a release roprof and roprof-bench) and runs
//! `roprof-bench` (the `bench/` crate), which measures and writes
//! `reports/bench.md`, `reports/bench.svg` and `reports/bench.json`.
//!
//! The bench is its own crate, run as a binary rather than linked in: it
//! depends on roprof (the hooked-syscall list) and embeds its own eBPF
//! object, so building it needs the eBPF toolchain, which xtask itself must
//! not (`cargo xtask setup` is what installs it).

use std::{path::PathBuf, process::Command};

use anyhow::Result;

use crate::{cmd, images, setup, step, workspace_root};

/// The fixtures the benchmarks run: the loops' and §3's nginx, §3's idle
/// and ticking servers, and §4's servers with their load generators.
const BENCH_IMAGES: [&str; 6] = [
    "writer",
    "nginx",
    "memcached",
    "redis",
    "nginx-wrk",
    "postgresql",
];

pub fn bench(quick: bool, render_only: bool) -> Result<()> {
    let out = workspace_root().join("reports");
    if render_only {
        let bench = build(Build::RenderOnly)?;
        return cmd::run(Command::new(bench).arg("--out").arg(&out).arg("render"));
    }
    step(
        "benchmark tools (bpftrace, strace, time, bpftool)",
        ensure_tools,
    )?;
    setup::docker_step()?;
    images::build(&BENCH_IMAGES.map(String::from), false)?;
    let bench = build(Build::Measure)?;
    let roprof = crate::target_dir()?.join("release").join("roprof");
    let work = crate::target_dir()?.join("bench");
    let mut c = Command::new(bench);
    c.arg("--out")
        .arg(&out)
        .arg("measure")
        .arg("--roprof")
        .arg(&roprof)
        .arg("--work")
        .arg(&work);
    if quick {
        c.arg("--quick");
    }
    cmd::run(&mut c)
}

/// What roprof-bench is built for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Build {
    /// Measuring: release roprof-bench and roprof, in one cargo build so
    /// that they share the roprof library.
    Measure,
    /// Rendering only: a debug roprof-bench (the artifacts `cargo test`
    /// leaves serve it).
    RenderOnly,
}

/// Builds roprof-bench (and roprof, to measure); the path of roprof-bench.
fn build(what: Build) -> Result<PathBuf> {
    let release = what == Build::Measure;
    let target = crate::target_dir()?.join(if release { "release" } else { "debug" });
    let mut want = vec![target.join("roprof-bench")];
    let mut c = cmd::cargo();
    c.args(["build", "-p", "roprof-bench"]);
    if release {
        c.args(["--release", "-p", "profiler"]);
        want.push(target.join("roprof"));
    }
    let name = if release {
        "build roprof and roprof-bench (release)"
    } else {
        "build roprof-bench"
    };
    step(name, || {
        cmd::run(&mut c)?;
        for b in &want {
            anyhow::ensure!(
                b.is_file(),
                "the build succeeded but {} is missing",
                b.display()
            );
        }
        Ok(format!("ok ({})", want[0].display()))
    })?;
    Ok(want.swap_remove(0))
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
