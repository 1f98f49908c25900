//! `roprof attach CONTAINER`: profile a running container from now on.

use std::time::Duration;

use clap::Args;

use super::parse_duration;
use roprof::{
    environment::ContainerEnv,
    model::{RunMode, RunOptions, Settings},
    render::Format,
    request::Observe,
    runtime::Engine,
    session::{self, RunConfig},
};

/// Arguments of `attach`.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Observation window; ends earlier when the container exits.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Shell command run on the host during the window.
    #[arg(long)]
    pub exercise: Option<String>,
    /// Exit 0 even when events were lost.
    #[arg(long)]
    pub allow_loss: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Container name or id.
    pub container: String,
}

/// Runs `attach`.
pub async fn run(args: &AttachArgs) -> anyhow::Result<i32> {
    // The doctor's host checks, before anything is created.
    roprof::doctor::preflight(None)?;
    let engine = Engine::connect().await?;
    // The container's own volumes and tmpfs mounts: the plan must not
    // propose a mount over them (they are writable already).
    let id = engine.resolve(&args.container).await?;
    let (volumes, tmpfs) = engine.mounts_of(&id).await?;
    let run = RunOptions {
        volumes,
        tmpfs,
        ..RunOptions::default()
    };
    let observe = Observe {
        duration: args.duration,
        // Attached mid-run: the application is past its start, so there is
        // nothing to settle; the whole window is observed.
        window: session::Window::Fixed,
        stop_timeout: 10,
        exercise: args.exercise.clone(),
        probe: None,
    };
    let cfg = RunConfig {
        keep: true,
        quiet: args.quiet,
        ..observe.config(
            String::new(),
            run.clone(),
            ContainerEnv::default(),
            RunMode::Attach,
        )
    };
    let out = session::attach(&engine, &cfg, &args.container).await?;
    let mut report = session::report(out, run, Settings::default());
    report.stats.peak_rss_kib = roprof::host::peak_rss_kib().unwrap_or(0);
    eprintln!("roprof: attached mid-run: writes before the attach were not seen");
    super::render::print_report(
        &report,
        args.format,
        &roprof::render::RenderOptions::default(),
    )?;
    Ok(super::exit_code("profile", &report, None, args.allow_loss))
}
