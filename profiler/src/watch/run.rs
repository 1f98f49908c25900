//! The watch loop: runtime events and new cgroups in, reports out.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use futures::StreamExt as _;

use super::{
    Filter, WatchConfig, WatchError,
    demux::{self, Demux, NewCgroup},
    output::{Finished, Outputs},
    source::{Events, ImageCache, Source},
    tracing, workload,
};
use crate::{
    host::cgroup,
    model::{Ended, Losses, RunMeta, RunMode},
    runtime::{self, ContainerInfo, LifecycleEvent},
    session::interrupt,
    trace::{Collector, TraceError, Tracer},
};

/// After a container exited, how long its last records may take to reach
/// the ring's reader before its report is written.
const GRACE: Duration = Duration::from_millis(200);

/// How long a cgroup whose container the runtime does not know yet waits
/// for the container's create event before it is forgotten.
const UNRESOLVED_WAIT: Duration = Duration::from_secs(1);

/// How long a selected container that exited waits for its cgroup to be
/// identified before its (empty) report is written.
const CGROUP_WAIT: Duration = Duration::from_secs(2);

/// How often a broken event stream is followed again within a minute
/// before watch gives up on the runtime.
const MAX_RESUBSCRIBE: usize = 5;

/// What a watch wrote.
#[derive(Debug, Default)]
pub struct Summary {
    /// One directory per profiled container.
    pub containers: Vec<PathBuf>,
    /// One directory per workload with two replicas or more.
    pub merged: Vec<PathBuf>,
    /// Containers that started and were not selected.
    pub ignored: usize,
    /// The tracer's losses over the whole watch.
    pub losses: Losses,
}

/// A selected container.
struct Tracked {
    info: ContainerInfo,
    cgroups: Vec<u64>,
    since: Instant,
    exited: Option<(Instant, Option<i64>)>,
}

struct Watch {
    source: Source,
    tracer: Tracer,
    demux: Arc<Mutex<Demux>>,
    filter: Filter,
    quiet: bool,
    /// Identities from create events, kept until the container is removed
    /// (and reported): a container removed right after it ran is still
    /// named.
    known: HashMap<String, ContainerInfo>,
    tracked: HashMap<String, Tracked>,
    unresolved: Vec<(NewCgroup, String, Instant)>,
    ignored: Vec<String>,
    images: ImageCache,
    out: Outputs,
}

/// The drain task and its stop switch.
struct Drain {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(demux::Shared, RingBuf<MapData>), TraceError>>,
}

type NewCgroups = tokio::sync::mpsc::UnboundedReceiver<NewCgroup>;

