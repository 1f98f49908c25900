//! `roprof profile IMAGE [COMMAND…]`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{EXIT_INTERRUPTED, EXIT_LOSS, EXIT_VERIFY_FAILED, ObserveArgs, RunArgs, verify};
use crate::{
    analysis::Settings,
    environment::ContainerEnv,
    render::{self, Format},
    runtime::Engine,
    session::{self, RunConfig, SessionError, closed, interrupt},
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
    /// Write every format into this directory.
    #[arg(short = 'o', long = "output-dir")]
    pub output_dir: Option<PathBuf>,
    /// Keep the container after the run.
    #[arg(long)]
    pub keep: bool,
    /// Merge mounts until at most N remain.
    #[arg(long)]
    pub max_mounts: Option<usize>,
    /// Exit 0 even when events were lost or paths truncated.
    #[arg(long)]
    pub allow_loss: bool,
    /// Re-run read-only with the plan and compare; repair the plan when the
    /// run differs and verify again (exit 4 if it never matches).
    #[arg(long)]
    pub verify: bool,
    /// `observe` (default): one writable run, then plan. `iterate`: the
    /// manual method automated: read-only runs, adding mounts for each EROFS.
    #[arg(long, value_enum, default_value = "observe")]
    pub mode: Mode,
    /// Leave-one-out over the mounts (one run each): drop the redundant ones,
    /// report the optional ones.
    #[arg(long)]
    pub check_minimal: bool,
    /// Container runs the verify/repair or iterate loop may spend.
    #[arg(long, default_value_t = 4)]
    pub max_runs: usize,
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
    pub ringbuf_bytes: Option<u32>,
    /// docker-run-like options.
    #[command(flatten)]
    pub run: RunArgs,
    /// Image to profile.
    pub image: String,
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
#[expect(
    clippy::too_many_lines,
    reason = "one linear procedure: run, plan, verify, print"
)]
pub async fn run(args: &ProfileArgs) -> anyhow::Result<i32> {
    let (run_opts, env) = args.run.to_options(&args.command, args.reveal_env)?;
    super::warn_unset(&env);
    // The doctor's host checks, before anything is created.
    crate::doctor::preflight(args.ringbuf_bytes)?;
    let engine = Engine::connect().await?;
    let cfg = RunConfig {
        image: args.image.clone(),
        run: run_opts.clone(),
        env,
        duration: args.observe.duration,
        stop_timeout: args.observe.stop_timeout,
        exercise: args.observe.exercise.clone(),
        probe: args.observe.probe.clone(),
        keep: args.keep,
        quiet: args.quiet,
        read_only: args.read_only || args.mode == Mode::Iterate,
        extra_tmpfs: vec![],
        extra_binds: vec![],
        mode: "profile",
        ringbuf_bytes: args.ringbuf_bytes,
    };
    let out = match session::run(&engine, &cfg).await {
        Ok(out) => out,
        Err(SessionError::Interrupted { .. }) => {
            // Interrupted before anything was observed: say so in a report
            // that plans nothing, rather than printing nothing at all.
            let report = session::unobserved_report(&cfg, &interrupt::describe());
            return finish(args, &cfg.env, report, EXIT_INTERRUPTED);
        }
        Err(e) => return Err(e.into()),
    };
    interrupt::enter("analyse").await;
    let settings = Settings {
        max_mounts: args.max_mounts,
        ..Settings::default()
    };
    let listing = out.listing.clone();
    let cut_short = out.meta.incomplete;
    let mut code = 0;
    let mut report;
    if cut_short {
        // No verification of a plan made from a partial run.
        report = session::report(out, run_opts, settings.clone());
    } else if args.mode == Mode::Iterate {
        let first_copy = session::RunOutput {
            image: out.image.clone(),
            listing: out.listing.clone(),
            observations: out.observations.clone(),
            meta: out.meta.clone(),
            losses: out.losses.clone(),
            stats: out.stats.clone(),
        };
        report = session::report(out, run_opts, settings.clone());
        report.run.mode = "iterate".into();
        interrupt::enter("verify").await;
        let res = closed::iterate(
            &engine,
            &mut report,
            &first_copy,
            &listing,
            &cfg,
            &settings,
            args.max_runs,
        )
        .await;
        match closed_outcome(&mut report, res, false)? {
            Some(true) => verify::print_rounds(&report, true),
            Some(false) => {
                verify::print_rounds(&report, false);
                code = EXIT_VERIFY_FAILED;
            }
            None => {}
        }
    } else {
        report = session::report(out, run_opts, settings.clone());
        if args.verify || args.check_minimal {
            interrupt::enter("verify").await;
            let res = closed::verify_and_repair(
                &engine,
                &mut report,
                &listing,
                &cfg,
                settings.clone(),
                args.max_runs,
            )
            .await;
            let mut ok = closed_outcome(&mut report, res, false)?;
            if ok == Some(true) && args.check_minimal {
                let res =
                    closed::check_minimal(&engine, &mut report, &listing, &cfg, settings.clone())
                        .await
                        .map(|()| true);
                ok = closed_outcome(&mut report, res, true)?;
            }
            if let Some(ok) = ok {
                verify::print_rounds(&report, ok);
                report.run.notes.push(if ok {
                    format!(
                        "verified after {} read-only run(s)",
                        report
                            .rounds
                            .iter()
                            .filter(|r| r.kind != "leave-one-out")
                            .count()
                    )
                } else {
                    "verification failed".into()
                });
                if !ok {
                    code = EXIT_VERIFY_FAILED;
                }
            }
        }
    }
    if interrupt::interrupted() && !report.run.incomplete {
        report.run.incomplete = true;
        report.run.incomplete_reason = Some(interrupt::describe());
    }
    finish(args, &cfg.env, report, code)
}

