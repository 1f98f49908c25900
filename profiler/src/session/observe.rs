//! The part of a run after tracing is armed: watch the container until the
//! window ends (it settled, exited, reached `--duration`, a signal, or the
//! engine went away), stop it with tracing still on, drain and fold the
//! records.
//!
//! The settle window ends once, for the quiet period, no new write-type
//! operation arrived (each record is a new distinct operation: the kernel
//! folds repeats) and the container's cgroup used next to no CPU, after the
//! probe answered and the exercise finished. The CPU condition keeps a busy
//! application (a batch job printing, a slow start computing) from counting
//! as settled just because it writes nothing new. Nor does it end while a
//! process of the container sleeps towards a wake-up due before the
//! deadline ([`super::wakeup`]).

use std::{
    os::fd::AsFd as _,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use indicatif::ProgressBar;

use super::{
    ENGINE_CALL_TIMEOUT, RunConfig, RunOutput, SessionError, Window, interrupt, note,
    phases::Stopwatch,
    probe,
    settle::{CpuWatch, Settle},
    timeline::Timeline,
    wakeup,
};
use crate::{
    model::{
        Caveat, During, Ended, Health, ImageConfig, ImageListing, Phase, ProcessExit, RunMeta,
        TraceStats,
    },
    runtime::{Engine, ExitState},
    trace::{self, CollectedExit, Collector, TraceError, Tracer, collect::Progress},
};

/// How often the window's conditions are checked.
const POLL: Duration = Duration::from_millis(200);

type Drained = Result<(Collector, RingBuf<MapData>), TraceError>;

/// A run being observed: the drain task owns the ring until the end.
pub(super) struct Observation<'t> {
    tracer: &'t mut Tracer,
    stop_tx: tokio::sync::watch::Sender<bool>,
    prog_rx: tokio::sync::watch::Receiver<Progress>,
    drain: tokio::task::JoinHandle<Drained>,
}

/// What the watch over the window found.
struct Watched {
    ended: Ended,
    /// Set when an engine call failed (engine stopped or restarting,
    /// container removed behind roprof's back).
    lost: Option<String>,
    observed: Duration,
    probe_ok: Option<bool>,
    exercise: Option<tokio::process::Child>,
    exercise_exit: Option<i64>,
    notes: Vec<String>,
    coverage: super::coverage::Coverage,
    timeline: Timeline,
    /// Wake-ups due after the window's deadline.
    wakeups_after: Vec<Caveat>,
}

impl Watched {
    /// The start of a window: the exercise, if any, is started.
    fn new(cfg: &RunConfig) -> Result<Self, SessionError> {
        let mut w = Watched {
            ended: Ended::Window,
            lost: None,
            observed: Duration::ZERO,
            probe_ok: cfg.probe.as_ref().map(|_| false),
            exercise: spawn_exercise(cfg.exercise.as_deref())?,
            exercise_exit: None,
            notes: Vec::new(),
            coverage: super::coverage::Coverage::default(),
            timeline: Timeline::new(),
            wakeups_after: Vec::new(),
        };
        if w.exercise.is_some() {
            w.timeline
                .mark(crate::host::monotonic_ns(), During::Exercise);
        }
        Ok(w)
    }

    /// Records the exercise's status once it finished.
    fn poll_exercise(&mut self) {
        if let Some(ex) = self.exercise.as_mut()
            && let Ok(Some(status)) = ex.try_wait()
        {
            self.exercise_exit = Some(exit_status(status));
            self.notes.push(format!("exercise finished: {status}"));
            self.exercise = None;
            self.timeline
                .mark(crate::host::monotonic_ns(), During::Idle);
        }
    }
}

