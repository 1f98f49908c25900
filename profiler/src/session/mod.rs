//! One profiling run: the runtime and the tracer meet here and yield
//! observations. `profile`, `verify` and `attach` all go through [`run`].

pub mod closed;
pub mod interrupt;
pub mod probe;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    analysis::{self, AnalysisInput, Settings},
    environment::ContainerEnv,
    model::{
        ImageConfig, ImageListing, Losses, PathObservation, Report, RunMeta, RunOptions,
        SCHEMA_VERSION, TraceStats,
    },
    runtime::{ContainerSpec, Engine, RuntimeError},
    trace::{self, Collector, Scope, TraceError, Tracer},
};

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Engine.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Tracer.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Interrupted by a signal.
    #[error("interrupted by {signal} during {phase}; the containers were removed")]
    Interrupted {
        /// Signal name.
        signal: &'static str,
        /// Phase the run was in.
        phase: String,
    },
    /// A path Docker cannot express (non-UTF-8).
    #[error("mount target {0} is not UTF-8: Docker cannot mount it")]
    Unrepresentable(String),
    /// A verification run did not complete (engine lost).
    #[error("a read-only verification run did not complete: {0}")]
    RoundCutShort(String),
    /// The container to attach to is not running.
    #[error("container `{0}` is not running")]
    NotRunning(String),
    /// cgroup lookup failed.
    #[error("cannot find the cgroup of {0}")]
    Cgroup(String),
    /// The exercise command could not run.
    #[error("--exercise `{cmd}` could not start: {source}")]
    Exercise {
        /// Command.
        cmd: String,
        /// Cause.
        source: std::io::Error,
    },
}

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
    /// Observation window.
    pub duration: Duration,
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
    pub mode: &'static str,
    /// Ring buffer size override.
    pub ringbuf_bytes: Option<u32>,
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

fn bar(quiet: bool) -> ProgressBar {
    use std::io::IsTerminal as _;
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new_spinner();
    b.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

fn note(b: &ProgressBar, quiet: bool, msg: &str) {
    if b.is_hidden() {
        if !quiet {
            eprintln!("roprof: {msg}");
        }
    } else {
        b.set_message(msg.to_owned());
    }
}

/// Runs the image under tracing once. A signal during observation ends the
/// window early and yields a report marked incomplete; in other phases the
/// run is abandoned. The container is removed either way (unless `--keep`
/// on success), and the tracer is unloaded by drop.
pub async fn run(engine: &Engine, cfg: &RunConfig) -> Result<RunOutput, SessionError> {
    interrupt::check()?;
    let res = run_inner(engine, cfg).await;
    if res.is_err() || !cfg.keep || interrupt::interrupted() {
        // Waits for a vanished engine (not after a signal) and names what
        // it could not remove.
        for id in interrupt::registered() {
            let _ = remove_or_wait(engine, &id).await;
        }
    }
    res
}

async fn run_inner(engine: &Engine, cfg: &RunConfig) -> Result<RunOutput, SessionError> {
    let pb = bar(cfg.quiet);
    interrupt::enter("inspect").await;
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
    };
    interrupt::enter("create").await;
    interrupt::check()?;
    note(&pb, cfg.quiet, "creating container");
    let id = interrupt::abortable(async { Ok(engine.create(&spec).await?) }).await?;
    interrupt::register(&id);
    interrupt::enter("listing").await;
    interrupt::check()?;
    note(&pb, cfg.quiet, "reading the image filesystem");
    let listing = interrupt::abortable(async { Ok(engine.listing(&id).await?) }).await?;
    interrupt::enter("attach").await;
    interrupt::check()?;
    note(&pb, cfg.quiet, "attaching eBPF programs");
    let tracer = Tracer::start(&Scope {
        container_id: Some(id.clone()),
        ringbuf_bytes: cfg.ringbuf_bytes,
        ..Default::default()
    })?;
    let run = Observation::begin(tracer)?;
    interrupt::check()?;
    engine.start(&id).await?;
    let started = Instant::now();
    let mut out = run
        .observe(engine, cfg, &id, image, listing, pb, started, true)
        .await?;
    if cfg.keep && !out.meta.incomplete {
        interrupt::forget(&id);
    } else if let Err(e) = remove_or_wait(engine, &id).await {
        out.meta.notes.push(e);
    }
    Ok(out)
}

/// Longest an engine call of the observation loop may take before the
/// engine counts as lost.
const ENGINE_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long roprof waits for a vanished engine to come back so that it can
/// remove its container.
pub const ENGINE_WAIT: Duration = Duration::from_secs(60);

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

