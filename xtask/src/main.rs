//! `cargo xtask`: what cargo alone cannot do for roprof — installing the eBPF
//! toolchain pieces and the Docker engine, building the fixture images,
//! running the privileged tests, the end-to-end demo, and the static binary
//! and image users install (`dist`).
//!
//! Progress goes to stderr; what a subcommand produces (test output and
//! summary, the demo's roprof output) goes to stdout.

mod bench;
mod cmd;
mod demo;
mod dist;
mod images;
mod podman;
mod reports;
mod rootfs;
mod setup;
mod test;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "roprof developer tasks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what builds and tests need (idempotent): the pinned nightly
    /// with rust-src, bpf-linker, the Docker engine (started if not running),
    /// and the fixture images.
    Setup,
    /// Build the fixture images from tests/fixtures/, skipping those whose
    /// definition hash is unchanged.
    Images {
        /// Rebuild even when the hash label matches (the debootstrap tarball
        /// under tests/fixtures/.cache/ is still reused).
        #[arg(long)]
        force: bool,
        /// Fixtures to build, e.g. `writer`; their bases are built too.
        /// Default: all but `nginx-wrk`, which only the bench runs (built
        /// when named or by `cargo xtask bench`).
        names: Vec<String>,
    },
    /// `cargo build --release -p profiler` (yields target/release/roprof).
    Build,
    /// What users install without a toolchain: a static, stripped musl
    /// target/dist/roprof (eBPF embedded), its shell completions and man
    /// pages under target/dist/, and the FROM-scratch images roprof:latest
    /// and roprof:<version> (built locally, no registry).
    Dist,
    /// Setup, unit tests, release build, then the privileged integration
    /// tests (root and Docker required: they fail, never skip).
    Test {
        /// Extra arguments for the integration test harness, e.g. a test
        /// name filter (`cargo xtask test -- writer`).
        #[arg(last = true)]
        harness_args: Vec<String>,
    },
    /// Install what the build and Docker need (not the test tools or
    /// Podman), build the nginx fixture and roprof, then profile nginx and
    /// run it read-only with the proposed mounts.
    Demo,
    /// Measure roprof against untraced runs, bpftrace, strace and the manual
    /// methods (tracing overhead, event throughput and loss, time to a
    /// working read-only nginx and to the default profile of an idle and a
    /// ticking server, real servers under load); writes reports/bench.md,
    /// bench.svg and bench.json. Takes about twenty minutes; never part of
    /// the tests.
    Bench {
        /// Small sizes and fewer repetitions, to try the harness (the numbers
        /// are not meaningful).
        #[arg(long)]
        quick: bool,
        /// Only re-render bench.md and bench.svg from reports/bench.json
        /// (no measurement).
        #[arg(long, conflicts_with = "quick")]
        render: bool,
    },
    /// Build the real server images (nginx, apache2, redis, memcached,
    /// postgresql) and profile each with `roprof profile --verify` into
    /// reports/<name>/, with a summary in reports/README.md.
    Reports {
        /// Profile again and compare only the plans (mount targets, kinds,
        /// options other than size) with the checked-in report.json files;
        /// exit non-zero if one differs.
        #[arg(long)]
        check: bool,
        /// Images to profile (default: all), e.g. `redis`.
        names: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    add_sbin_to_path();
    let result = match cli.command {
        Command::Setup => setup::setup(),
        Command::Images { force, names } => {
            setup::docker_step().and_then(|()| images::build(&names, force))
        }
        Command::Build => build_roprof().map(|_| ()),
        Command::Dist => dist::dist().map(|_| ()),
        Command::Test { harness_args } => match test::test(&harness_args) {
            // The summary has been printed; it stays the last line of output.
            Ok(all_ok) if !all_ok => return ExitCode::FAILURE,
            other => other.map(|_| ()),
        },
        Command::Demo => demo::demo(),
        Command::Reports { check, names } => match reports::reports(check, &names) {
            // The diff and summary have been printed.
            Ok(all_ok) if !all_ok => return ExitCode::FAILURE,
            other => other.map(|_| ()),
        },
        Command::Bench { quick, render } => bench::bench(quick, render),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Root's tools (dockerd, debootstrap, chroot) live in the sbin directories,
/// which a non-login shell or a CI runner may leave off `PATH`.
fn add_sbin_to_path() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let before = dirs.len();
    for sbin in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        if !dirs.iter().any(|d| d == Path::new(sbin)) {
            dirs.push(sbin.into());
        }
    }
    if dirs.len() != before
        && let Ok(joined) = std::env::join_paths(dirs)
    {
        // SAFETY: called at the start of main, before xtask starts any
        // thread, so nothing can read the environment concurrently.
        unsafe { std::env::set_var("PATH", joined) };
    }
}

/// The workspace root (the parent of this crate's directory).
#[must_use]
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

/// Cargo's target directory, as `cargo metadata` reports it (so
/// `CARGO_TARGET_DIR` and config files are honoured).
pub fn target_dir() -> Result<PathBuf> {
    let json = cmd::stdout(cmd::cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let meta: serde_json::Value =
        serde_json::from_str(&json).context("parsing `cargo metadata` output")?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` printed no target_directory")
}

/// Prints a step's name, runs it, and prints what it did (`ok (already
/// present)`, `installed …`); a failure names the step.
pub fn step(name: &str, f: impl FnOnce() -> Result<String>) -> Result<()> {
    eprintln!("xtask: {name} ...");
    let done = f().with_context(|| format!("{name} failed"))?;
    eprintln!("xtask: {name}: {done}");
    Ok(())
}

/// `cargo build --release -p profiler`; returns the path of the `roprof`
/// binary.
pub fn build_roprof() -> Result<PathBuf> {
    let bin = target_dir()?.join("release").join("roprof");
    step("build roprof (release)", || {
        cmd::run(cmd::cargo().args(["build", "--release", "-p", "profiler"]))?;
        anyhow::ensure!(
            bin.is_file(),
            "the build succeeded but {} is missing",
            bin.display()
        );
        Ok(format!("ok ({})", bin.display()))
    })?;
    Ok(bin)
}