impl<'t> Observation<'t> {
    /// Takes the tracer's ring and starts draining it, folding names
    /// through `listing`'s symlinks as records arrive.
    pub(super) fn begin(
        tracer: &'t mut Tracer,
        listing: &ImageListing,
    ) -> Result<Self, SessionError> {
        let ring = tracer
            .take_ring()
            .ok_or(TraceError::MissingMap(profiler_common::MAP_EVENTS))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (prog_tx, prog_rx) = tokio::sync::watch::channel(Progress::default());
        let drain = tokio::spawn(trace::drain_ring(
            ring,
            Collector::with_listing(listing),
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

    /// Stops draining and gives the ring back to the tracer (a run that
    /// never started).
    pub(super) async fn cancel(self) {
        let _ = self.stop_tx.send(true);
        if let Ok(Ok((_, ring))) = self.drain.await {
            self.tracer.put_ring(ring);
        }
    }

    /// Observes, stops (when `owned`), drains and collects.
    #[expect(clippy::too_many_arguments, reason = "one run's inputs")]
    pub(super) async fn observe(
        self,
        engine: &Engine,
        cfg: &RunConfig,
        id: &str,
        image: ImageConfig,
        listing: ImageListing,
        pb: &ProgressBar,
        started: Instant,
        owned: bool,
        sw: &mut Stopwatch,
    ) -> Result<RunOutput, SessionError> {
        let Observation {
            tracer,
            stop_tx,
            prog_rx,
            drain,
        } = self;
        sw.enter(Phase::Observe).await;
        let mut w = watch(engine, cfg, id, &prog_rx, pb, started, tracer).await?;
        if let Some(e) = &w.lost {
            eprintln!(
                "roprof: lost the Docker engine after {:.1}s of observation ({e}); the report covers what was seen until then",
                w.observed.as_secs_f64()
            );
        }
        sw.enter(Phase::Stop).await;
        let stop_ns = crate::host::monotonic_ns();
        w.timeline.mark(stop_ns, During::Stop);
        stop(engine, cfg, id, owned, pb, &mut w).await;
        sw.enter(Phase::Collect).await;
        // Records are submitted synchronously by the hooks, and a stopped
        // container's processes are gone: a short pause lets the drain task
        // catch up before it is told to finish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = stop_tx.send(true);
        let (collector, ring) = drain
            .await
            .map_err(|e| SessionError::Trace(TraceError::Poll(std::io::Error::other(e))))??;
        tracer.put_ring(ring);
        let (losses, activity) = tracer.losses()?;
        let state = if w.lost.is_none() {
            match engine.state(id).await {
                Ok(s) => s,
                Err(e) => {
                    w.lost = Some(e.to_string());
                    ExitState::default()
                }
            }
        } else {
            ExitState::default()
        };
        let logs = if w.lost.is_none() {
            engine.logs_tail(id, 20).await
        } else {
            Vec::new()
        };
        let cgroup_seen = collector.cgroup_seen.is_some();
        // The kernel's counts are read per record, in place: a copy of
        // its maps would weigh ~10 MiB at 100k paths.
        let dedup = tracer.dedup_lookup()?;
        let files = tracer.file_lookup()?;
        let mut collected = collector.finish(&listing, &dedup, &files);
        w.timeline.place(&mut collected.observations);
        dedup.check()?;
        files.check()?;
        w.notes.extend(run_notes(
            owned,
            cgroup_seen,
            collected.detached,
            &activity,
            &state,
        ));
        if w.lost.is_some() && w.ended != Ended::Signal {
            w.ended = Ended::EngineLost;
        }
        let incomplete_reason = incomplete_reason(&w, &state);
        let mut caveats = probe_caveat(cfg.probe.as_deref(), w.probe_ok);
        caveats.extend(w.coverage.caveat());
        caveats.append(&mut w.wakeups_after);
        Ok(RunOutput {
            image,
            listing,
            observations: collected.observations,
            meta: RunMeta {
                mode: cfg.mode,
                container_id: id.to_owned(),
                read_only: cfg.read_only,
                observed_secs: w.observed.as_secs_f64(),
                ended: Some(w.ended),
                exit_code: state.exit_code,
                oom_killed: state.oom_killed,
                logs_tail: logs,
                partial_start: !owned,
                incomplete: incomplete_reason.is_some(),
                incomplete_reason,
                notes: w.notes,
                health: w.probe_ok.map(Health::from_ok),
                exercise_exit: w.exercise_exit,
                process_exits: Some(process_exits(collected.exits, stop_ns)),
                caveats,
                verification: None,
                served: w.coverage.served(),
            },
            losses,
            stats: activity,
        })
    }
}

/// A probe that never answered during the whole observed run (the probe is
/// polled until it first answers, so `Some(false)` at the end means never).
fn probe_caveat(probe: Option<&str>, ok: Option<bool>) -> Vec<Caveat> {
    match (probe, ok) {
        (Some(probe), Some(false)) => vec![Caveat::ProbeNeverAnswered {
            probe: probe.to_owned(),
        }],
        _ => Vec::new(),
    }
}

/// The run's exits, one per program and status, each marked when its first
/// process ended after roprof began stopping the container.
fn process_exits(exits: Vec<CollectedExit>, stop_ns: u64) -> Vec<ProcessExit> {
    let mut out: Vec<ProcessExit> = Vec::with_capacity(exits.len());
    for e in exits {
        let mut x = e.exit;
        x.at_stop = e.first_ns >= stop_ns;
        // One record per key, but a rare insert race in the kernel sends two.
        if let Some(y) = out
            .iter_mut()
            .find(|y| y.program == x.program && y.status == x.status)
        {
            y.at_stop &= x.at_stop;
        } else {
            out.push(x);
        }
    }
    out.sort_by(|a, b| (&a.program, a.status).cmp(&(&b.program, b.status)));
    out
}

/// Stops the container (when roprof owns it) with tracing still on, so
/// that shutdown writes are seen; then settles the exercise's status.
async fn stop(
    engine: &Engine,
    cfg: &RunConfig,
    id: &str,
    owned: bool,
    pb: &ProgressBar,
    w: &mut Watched,
) {
    if owned && w.lost.is_none() {
        note(pb, cfg.quiet, "stopping container (tracing continues)");
        // Interrupted: a short grace period, the user is waiting.
        let t = if interrupt::interrupted() {
            cfg.stop_timeout.min(2)
        } else {
            cfg.stop_timeout
        };
        if let Err(e) = engine.stop(id, t).await {
            w.lost = Some(e.to_string());
        }
    }
    // A quick exercise racing the container's own exit gets a moment to
    // finish, so that its status does not depend on who won.
    if let Some(ex) = w.exercise.as_mut()
        && !interrupt::interrupted()
    {
        let _ = tokio::time::timeout(Duration::from_secs(1), ex.wait()).await;
    }
    w.poll_exercise();
    if w.exercise.take().is_some() {
        w.notes
            .push("the exercise was still running when the window ended: it was killed".into());
    }
}

/// What the reader of the report must know about how the run was traced.
fn run_notes(
    owned: bool,
    cgroup_seen: bool,
    detached: u64,
    activity: &TraceStats,
    state: &ExitState,
) -> Vec<String> {
    let mut notes = Vec::new();
    if owned && !cgroup_seen {
        notes.push("the container's cgroup was never seen being created: nothing may have been traced (cgroup v2 or the unified hierarchy is required)".into());
    }
    if detached > 0 {
        notes.push(format!(
            "{detached} paths were relative to a directory outside the container root"
        ));
    }
    if activity.io_uring_setups > 0 {
        notes.push(format!(
            "io_uring in use ({} ring(s) set up): writes submitted through io_uring are not traced, so paths may be missing",
            activity.io_uring_setups
        ));
    }
    if let Some(e) = &state.error {
        notes.push(format!("engine error: {e}"));
    }
    if !owned {
        notes
            .push("attached to a running container: writes before the attach were not seen".into());
    }
    notes
}

fn incomplete_reason(w: &Watched, state: &ExitState) -> Option<String> {
    if interrupt::interrupted() {
        Some(interrupt::describe())
    } else if let Some(e) = &w.lost {
        Some(format!(
            "lost the Docker engine during the run ({e}): writes after {:.1}s were not seen",
            w.observed.as_secs_f64()
        ))
    } else if state.oom_killed {
        Some(format!(
            "the container was OOM-killed after {:.1}s (exit code {}): it did not run to its normal end, so later writes were not seen; give it more memory (--memory)",
            w.observed.as_secs_f64(),
            state
                .exit_code
                .map_or_else(|| "unknown".into(), |c| c.to_string())
        ))
    } else {
        None
    }
}

/// The shell's view of an exit status: the code, or 128 + the signal.
fn exit_status(status: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt as _;
    status
        .code()
        .map(i64::from)
        .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
        .unwrap_or(-1)
}

/// Starts `--exercise` on the host, if any.
fn spawn_exercise(cmd: Option<&str>) -> Result<Option<tokio::process::Child>, SessionError> {
    cmd.map(|cmd| {
        // Its output goes to stderr: stdout is the report.
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(cmd).kill_on_drop(true);
        if let Ok(err) = std::io::stderr().as_fd().try_clone_to_owned() {
            c.stdout(std::process::Stdio::from(err));
        }
        c.spawn().map_err(|source| SessionError::Exercise {
            cmd: cmd.to_owned(),
            source,
        })
    })
    .transpose()
}

/// Why the window ended, in words, for the notes.
fn ended_why(e: Ended) -> &'static str {
    match e {
        Ended::Settled => {
            "settled: no new write-type operation and an idle container for the quiet period"
        }
        Ended::Exited => "the container exited",
        Ended::Window => "the window's --duration was reached",
        Ended::Signal => "a signal arrived",
        Ended::EngineLost => "the Docker engine was lost",
    }
}

/// `None` while the container runs; else how the window ended (the
/// container exited, or the engine did not answer: `w.lost` says why).
async fn still_running(engine: &Engine, id: &str, w: &mut Watched) -> Option<Ended> {
    match tokio::time::timeout(ENGINE_CALL_TIMEOUT, engine.state(id)).await {
        Ok(Ok(s)) if !s.running => Some(Ended::Exited),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            w.lost = Some(e.to_string());
            Some(Ended::EngineLost)
        }
        Err(_) => {
            w.lost = Some(format!(
                "the engine did not answer for {} s",
                ENGINE_CALL_TIMEOUT.as_secs()
            ));
            Some(Ended::EngineLost)
        }
    }
}

/// Quiet this long ends the application's start (it is idle after).
const START_QUIET: Duration = Duration::from_secs(2);

/// Ends a probe's part when its tail passed, and the start once no new
/// write arrived for [`START_QUIET`]: `quiet_since` is the write count
/// and when it last changed.
fn mark_idle(w: &mut Watched, quiet_since: &mut (u64, Instant), writes: u64) {
    let now_ns = crate::host::monotonic_ns();
    let then = if w.exercise.is_some() {
        During::Exercise
    } else {
        During::Idle
    };
    w.timeline.tick(now_ns, then);
    if writes != quiet_since.0 {
        *quiet_since = (writes, Instant::now());
    } else if w.timeline.current() == During::Start && quiet_since.1.elapsed() >= START_QUIET {
        w.timeline.mark(now_ns, During::Idle);
    }
}

/// Watches the window until one of its ends.
async fn watch(
    engine: &Engine,
    cfg: &RunConfig,
    id: &str,
    prog_rx: &tokio::sync::watch::Receiver<Progress>,
    pb: &ProgressBar,
    started: Instant,
    tracer: &Tracer,
) -> Result<Watched, SessionError> {
    let mut w = Watched::new(cfg)?;
    // The application's start ends with its first quiet period (or a
    // probe's answer, or the exercise).
    let mut quiet_since = (0, started);
    let mut settle = match cfg.window {
        Window::Settle(quiet) => Some(Settle {
            quiet,
            writes: 0,
            since: started,
            cpu: None,
        }),
        Window::Fixed => None,
    };
    let mut cpu_looked_up = false;
    let mut held = wakeup::Held::default();
    // What counts as a tick for the caveats; a fixed window has no quiet
    // period, and the default one's keeps its ticks out of them.
    let quiet = settle.as_ref().map_or(START_QUIET, |s| s.quiet);
    loop {
        let p = *prog_rx.borrow();
        note(
            pb,
            true,
            &format!(
                "observing: {} events, {} paths, {} EROFS",
                p.events, p.paths, p.erofs
            ),
        );
        if interrupt::interrupted() {
            w.ended = Ended::Signal;
            break;
        }
        if started.elapsed() >= cfg.duration {
            w.ended = Ended::Window;
            break;
        }
        let sent_ns = crate::host::monotonic_ns();
        if let (Some(url), Some(false)) = (&cfg.probe, w.probe_ok)
            && probe::http_ok(url, Duration::from_millis(500)).await
        {
            w.timeline
                .probe_answered(sent_ns, crate::host::monotonic_ns());
            w.probe_ok = Some(true);
            w.notes.push(format!(
                "probe {url} answered after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
        }
        w.poll_exercise();
        mark_idle(&mut w, &mut quiet_since, p.writes);
        w.coverage.sample(engine, id).await;
        if let Some(end) = still_running(engine, id, &mut w).await {
            w.ended = end;
            break;
        }
        if let Some(s) = settle.as_mut() {
            if !cpu_looked_up {
                cpu_looked_up = true;
                s.cpu = match engine.pid(id).await {
                    Ok(pid) if pid > 0 => CpuWatch::of(pid),
                    _ => None,
                };
            }
            s.update(&p);
            if s.settled()
                && w.probe_ok != Some(false)
                && w.exercise.is_none()
                && started.elapsed() >= s.quiet
                && !wakeup::holds(
                    tracer,
                    &wakeup::Frame::of(started, s.quiet, cfg.duration),
                    &mut held,
                    &mut w.notes,
                )
            {
                w.ended = Ended::Settled;
                break;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    w.observed = started.elapsed();
    if matches!(w.ended, Ended::Settled | Ended::Window) {
        w.wakeups_after =
            wakeup::after_window(tracer, &wakeup::Frame::of(started, quiet, cfg.duration));
    }
    let why = ended_why(w.ended);
    // No duration in the note: notes are rendered (Markdown), and two
    // profiles of one image must render the same; `run.observed_secs` has it.
    w.notes.push(format!("observation ended: {why}"));
    Ok(w)
}