/// Profiles an already running container from now on (`roprof attach`).
/// Every process of its cgroup is traced; the container is left running.
pub async fn attach(
    engine: &Engine,
    cfg: &RunConfig,
    container: &str,
) -> Result<RunOutput, SessionError> {
    let pb = bar(cfg.quiet);
    interrupt::enter("inspect").await;
    let id = engine.resolve(container).await?;
    let pid = engine.pid(&id).await?;
    if pid <= 0 {
        return Err(SessionError::NotRunning(container.to_owned()));
    }
    let image_ref = engine.image_of(&id).await?;
    let image = engine.image_config(&image_ref).await?;
    note(&pb, cfg.quiet, "reading the container filesystem");
    let listing = engine.listing(&id).await?;
    let (cgroup_id, pids) = cgroup_of(pid)
        .map_err(|e| SessionError::Cgroup(format!("container {container} (pid {pid}): {e}")))?;
    interrupt::enter("attach").await;
    note(&pb, cfg.quiet, "attaching eBPF programs");
    let tracer = Tracer::start(&Scope {
        cgroup_ids: vec![cgroup_id],
        pids,
        ringbuf_bytes: cfg.ringbuf_bytes,
        pre_opened: true,
        ..Default::default()
    })?;
    let run = Observation::begin(tracer)?;
    run.observe(engine, cfg, &id, image, listing, pb, Instant::now(), false)
        .await
}

/// cgroup v2 id (the directory's inode) and member pids of `pid`'s cgroup.
fn cgroup_of(pid: i64) -> Result<(u64, Vec<u32>), String> {
    use std::os::unix::fs::MetadataExt as _;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::")).ok_or(
        "no cgroup v2 (unified) membership; roprof needs cgroup v2 or the hybrid unified hierarchy",
    )?;
    for root in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let dir = format!("{root}{rel}");
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        if !std::path::Path::new(&format!("{dir}/cgroup.procs")).exists() {
            continue;
        }
        let procs =
            std::fs::read_to_string(format!("{dir}/cgroup.procs")).map_err(|e| e.to_string())?;
        let pids = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        return Ok((meta.ino(), pids));
    }
    Err(format!("cgroup {rel} not found under /sys/fs/cgroup"))
}

/// The part of a run after tracing is attached: observe, stop (when we own
/// the container), drain, collect.
struct Observation {
    tracer: Tracer,
    stop_tx: tokio::sync::watch::Sender<bool>,
    prog_rx: tokio::sync::watch::Receiver<trace::collect::Progress>,
    drain: tokio::task::JoinHandle<Result<Collector, TraceError>>,
}

impl Observation {
    fn begin(mut tracer: Tracer) -> Result<Self, SessionError> {
        let ring = tracer
            .take_ring()
            .ok_or(TraceError::MissingMap(profiler_common::MAP_EVENTS))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (prog_tx, prog_rx) = tokio::sync::watch::channel(trace::collect::Progress::default());
        let drain = tokio::spawn(trace::drain(
            ring,
            Collector::default(),
            stop_rx,
            Some(prog_tx),
        ));
        Ok(Observation {
            tracer,
            stop_tx,
            prog_rx,
            drain,
        })
    }

