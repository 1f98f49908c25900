//! `roprof-bench`: roprof measured side by side with the alternatives in one
//! run, written as `bench.json` (the raw numbers, typed in [`schema`]) and
//! rendered into `bench.md` and `bench.svg`. `cargo xtask bench` prepares
//! the machine (tools, Docker, fixture images, a release roprof) and runs
//! this; it runs as root (it loads BPF programs and drives Docker).
//!
//! Four benchmarks:
//! - [`overhead`]: a write-open microbenchmark (opsuite `bench`) untraced,
//!   under roprof, beside the floor (empty programs on roprof's hooks,
//!   [`floor`]), a neighbour, comparable bpftrace scripts, and (on the host,
//!   as a separate comparison) under `strace -f`;
//! - [`throughput`]: a million create-writes over 100k distinct paths under
//!   roprof: events per second, losses, kernel map memory, peak RSS;
//! - [`answer`]: time and container runs to a working read-only nginx, with
//!   `roprof profile --verify`, a naive trial-and-error loop, and `docker diff`;
//!   beside it ([`servers`]) the default profile of an idle and a ticking
//!   server against running and stopping them;
//! - [`workload`]: real servers (redis, nginx, postgres) under their own
//!   load generators, untraced, profiled, as a neighbour, under `roprof
//!   watch`, and beside the floors.
//!
//! The machine is small and shared, so timings are only ever reported as
//! medians of interleaved repetitions (with min–max) and as ratios; nothing
//! here is asserted, and no test depends on it.

mod answer;
mod attached;
mod chart;
mod cmd;
mod docker;
mod floor;
mod load;
mod measure;
mod overhead;
mod report;
mod roprof_report;
mod schema;
mod servers;
mod template;
mod throughput;
mod util;
mod workload;

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "roprof-bench",
    about = "roprof's benchmarks (run by `cargo xtask bench`)"
)]
struct Cli {
    /// Where bench.json, bench.md and bench.svg are (default: the
    /// workspace's reports/).
    #[arg(long, global = true)]
    out: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure everything, then write bench.json, bench.md and bench.svg.
    Measure {
        /// The roprof binary to measure.
        #[arg(long)]
        roprof: PathBuf,
        /// Scratch directory (reports, copied binaries, answers).
        #[arg(long)]
        work: PathBuf,
        /// Small sizes and fewer repetitions (numbers not meaningful).
        #[arg(long)]
        quick: bool,
    },
    /// Re-render bench.md and bench.svg from bench.json (no measurement).
    Render,
    /// Attach the floor programs, hold them for SECONDS, detach (checks
    /// that the floor object loads on this kernel).
    Floor {
        #[arg(long, default_value_t = 1)]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = cli.out.unwrap_or_else(|| workspace_root().join("reports"));
    let result = match cli.command {
        Command::Measure {
            roprof,
            work,
            quick,
        } => {
            let sizes = if quick { measure::QUICK } else { measure::FULL };
            measure::measure(&roprof, sizes, quick, &work)
                .and_then(|b| write_outputs(&out, &b, true))
        }
        Command::Render => read_bench(&out).and_then(|b| write_outputs(&out, &b, false)),
        Command::Floor { seconds } => floor::Floor::attach().map(|f| {
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            drop(f);
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("roprof-bench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
#[must_use]
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("roprof-bench lives one level below the workspace root")
}

fn read_bench(out: &Path) -> Result<schema::Bench> {
    let path = out.join("bench.json");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Writes bench.json (unless it is where `bench` came from), bench.svg and
/// bench.md, and the headline to stdout.
fn write_outputs(out: &Path, bench: &schema::Bench, json: bool) -> Result<()> {
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let path = out.join(name);
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("roprof-bench: wrote {}", path.display());
        Ok(())
    };
    if json {
        write(
            "bench.json",
            &(serde_json::to_string_pretty(bench).context("serialising bench.json")? + "\n"),
        )?;
    }
    write("bench.svg", &chart::svg(bench))?;
    write("bench.md", &report::markdown(bench))?;
    println!("{}", report::headline(bench));
    Ok(())
}
