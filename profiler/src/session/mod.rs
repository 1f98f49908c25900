//! One profiling run: the runtime and the tracer meet here and yield
//! observations. `profile` and `verify` go through [`run`] (with one
//! [`Context`] per process), `attach` through [`attach`]; the closed loop
//! that verifies, repairs and minimises a plan is in [`closed`].

mod attach;
pub mod closed;
mod context;
mod coverage;
mod error;
pub mod interrupt;
mod observe;
mod phases;
pub mod probe;
mod progress;
mod settle;
pub mod test_hook;
pub mod timeline;
mod wakeup;

use std::time::{Duration, Instant};

pub use self::{attach::attach, context::Context, error::SessionError, phases::Stopwatch};
use self::{
    observe::Observation,
    progress::{bar, note},
};
use crate::{
    analysis::{self, AnalysisInput},
    environment::ContainerEnv,
    model::{
        ImageConfig, ImageListing, Losses, ObserveOptions, PathObservation, Phase, Report, RunMeta,
        RunOptions, SCHEMA_VERSION, TraceStats,
    },
    model::{RunMode, Settings},
    runtime::{ContainerSpec, Engine},
    trace::Scope,
};

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Image.
    pub image: String,
    /// User's run options, as the report records them (env values
    /// withheld unless `--reveal-env`).
    pub run: RunOptions,
    /// The container's environment with its values: passed to the engine,
    /// never written (see [`crate::environment`]).
    pub env: ContainerEnv,
    /// Longest observation window.
    pub duration: Duration,
    /// How the window ends before `duration`.
    pub window: Window,
    /// Graceful stop timeout (seconds).
    pub stop_timeout: i32,
    /// Shell command run on the host during the window.
    pub exercise: Option<String>,
    /// URL polled until it answers.
    pub probe: Option<String>,
    /// Keep the container.
    pub keep: bool,
    /// No progress output.
    pub quiet: bool,
    /// Read-only root (verify).
    pub read_only: bool,
    /// Mounts from a plan (verify).
    pub extra_tmpfs: Vec<(String, String)>,
    /// Volume binds from a plan (verify).
    pub extra_binds: Vec<String>,
    /// Mode name for the report.
    pub mode: RunMode,
    /// Ring buffer size override.
    pub ringbuf_bytes: Option<u32>,
    /// A compose service's aliases, healthcheck and entrypoint.
    pub extras: crate::runtime::ServiceExtras,
    /// What the progress lines of this run are prefixed with (`round 2`
    /// in a closed loop).
    pub label: Option<String>,
}

/// How an observation window ends (besides the container exiting, a
/// signal, or the loss of the engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// When the application settled: no new write-type operation and an
    /// idle container for this quiet period, after the probe answered and
    /// the exercise finished; `duration` at the latest.
    Settle(Duration),
    /// Always the whole `duration` (late writers, periodic jobs).
    Fixed,
}

/// What one run yields.
pub struct RunOutput {
    /// Image config.
    pub image: ImageConfig,
    /// Initial filesystem.
    pub listing: ImageListing,
    /// Observations.
    pub observations: Vec<PathObservation>,
    /// Metadata.
    pub meta: RunMeta,
    /// Losses.
    pub losses: Losses,
    /// Activity.
    pub stats: TraceStats,
}

/// Runs the image under tracing once. A signal during observation ends the
/// window early and yields a report marked incomplete; in other phases the
/// run is abandoned. A run that failed or was cut short removes its
/// container at once; a complete one leaves it to the caller
/// ([`Context::remove_later`], or [`Context::teardown`] after the answer),
/// unless `--keep`.
pub async fn run(ctx: &mut Context, cfg: &RunConfig) -> Result<RunOutput, SessionError> {
    interrupt::check()?;
    let mut res = run_inner(ctx, cfg).await;
    let cut_short = res.as_ref().map_or(true, |o| o.meta.incomplete);
    if cut_short || interrupt::interrupted() {
        // Waits for a vanished engine (not after a signal) and names what
        // it could not remove.
        let mut left = Vec::new();
        for id in interrupt::registered() {
            if let Err(e) = remove_or_wait(&ctx.engine, &id).await {
                left.push(e);
            }
        }
        if let Ok(out) = res.as_mut() {
            out.meta.notes.extend(left);
        }
    } else if let Ok(out) = &res
        && cfg.keep
    {
        interrupt::forget(&out.meta.container_id);
    }
    res
}