/// Folds the result of a closed-loop step into the report: `Some(passed)`,
/// or `None` when a signal or the loss of the engine cut it short (the
/// report is then marked incomplete; the plan is unverified unless
/// `verified` says the step was the leave-one-out check after a pass).
fn closed_outcome(
    report: &mut crate::model::Report,
    res: Result<bool, SessionError>,
    verified: bool,
) -> anyhow::Result<Option<bool>> {
    let why = match res {
        Ok(ok) => return Ok(Some(ok)),
        Err(e) => closed::cut_short_reason(&e).ok_or(e)?,
    };
    report.run.incomplete = true;
    let runs = report
        .rounds
        .iter()
        .filter(|r| r.kind != "leave-one-out")
        .count();
    report.run.notes.push(if verified {
        format!("{why}: the plan was verified after {runs} read-only run(s); the leave-one-out check did not finish")
    } else {
        format!("{why}: the plan is UNVERIFIED ({runs} read-only run(s) finished)")
    });
    report.run.incomplete_reason = Some(why);
    Ok(None)
}

/// Writes the outputs (env values withheld unless `--reveal-env`) and
/// picks the exit code.
fn finish(
    args: &ProfileArgs,
    env: &ContainerEnv,
    mut report: crate::model::Report,
    code: i32,
) -> anyhow::Result<i32> {
    let mut code = code;
    report.stats.peak_rss_kib = super::render::peak_rss_kib().unwrap_or(0);
    super::withhold_env(&mut report, env, args.reveal_env);
    let report = &report;
    for w in render::unrepresentable(report) {
        eprintln!("roprof: warning: {w}");
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = render::write_all(report, dir)?;
        eprintln!("roprof: wrote {} files to {}", files.len(), dir.display());
    }
    super::render::print_report(report, args.format)?;
    if report.run.incomplete {
        code = super::incomplete_exit("profile", report);
    }
    if !report.losses.is_clean() {
        eprintln!("roprof: the profile is INCOMPLETE: {:?}", report.losses);
        if !args.allow_loss && code == 0 {
            code = EXIT_LOSS;
        }
    }
    Ok(code)
}