    #[expect(
        clippy::too_many_arguments,
        clippy::too_many_lines,
        reason = "one linear run procedure"
    )]
    async fn observe(
        self,
        engine: &Engine,
        cfg: &RunConfig,
        id: &str,
        image: ImageConfig,
        listing: ImageListing,
        pb: ProgressBar,
        started: Instant,
        owned: bool,
    ) -> Result<RunOutput, SessionError> {
        let Observation {
            tracer,
            stop_tx,
            prog_rx,
            drain,
        } = self;
        let id = id.to_owned();
        let mut exercise = match &cfg.exercise {
            Some(cmd) => Some(
                tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(cmd)
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|source| SessionError::Exercise {
                        cmd: cmd.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let mut probe_ok: Option<bool> = cfg.probe.as_ref().map(|_| false);
        let mut notes = Vec::new();
        // Set when an engine call fails mid-run (engine stopped/restarting,
        // container removed behind roprof's back).
        let mut lost: Option<String> = None;
        interrupt::enter("observe").await;
        loop {
            let p = *prog_rx.borrow();
            note(
                &pb,
                true,
                &format!(
                    "observing: {} events, {} paths, {} EROFS",
                    p.events, p.paths, p.erofs
                ),
            );
            if started.elapsed() >= cfg.duration || interrupt::interrupted() {
                break;
            }
            if let (Some(url), Some(false)) = (&cfg.probe, probe_ok)
                && probe::http_ok(url, Duration::from_millis(500)).await
            {
                probe_ok = Some(true);
                notes.push(format!(
                    "probe {url} answered after {:.1}s",
                    started.elapsed().as_secs_f64()
                ));
            }
            if let Some(ex) = exercise.as_mut()
                && let Ok(Some(status)) = ex.try_wait()
            {
                notes.push(format!("exercise finished: {status}"));
                exercise = None;
            }
            match tokio::time::timeout(ENGINE_CALL_TIMEOUT, engine.state(&id)).await {
                Ok(Ok(s)) if !s.running => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    lost = Some(e.to_string());
                    break;
                }
                Err(_) => {
                    lost = Some(format!(
                        "the engine did not answer for {} s",
                        ENGINE_CALL_TIMEOUT.as_secs()
                    ));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let observed = started.elapsed();
        if let Some(e) = &lost {
            eprintln!(
                "roprof: lost the Docker engine after {:.1}s of observation ({e}); the report covers what was seen until then",
                observed.as_secs_f64()
            );
        }
        interrupt::enter("stop").await;
        if owned && lost.is_none() {
            note(&pb, cfg.quiet, "stopping container (tracing continues)");
            // Interrupted: a short grace period, the user is waiting.
            let t = if interrupt::interrupted() {
                cfg.stop_timeout.min(2)
            } else {
                cfg.stop_timeout
            };
            if let Err(e) = engine.stop(&id, t).await {
                lost = Some(e.to_string());
            }
        }
        interrupt::enter("collect").await;
        // Let the last syscall exits reach the ring buffer.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop_tx.send(true);
        let collector = drain
            .await
            .map_err(|e| SessionError::Trace(TraceError::Poll(std::io::Error::other(e))))??;
        let (losses, stats) = tracer.losses()?;
        let dedup = tracer.dedup_counts()?;
        let files = tracer.file_stats()?;
        // Detaching links waits for RCU grace periods: do it off the
        // critical path.
        // Whatever is still attached when roprof exits is detached by the
        // kernel as the fds close.
        std::thread::spawn(move || drop(tracer));
        let state = if lost.is_none() {
            match engine.state(&id).await {
                Ok(s) => s,
                Err(e) => {
                    lost = Some(e.to_string());
                    crate::runtime::ExitState::default()
                }
            }
        } else {
            crate::runtime::ExitState::default()
        };
        let logs = if lost.is_none() {
            engine.logs_tail(&id, 20).await
        } else {
            Vec::new()
        };
        if owned && collector.cgroup_seen.is_none() {
            notes.push("the container's cgroup was never seen being created: nothing may have been traced (cgroup v2 or the unified hierarchy is required)".into());
        }
        let collected = collector.finish(&listing, &dedup, &files);
        if collected.detached > 0 {
            notes.push(format!(
                "{} paths were relative to a directory outside the container root",
                collected.detached
            ));
        }
        if stats.io_uring_setups > 0 {
            notes.push(format!(
                "io_uring in use ({} ring(s) set up): writes submitted through io_uring are not traced, so paths may be missing",
                stats.io_uring_setups
            ));
        }
        if let Some(e) = &state.error {
            notes.push(format!("engine error: {e}"));
        }
        let health = probe_ok.map(|ok| {
            if ok {
                "healthy".to_owned()
            } else {
                "unhealthy".to_owned()
            }
        });
        if !owned {
            notes.push(
                "attached to a running container: writes before the attach were not seen".into(),
            );
        }
        let incomplete_reason = if interrupt::interrupted() {
            Some(interrupt::describe())
        } else if let Some(e) = &lost {
            Some(format!(
                "lost the Docker engine during the run ({e}): writes after {:.1}s were not seen",
                observed.as_secs_f64()
            ))
        } else if state.oom_killed {
            Some(format!(
                "the container was OOM-killed after {:.1}s (exit code {}): it did not run to its normal end, so later writes were not seen; give it more memory (--memory)",
                observed.as_secs_f64(),
                state
                    .exit_code
                    .map_or_else(|| "unknown".into(), |c| c.to_string())
            ))
        } else {
            None
        };
        pb.finish_and_clear();
        Ok(RunOutput {
            image,
            listing,
            observations: collected.observations,
            meta: RunMeta {
                mode: cfg.mode.into(),
                container_id: id,
                read_only: cfg.read_only,
                observed_secs: observed.as_secs_f64(),
                exit_code: state.exit_code,
                oom_killed: state.oom_killed,
                logs_tail: logs,
                partial_start: !owned,
                incomplete: incomplete_reason.is_some(),
                incomplete_reason,
                notes,
                health,
            },
            losses,
            stats,
        })
    }
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
            mode: cfg.mode.into(),
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
        settings,
    });
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
    }
}
