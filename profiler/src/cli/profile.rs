//! `roprof profile IMAGE [COMMAND…]`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{ObserveArgs, RunArgs, verify};
use roprof::{
    environment::ContainerEnv,
    model::{RunMode, Settings},
    render::{self, Format},
    runtime::Engine,
    session::{
        Context, RunConfig,
        closed::flow::{self, Loop},
    },
};

/// Arguments of `profile`.
#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "command-line switches, each its own flag"
)]
pub struct ProfileArgs {
    /// Observation window, stop and exercise.
    #[command(flatten)]
    pub observe: ObserveArgs,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Kubernetes names for the k8s and kustomize formats.
    #[command(flatten)]
    pub k8s: super::render::K8sArgs,
    /// Write every format into this directory (with --compose: write the
    /// hardened compose file to this path instead of stdout).
    #[arg(short = 'o', long = "output-dir")]
    pub output_dir: Option<PathBuf>,
    /// With --format helm (and helm-values.yaml under -o): put the values
    /// under this component key (`server`, `controller`; dotted for a
    /// deeper one), as charts with several components expect.
    #[arg(long, value_name = "KEY")]
    pub helm_prefix: Option<roprof::render::helm::HelmPrefix>,
    /// Keep the container after the run.
    #[arg(long)]
    pub keep: bool,
    /// Merge mounts until at most N remain.
    #[arg(long)]
    pub max_mounts: Option<usize>,
    /// Where the only mount point for a write would cover application code,
    /// plan a volatile seeded volume there instead of leaving the write to
    /// fail with EROFS. This makes that code writable, which WEAKENS the
    /// read-only root; every output says so.
    #[arg(long)]
    pub writable_code: bool,
    /// Exit 0 even when events were lost or paths truncated.
    #[arg(long)]
    pub allow_loss: bool,
    /// Re-run read-only with the plan and compare; repair the plan when the
    /// run differs and verify again (exit 4 if it never matches).
    #[arg(long)]
    pub verify: bool,
    /// `observe` (default): one writable run, then plan. `iterate`: the
    /// manual method automated: read-only runs, adding mounts for each EROFS
    /// (its last, clean round is the read-only run of the final plan; it
    /// cannot be combined with --verify or --check-minimal).
    #[arg(long, value_enum, default_value = "observe")]
    pub mode: Mode,
    /// Leave-one-out over the mounts (one run each): drop the redundant ones,
    /// report the optional ones.
    #[arg(long)]
    pub check_minimal: bool,
    /// Container runs the verify/repair or iterate loop may spend (default:
    /// 4 for --verify, 10 for --mode iterate, which stops earlier once a
    /// round adds no mount).
    #[arg(long, value_name = "N")]
    pub max_runs: Option<usize>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Profile with a read-only root (see what fails with EROFS today).
    #[arg(long)]
    pub read_only: bool,
    /// Write the values of -e variables into the outputs (the complete
    /// reproduction line); files under -o are then created 0600. Env files
    /// are still referred to by path.
    #[arg(long)]
    pub reveal_env: bool,
    /// Kernel ring buffer size in bytes (power of two; default 4 MiB).
    #[arg(long, value_name = "BYTES")]
    #[arg(value_parser = super::parse_ringbuf_bytes)]
    pub ringbuf_bytes: Option<u32>,
    /// docker-run-like options.
    #[command(flatten)]
    pub run: RunArgs,
    /// `--compose FILE` and `--service NAME`.
    #[command(flatten)]
    pub compose: super::compose::ComposeArgs,
    /// Profile a container of this Kubernetes manifest's pod template (a
    /// pod, deployment, stateful set, daemon set, replica set, job or cron
    /// job), run with the kubelet's semantics; prints the manifest patched (see
    /// `roprof patch`) instead of --format (-o still writes every format).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["image", "command", "compose"],
        conflicts_with_all = super::GIVEN_BY_THE_FILE
    )]
    pub manifest: Option<PathBuf>,
    /// With --manifest: the container to profile (default: the first).
    #[arg(long, value_name = "NAME", requires = "manifest")]
    pub container: Option<String>,
    /// Image to profile.
    #[arg(required_unless_present_any = ["compose", "manifest"])]
    pub image: Option<String>,
    /// Command and arguments (replace the image's CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// How the first answer is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One writable run under tracing.
    Observe,
    /// Read-only runs, adding mounts from each round's EROFS.
    Iterate,
}

