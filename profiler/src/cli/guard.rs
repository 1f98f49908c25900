//! `roprof guard`: the production mode (see [`roprof::guard`]).

use std::{io::Write as _, path::PathBuf};

use clap::Args;

use super::watch::RuntimeArgs;
use roprof::{
    guard::{self, GuardConfig, Line},
    watch::Filter,
};

/// Arguments of `guard`.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Guard only containers with this label (`KEY=VALUE`, or `KEY` for
    /// any value); repeat to require several.
    #[arg(long = "label", value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,
    /// Guard only containers whose name matches (`*` and `?`); repeat to
    /// allow several. For CRI containers the name is
    /// `<namespace>_<pod>_<container>`.
    #[arg(long = "name", value_name = "GLOB")]
    pub name: Vec<String>,
    /// Write one report per workload (`DIR/<workload>.json`, the format
    /// `roprof render` reads), every few seconds and at exit.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Serve Prometheus counters at `http://ADDR/metrics` (e.g.
    /// `127.0.0.1:9464`): failed writes per workload, path, operation and
    /// errno, records received, records lost, engine errors.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// The runtime and how to reach it.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Kernel ring buffer size in bytes (power of two).
    #[arg(long, value_name = "BYTES")]
    pub ringbuf_bytes: Option<u32>,
}

/// Runs `guard` until SIGINT/SIGTERM (exit 0), one JSON line per finding
/// and count on stdout.
pub async fn run(args: &GuardArgs) -> anyhow::Result<i32> {
    let filter = Filter::parse(&args.label, None)?;
    if args.name.iter().any(String::is_empty) {
        anyhow::bail!("--name: the pattern is empty");
    }
    roprof::doctor::preflight(args.ringbuf_bytes)?;
    let cfg = GuardConfig {
        runtime: args.runtime.kind(),
        filter,
        names: args.name.clone(),
        out_dir: args.output_dir.clone(),
        ringbuf_bytes: args.ringbuf_bytes,
        metrics: args.metrics,
    };
    let mut emit = |line: &Line| {
        let mut out = std::io::stdout().lock();
        // A closed stdout is no reason to stop guarding: the reports and
        // the summary still come.
        if serde_json::to_writer(&mut out, line).is_ok() {
            let _ = writeln!(out);
            let _ = out.flush();
        }
    };
    let s = guard::run(&cfg, &mut emit).await?;
    eprintln!(
        "roprof: guard: {} container(s) guarded, {} finding(s), {} failed write(s); {} engine error(s) and {} vanished container(s) survived",
        s.guarded, s.findings, s.failures, s.engine_errors, s.vanished
    );
    for r in &s.reports {
        eprintln!("roprof: guard: report {}", r.display());
    }
    if s.held_dropped > 0 {
        eprintln!(
            "roprof: guard: {} failed write(s) of containers not yet classified were dropped (the hold was full)",
            s.held_dropped
        );
    }
    if !s.losses.is_clean() {
        eprintln!("roprof: guard: events were lost: {}", s.losses);
    }
    Ok(0)
}