async fn run_inner(ctx: &mut Context, cfg: &RunConfig) -> Result<RunOutput, SessionError> {
    let pb = bar(cfg.quiet, cfg.label.as_deref());
    let engine = ctx.engine.clone();
    let mut sw = Stopwatch::default();
    sw.enter(Phase::Inspect).await;
    interrupt::check()?;
    note(&pb, cfg.quiet, &format!("inspecting image {}", cfg.image));
    let image = interrupt::abortable(async { Ok(engine.image_config(&cfg.image).await?) }).await?;
    let spec = ContainerSpec {
        image: cfg.image.clone(),
        run: cfg.run.clone(),
        env: cfg.env.clone(),
        read_only: cfg.read_only,
        extra_tmpfs: cfg.extra_tmpfs.clone(),
        extra_binds: cfg.extra_binds.clone(),
        name: None,
        extras: cfg.extras.clone(),
    };
    sw.enter(Phase::Create).await;
    interrupt::check()?;
    note(&pb, cfg.quiet, "creating container");
    let id = interrupt::abortable(async { Ok(engine.create(&spec).await?) }).await?;
    interrupt::register(&id);
    sw.enter(Phase::Listing).await;
    interrupt::check()?;
    note(&pb, cfg.quiet, "reading the image filesystem");
    let listing = ctx.listing(&image.id, &id).await?;
    sw.enter(Phase::Attach).await;
    interrupt::check()?;
    note(&pb, cfg.quiet, "attaching eBPF programs");
    let tracer = ctx.tracer().await?;
    tracer.reset_for(&Scope {
        container_ids: vec![id.clone()],
        ..Scope::default()
    })?;
    let run = Observation::begin(tracer, &listing)?;
    sw.enter(Phase::Start).await;
    if let Err(e) = interrupt::check() {
        run.cancel().await;
        return Err(e);
    }
    if let Err(e) = engine.start(&id).await {
        run.cancel().await;
        return Err(e.into());
    }
    let started = Instant::now();
    let mut out = run
        .observe(
            &engine, cfg, &id, image, listing, &pb, started, true, &mut sw,
        )
        .await?;
    pb.finish_and_clear();
    out.stats.phases = sw.finish();
    out.stats.bpf_load_secs = ctx.bpf_load_secs();
    Ok(out)
}

/// Longest an engine call of the observation loop may take before the
/// engine counts as lost.
pub(crate) const ENGINE_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long roprof waits for a vanished engine to come back so that it can
/// remove its container.
pub const ENGINE_WAIT: Duration = Duration::from_mins(1);

/// Removes the container; when the engine does not answer (it stopped or is
/// restarting), waits up to [`ENGINE_WAIT`] for it to come back. A signal
/// ends the wait. Returns what to tell the user when the container stays.
async fn remove_or_wait(engine: &Engine, id: &str) -> Result<(), String> {
    // Each attempt is bounded: a wedged engine must not hold roprof longer
    // than ENGINE_WAIT (bollard's own timeout is 120 s).
    let attempt = || async {
        match tokio::time::timeout(Duration::from_secs(10), engine.remove(id)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("no answer within 10 s".to_owned()),
        }
    };
    let first = match attempt().await {
        Ok(()) => {
            interrupt::forget(id);
            return Ok(());
        }
        Err(e) => e,
    };
    let short = id.get(..12).unwrap_or(id);
    eprintln!(
        "roprof: cannot remove container {short} ({first}); waiting up to {}s for the Docker engine (Ctrl-C to give up)",
        ENGINE_WAIT.as_secs()
    );
    let deadline = Instant::now() + ENGINE_WAIT;
    while Instant::now() < deadline && !interrupt::interrupted() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if attempt().await.is_ok() {
            interrupt::forget(id);
            eprintln!("roprof: the engine is back; container {short} removed");
            return Ok(());
        }
    }
    interrupt::forget(id);
    let msg = format!(
        "container {id} could NOT be removed (the Docker engine did not answer: {first}); remove it with `docker rm -f -v {id}`"
    );
    eprintln!("roprof: {msg}");
    Err(msg)
}