/// Runs `profile`.
pub async fn run(args: &ProfileArgs) -> anyhow::Result<i32> {
    if let Some(file) = &args.compose.compose {
        return Box::pin(super::compose::run(args, file)).await;
    }
    // Refused before anything runs (with --compose, -o names a file).
    if let Some(dir) = &args.output_dir {
        super::check_output_dir(dir).unwrap_or_else(|e| e.exit());
    }
    if let Some(path) = &args.manifest {
        return Box::pin(super::manifest::run(args, path)).await;
    }
    if args.container.is_some() {
        use clap::CommandFactory as _;
        super::Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--container selects a container of --manifest FILE; profile an image without it",
            )
            .exit();
    }
    let how = closed_loop(args);
    if let Some(hint) = super::misplaced_option_hint(&args.command) {
        eprintln!("roprof: warning: {hint}");
    }
    let (run_opts, env) = args.run.request().resolve(&args.command, args.reveal_env)?;
    super::warn_unset(&env);
    // The doctor's host checks, before anything is created.
    roprof::doctor::preflight(args.ringbuf_bytes)?;
    let engine = Engine::connect().await?;
    let cfg = RunConfig {
        keep: args.keep,
        quiet: args.quiet,
        read_only: args.read_only || args.mode == Mode::Iterate,
        ringbuf_bytes: args.ringbuf_bytes,
        ..args.observe.observe().config(
            args.image.clone().unwrap_or_default(),
            run_opts,
            env,
            RunMode::Profile,
        )
    };
    // The eBPF programs load in the background from here on.
    let mut ctx = Context::new(engine, args.ringbuf_bytes);
    let settings = Settings {
        max_mounts: args.max_mounts,
        writable_code: args.writable_code,
        ..Settings::default()
    };
    let max_runs = roprof::request::max_runs(how, args.max_runs);
    let res = flow::profile(&mut ctx, &cfg, settings, how, max_runs).await;
    let code = match res {
        Ok(p) => {
            if let Some(ok) = p.verdict {
                verify::print_verdict(&p.report, ok);
            }
            finish(args, &cfg.env, p.report, p.verdict)
        }
        Err(e) => Err(e.into()),
    };
    // Removing the container and unloading the programs wait on the engine
    // and the kernel: after the answer is out.
    ctx.teardown().await;
    code
}

/// The closed loop the flags ask for; `--mode iterate` with `--verify` or
/// `--check-minimal` is refused as a usage error (exit 2).
fn closed_loop(args: &ProfileArgs) -> Loop {
    use clap::CommandFactory as _;
    match args.mode {
        Mode::Iterate if args.verify || args.check_minimal => super::Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--mode iterate cannot be combined with --verify or --check-minimal: its last, \
                 clean round already runs the final plan read-only, and it has no writable run \
                 to compare with; profile with --mode observe (the default) to verify or \
                 minimise",
            )
            .exit(),
        Mode::Iterate => Loop::Iterate,
        Mode::Observe if args.check_minimal => Loop::VerifyMinimal,
        Mode::Observe if args.verify => Loop::Verify,
        Mode::Observe => Loop::None,
    }
}

/// Writes the outputs (env values withheld unless `--reveal-env`) and
/// picks the exit code.
fn finish(
    args: &ProfileArgs,
    env: &ContainerEnv,
    mut report: roprof::model::Report,
    verdict: Option<bool>,
) -> anyhow::Result<i32> {
    report.stats.peak_rss_kib = roprof::host::peak_rss_kib().unwrap_or(0);
    super::withhold_env(&mut report, env, args.reveal_env);
    let report = &report;
    let options = args.k8s.options(report, args.helm_prefix.clone());
    for w in render::unrepresentable(report) {
        eprintln!("roprof: warning: {w}");
    }
    for c in &report.run.caveats {
        eprintln!("roprof: WARNING: {c}");
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = render::write_all_with(report, dir, &options)?;
        eprintln!("roprof: wrote {} files to {}", files.len(), dir.display());
    }
    super::render::print_report(report, args.format, &options)?;
    Ok(super::exit_code(
        "profile",
        report,
        verdict,
        args.allow_loss,
    ))
}
