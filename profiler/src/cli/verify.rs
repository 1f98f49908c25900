//! `roprof verify --report report.json [IMAGE]`: re-run read-only with the
//! plan's mounts, under tracing, compare with the observed run, and with
//! `--repair` fix the plan until it verifies.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{DEFAULT_MAX_RUNS, ObserveArgs, RunArgs, render::ensure_nl};
use roprof::{
    environment::{self, ContainerEnv},
    model::{Report, Verification},
    render::{self, Format},
    runtime::Engine,
    session::{Context, RunConfig, closed},
};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Observation window, stop and exercise.
    #[command(flatten)]
    pub observe: ObserveArgs,
    /// The report whose plan to verify.
    #[arg(long)]
    pub report: PathBuf,
    /// Repair the plan when the run differs (seed, move up, cover new paths)
    /// and verify again, up to --max-runs container runs.
    #[arg(long)]
    pub repair: bool,
    /// Container runs the repair loop may spend.
    #[arg(long, default_value_t = DEFAULT_MAX_RUNS)]
    pub max_runs: usize,
    /// Merge mounts until at most N remain when repairing (default: the
    /// budget the report's plan was made with).
    #[arg(long)]
    pub max_mounts: Option<usize>,
    /// Output format of the (possibly repaired) report on stdout.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep -e values in the --format output (a schema 1 or --reveal-env
    /// report holds them); without it, names only.
    #[arg(long)]
    pub reveal_env: bool,
    /// Image to run (default: the report's).
    pub image: Option<String>,
}

/// Prints the verdict on stderr (each round was printed as it ended):
/// a result, not progress, so `--quiet` keeps it.
pub fn print_verdict(report: &Report, passed: bool) {
    if passed && report.run.mode == roprof::model::RunMode::Iterate {
        // Iterate has no writable run to compare with: clean is all it knows.
        eprintln!(
            "roprof: clean: the read-only run of the final plan hit no EROFS (iterate compares \
             no writable run; `roprof verify` does)"
        );
    } else if let Some(v @ Verification::VerifiedWithExceptions) = report.run.verification {
        eprintln!(
            "roprof: {}",
            roprof::render::escape_bytes(v.describe(&report.plan).as_bytes())
        );
        for u in &report.plan.unmounted {
            eprintln!(
                "    - {}: {}",
                roprof::render::escape_bytes(u.dir.as_bytes()),
                roprof::render::escape_bytes(u.reason.as_bytes())
            );
        }
    } else if passed {
        eprintln!(
            "roprof: verified: the image behaves the same with --read-only and the proposed mounts"
        );
    } else {
        eprintln!("roprof: verification FAILED (differences above)");
    }
}

/// Runs `verify`.
pub async fn run(args: &VerifyArgs, run_args: &RunArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("reading report {}", args.report.display()))?;
    let mut report = render::json::load_report(&text)
        .with_context(|| format!("loading report {}", args.report.display()))?;
    // The doctor's host checks, before anything is created.
    roprof::doctor::preflight(None)?;
    let mut run = report.run_options.clone();
    let (extra, _) = run_args.request().resolve(&[], true)?;
    run.publish.extend(extra.publish);
    run.env.extend(extra.env);
    run.env_files.extend(extra.env_files);
    // The report's values when it has them, else roprof's environment (the
    // report says to export the variables), and the env files read again.
    let env = ContainerEnv::resolve(&run.env, &run.env_files, environment::from_process)
        .with_context(|| format!("the environment of report {}", args.report.display()))?;
    super::warn_unset(&env);
    run.withhold_env_values();
    let engine = Engine::connect().await?;
    let image = args
        .image
        .clone()
        .unwrap_or_else(|| report.image.image.clone());
    // The probe and exercise the report was made with, unless given
    // again: the read-only run is compared with a run that had them.
    let mut observe = args.observe.observe();
    if let Some(saved) = &report.observe {
        if observe.probe.is_none() {
            observe.probe.clone_from(&saved.probe);
        }
        if observe.exercise.is_none() {
            observe.exercise.clone_from(&saved.exercise);
        }
    }
    let cfg = RunConfig {
        quiet: args.quiet,
        read_only: true,
        ..observe.config(image, run, env, roprof::model::RunMode::Verify)
    };
    let mut ctx = Context::new(engine, None);
    // Repairs continue from the settings the plan was made with.
    if args.max_mounts.is_some() {
        report.settings.max_mounts = args.max_mounts;
    }
    report.rounds.clear();
    let runs = if args.repair { args.max_runs } else { 1 };
    let res = closed::verify_and_repair(&mut ctx, &mut report, &cfg, runs).await;
    let code = conclude(args, &cfg.env, &mut report, res);
    ctx.teardown().await;
    code
}

/// Prints the verdict and the report; the exit code.
fn conclude(
    args: &VerifyArgs,
    env: &ContainerEnv,
    report: &mut Report,
    res: Result<bool, roprof::session::SessionError>,
) -> anyhow::Result<i32> {
    let cut_short = match res {
        Ok(passed) if !roprof::session::interrupt::interrupted() => Ok(passed),
        Ok(_) => Err(roprof::session::interrupt::describe()),
        Err(e) => Err(closed::cut_short_reason(&e).ok_or(e)?),
    };
    let passed = match cut_short {
        Ok(passed) => Some(passed),
        Err(why) => {
            report.run.incomplete = true;
            report.run.incomplete_reason = Some(why);
            None
        }
    };
    if let Some(passed) = passed {
        print_verdict(report, passed);
    }
    if let Some(f) = args.format {
        super::withhold_env(report, env, args.reveal_env);
        print!("{}", ensure_nl(render::render(report, f)?));
    }
    Ok(super::exit_code("verification", report, passed, true))
}