/// The filesystem a container of `image` (a reference or an id) starts
/// with, as a run lists it: exported from a container created for it and
/// never started, then removed. What `roprof merge` plans with.
pub async fn image_listing(engine: &Engine, image: &str) -> Result<ImageListing, SessionError> {
    interrupt::check()?;
    let config = interrupt::abortable(async { Ok(engine.image_config(image).await?) }).await?;
    let spec = ContainerSpec {
        image: image.to_owned(),
        run: RunOptions {
            // Created only, never started: an image with neither
            // ENTRYPOINT nor CMD needs some command to be created.
            command: if config.entrypoint.is_empty() && config.cmd.is_empty() {
                vec!["true".to_owned()]
            } else {
                Vec::new()
            },
            ..RunOptions::default()
        },
        ..ContainerSpec::default()
    };
    let id = interrupt::abortable(async { Ok(engine.create(&spec).await?) }).await?;
    interrupt::register(&id);
    let listing = interrupt::abortable(async { Ok(engine.listing(&id).await?) }).await;
    // remove_or_wait says on stderr what it could not remove.
    let _ = remove_or_wait(engine, &id).await;
    listing
}

/// The report of a run interrupted before anything was observed: it plans
/// nothing and says why.
#[must_use]
pub fn unobserved_report(cfg: &RunConfig, why: &str) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        roprof_version: env!("CARGO_PKG_VERSION").into(),
        image: ImageConfig {
            image: cfg.image.clone(),
            ..ImageConfig::default()
        },
        run_options: cfg.run.clone(),
        run: RunMeta {
            mode: cfg.mode,
            read_only: cfg.read_only,
            incomplete: true,
            incomplete_reason: Some(why.to_owned()),
            notes: vec![
                "nothing was observed: the container never ran under tracing, so the plan is empty and must not be used".into(),
            ],
            ..RunMeta::default()
        },
        ..Report::default()
    }
}

/// Builds the report (plan included) from a run.
#[must_use]
pub fn report(out: RunOutput, run: RunOptions, settings: Settings) -> Report {
    let plan = analysis::plan(&AnalysisInput {
        observations: &out.observations,
        listing: &out.listing,
        config: &out.image,
        run_options: &run,
        settings: settings.clone(),
    });
    let seeds = analysis::check::seed_digests(&plan, &out.listing);
    Report {
        schema_version: SCHEMA_VERSION,
        roprof_version: env!("CARGO_PKG_VERSION").into(),
        image: out.image,
        run_options: run,
        run: out.meta,
        losses: out.losses,
        stats: out.stats,
        paths: out.observations,
        plan,
        rounds: Vec::new(),
        settings,
        sources: Vec::new(),
        observe: None,
        seeds,
    }
}

impl RunConfig {
    /// How this run is observed, as a report records it for `roprof check`.
    #[must_use]
    pub fn observe_options(&self) -> ObserveOptions {
        ObserveOptions {
            duration_secs: self.duration.as_secs_f64(),
            settle_secs: match self.window {
                Window::Settle(d) => Some(d.as_secs_f64()),
                Window::Fixed => None,
            },
            stop_timeout: self.stop_timeout,
            exercise: self.exercise.clone(),
            probe: self.probe.clone(),
            read_only: self.read_only,
        }
    }
}