/// Runs `watch` until a signal, `--duration`, or the runtime's events end.
pub async fn run(cfg: &WatchConfig) -> Result<Summary, WatchError> {
    let out = Outputs::new(&cfg.out_dir)?;
    let source = Source::connect(&cfg.runtime).await?;
    // Subscribed before the programs load: a container created meanwhile
    // is still known by name when its cgroup shows up.
    let mut events = source.events();
    if !cfg.quiet {
        eprintln!("roprof: loading the eBPF programs");
    }
    let ringbuf = cfg.ringbuf_bytes;
    let tracer = load_tracer(move || tracing::start(ringbuf)).await?;
    let (mut w, mut cg_rx, drain) = Watch::begin(cfg, source, tracer, out)?;
    eprintln!(
        "roprof: watching {} for new containers; reports go to {} (Ctrl-C to stop)",
        w.source.name(),
        cfg.out_dir.display()
    );
    let (ended, mut fatal) = w.follow(&mut events, &mut cg_rx, cfg.duration).await;
    w.wind_down(&mut cg_rx, ended, &mut fatal).await;
    let summary = w.end(drain).await?;
    match fatal {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Loads the programs with `start` off the async threads (a signal
/// abandons the wait): watch's, and guard's.
pub(crate) async fn load_tracer(
    start: impl FnOnce() -> Result<Tracer, TraceError> + Send + 'static,
) -> Result<Tracer, crate::session::SessionError> {
    interrupt::abortable(async move {
        tokio::task::spawn_blocking(start)
            .await
            .map_err(|e| TraceError::Poll(std::io::Error::other(e)))?
            .map_err(crate::session::SessionError::from)
    })
    .await
}

impl Watch {
    /// Starts draining the tracer's ring into the demultiplexer.
    fn begin(
        cfg: &WatchConfig,
        source: Source,
        mut tracer: Tracer,
        out: Outputs,
    ) -> Result<(Self, NewCgroups, Drain), WatchError> {
        let ring = tracer
            .take_ring()
            .ok_or(TraceError::MissingMap(profiler_common::MAP_EVENTS))?;
        let (cg_tx, cg_rx) = tokio::sync::mpsc::unbounded_channel();
        let demux = Arc::new(Mutex::new(Demux::new(cg_tx)));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(crate::trace::drain_ring(
            ring,
            demux::Shared(demux.clone()),
            stop_rx,
            None,
        ));
        let w = Watch {
            source,
            tracer,
            demux,
            filter: cfg.filter.clone(),
            quiet: cfg.quiet,
            known: HashMap::new(),
            tracked: HashMap::new(),
            unresolved: Vec::new(),
            ignored: Vec::new(),
            images: ImageCache::default(),
            out,
        };
        Ok((w, cg_rx, Drain { stop, task }))
    }

    /// Follows events and new cgroups until a signal, the deadline, or an
    /// error; returns why it ended.
    async fn follow(
        &mut self,
        events: &mut Events,
        cg_rx: &mut NewCgroups,
        duration: Option<Duration>,
    ) -> (Ended, Option<WatchError>) {
        let deadline = duration.map(|d| tokio::time::Instant::now() + d);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        // Times the event stream broke and was followed again, in the last minute.
        let mut resubscribed: Vec<Instant> = Vec::new();
        loop {
            resubscribed.retain(|t| t.elapsed() < Duration::from_mins(1));
            let step = tokio::select! {
                () = interrupt::wait() => return (Ended::Signal, None),
                () = async { tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if deadline.is_some() => return (Ended::Window, None),
                Some(n) = cg_rx.recv() => self.on_cgroup(n).await,
                ev = events.next() => match ev {
                    Some(Ok(e)) => self.on_event(e),
                    // A broken event stream is followed again: containers
                    // created meanwhile are still identified by their cgroup.
                    Some(Err(e)) if resubscribed.len() < MAX_RESUBSCRIBE => {
                        eprintln!("roprof: warning: {e}; following the events again");
                        resubscribed.push(Instant::now());
                        *events = self.source.events();
                        Ok(())
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(WatchError::EventsEnded(self.source.name())),
                },
                _ = tick.tick() => self.on_tick().await,
            };
            if let Err(e) = step {
                return (Ended::EngineLost, Some(e));
            }
        }
    }

    /// The last records and cgroups in flight, then every container still
    /// running is reported cut short.
    async fn wind_down(
        &mut self,
        cg_rx: &mut NewCgroups,
        ended: Ended,
        fatal: &mut Option<WatchError>,
    ) {
        tokio::time::sleep(GRACE).await;
        while let Ok(n) = cg_rx.try_recv() {
            if let Err(e) = self.on_cgroup(n).await {
                fatal.get_or_insert(e);
            }
        }
        let why = match (&fatal, ended) {
            (_, Ended::Signal) => interrupt::describe(),
            (Some(e), _) => format!("watch ended on an error: {e}"),
            _ => "watch's --duration ended while the container was running".to_owned(),
        };
        let ids: Vec<String> = self.tracked.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.finish(&id, Some((ended, why.clone()))).await {
                eprintln!("roprof: {e}");
                fatal.get_or_insert(e);
            }
        }
    }

    /// Stops the drain, unloads the programs, removes what roprof created.
    async fn end(self, drain: Drain) -> Result<Summary, WatchError> {
        let _ = drain.stop.send(true);
        let _ = drain.task.await;
        let (losses, _) = self.tracer.losses()?;
        // Detaching waits for RCU grace periods: after the answers.
        let tracer = self.tracer;
        let _ = tokio::task::spawn_blocking(move || drop(tracer)).await;
        // The containers created to list images, should one have stayed.
        if let Source::Docker(engine) = &self.source {
            interrupt::remove_all(engine).await;
        }
        Ok(Summary {
            containers: self.out.containers,
            merged: self.out.merged.into_values().collect(),
            ignored: self.ignored.len(),
            losses,
        })
    }

    fn selected(&self, info: &ContainerInfo) -> bool {
        !info.labels.contains_key(runtime::LABEL) && self.filter.matches(&info.name, &info.labels)
    }

    fn forget(&mut self, cg: u64) -> Result<(), WatchError> {
        if let Ok(mut d) = self.demux.lock() {
            d.forget(cg);
        }
        Ok(tracing::forget(&mut self.tracer, cg)?)
    }

    /// A new cgroup: keep it when it is a selected container's.
    async fn on_cgroup(&mut self, n: NewCgroup) -> Result<(), WatchError> {
        let Some(id) = cgroup::container_id(&n.path) else {
            return self.forget(n.id);
        };
        // The created event named it; asking the runtime says how it was
        // started (its command and ports, for the report's docker line).
        let info = match (self.source.info(&id).await, self.known.get(&id)) {
            (Ok(Some(i)), _) => Some(i),
            (Ok(None) | Err(_), Some(known)) => Some(known.clone()),
            (Ok(None), None) => None,
            (Err(e), None) => return Err(e),
        };
        if let Some(info) = info {
            self.decide(info, n.id)
        } else {
            self.unresolved.push((n, id, Instant::now()));
            Ok(())
        }
    }

    fn decide(&mut self, info: ContainerInfo, cg: u64) -> Result<(), WatchError> {
        if !self.selected(&info) {
            if !self.ignored.contains(&info.id) {
                self.ignored.push(info.id.clone());
            }
            return self.forget(cg);
        }
        if !self.quiet {
            eprintln!("roprof: profiling container {}", info.name);
        }
        self.tracked
            .entry(info.id.clone())
            .or_insert_with(|| Tracked {
                info,
                cgroups: Vec::new(),
                since: Instant::now(),
                exited: None,
            })
            .cgroups
            .push(cg);
        Ok(())
    }

    fn on_event(&mut self, e: LifecycleEvent) -> Result<(), WatchError> {
        if std::env::var_os("ROPROF_WATCH_DEBUG").is_some() {
            eprintln!("roprof: debug: {e:?}");
        }
        match e {
            LifecycleEvent::Created(info) => {
                let id = info.id.clone();
                self.known.insert(id.clone(), info.clone());
                let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.unresolved)
                    .into_iter()
                    .partition(|(_, i, _)| *i == id);
                self.unresolved = later;
                for (n, _, _) in now {
                    self.decide(info.clone(), n.id)?;
                }
            }
            LifecycleEvent::Exited { id, code } => {
                if let Some(t) = self.tracked.get_mut(&id) {
                    t.exited = Some((Instant::now(), code));
                } else if let Some(info) = self.known.get(&id).cloned()
                    && self.selected(&info)
                {
                    // Exited before its cgroup was identified (a container
                    // that lived a few milliseconds): tracked with no
                    // cgroup yet, which may still come.
                    self.tracked.insert(
                        id,
                        Tracked {
                            info,
                            cgroups: Vec::new(),
                            since: Instant::now(),
                            exited: Some((Instant::now(), code)),
                        },
                    );
                }
            }
            // A selected container is tracked by the time it is removed
            // (its exit came first); the others need not be remembered.
            LifecycleEvent::Removed { id } => {
                if !self.tracked.contains_key(&id) {
                    self.known.remove(&id);
                }
            }
            LifecycleEvent::Started { .. } => {}
        }
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), WatchError> {
        let stale: Vec<_> = self
            .unresolved
            .iter()
            .filter(|(_, _, t)| t.elapsed() >= UNRESOLVED_WAIT)
            .map(|(n, id, _)| (n.clone(), id.clone()))
            .collect();
        self.unresolved
            .retain(|(_, _, t)| t.elapsed() < UNRESOLVED_WAIT);
        for (n, id) in stale {
            match self.source.info(&id).await? {
                Some(info) => self.decide(info, n.id)?,
                // Not a container of this runtime (namespace).
                None => self.forget(n.id)?,
            }
        }
        let done: Vec<String> = self
            .tracked
            .iter()
            .filter(|(_, t)| {
                t.exited.is_some_and(|(at, _)| {
                    let wait = if t.cgroups.is_empty() {
                        CGROUP_WAIT
                    } else {
                        GRACE
                    };
                    at.elapsed() >= wait
                })
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            self.finish(&id, None).await?;
        }
        Ok(())
    }

    /// Writes the report of container `id`; `cut` says why it is
    /// incomplete when watch ends before the container did.
    async fn finish(&mut self, id: &str, cut: Option<(Ended, String)>) -> Result<(), WatchError> {
        let Some(t) = self.tracked.remove(id) else {
            return Ok(());
        };
        let mut collectors: Vec<Collector> = Vec::new();
        for cg in &t.cgroups {
            if let Ok(mut d) = self.demux.lock() {
                collectors.push(d.take(*cg));
            }
            tracing::forget(&mut self.tracer, *cg)?;
        }
        let image = self.images.get(&self.source, &t.info.image).await;
        let dedup = self.tracer.dedup_counts()?;
        let files = self.tracer.file_stats()?;
        let (losses, stats) = self.tracer.losses()?;
        let sets: Vec<_> = collectors
            .into_iter()
            .map(|c| c.finish(&image.listing, &dedup, &files).observations)
            .collect();
        let observations = if sets.len() == 1 {
            sets.into_iter().next().unwrap_or_default()
        } else {
            workload::merge(&sets.iter().map(Vec::as_slice).collect::<Vec<_>>())
        };
        let mut notes = Vec::new();
        if t.cgroups.is_empty() {
            notes.push(
                "the container's cgroup was never seen being created: nothing was traced (it \
                 ran before watch was ready, or cgroup v2 is missing)"
                    .to_owned(),
            );
        }
        let end = t.exited.map_or_else(Instant::now, |(at, _)| at);
        let meta = RunMeta {
            mode: RunMode::Watch,
            container_id: t.info.id.clone(),
            observed_secs: end.duration_since(t.since).as_secs_f64(),
            ended: Some(cut.as_ref().map_or(Ended::Exited, |(e, _)| *e)),
            exit_code: t.exited.and_then(|(_, c)| c),
            incomplete: cut.is_some(),
            incomplete_reason: cut.map(|(_, why)| why),
            notes,
            ..RunMeta::default()
        };
        let paths = observations.len();
        let dir = self.out.write(
            Finished {
                name: t.info.name.clone(),
                id: t.info.id.clone(),
                run: t
                    .info
                    .started
                    .as_ref()
                    .map(|s| s.options(&image.config))
                    .unwrap_or_default(),
                image,
                observations,
                meta,
            },
            &t.info.labels,
            &losses,
            &stats,
        )?;
        if !self.quiet {
            eprintln!(
                "roprof: {}: {paths} paths; report in {}",
                t.info.name,
                dir.display()
            );
        }
        Ok(())
    }
}
