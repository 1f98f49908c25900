//! The guard loop: Docker events and failed-write records in, JSON lines
//! and reports out, until SIGINT/SIGTERM.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

mod classify;

use futures::StreamExt as _;
use profiler_common::kind;

use super::{
    GuardConfig, GuardError,
    container::{Guarded, report_for},
    finding::{Errno, FindingKey, Findings},
    fix::{Fix, fix_for},
    line::{ContainerRef, LINE_SCHEMA_VERSION, Line, Process, rfc3339},
    metrics::Metrics,
    pending::{Hold, Pending},
};
use crate::{
    model::{CPath, Losses, PathObservation, ProcRef},
    runtime::LifecycleEvent,
    session::interrupt,
    trace::{
        RawEvent, Sink, TraceError, Tracer,
        collect::{Progress, is_log_open, map_op},
    },
    watch::{
        run::load_tracer,
        source::{Events, ImageCache, Source},
        workload,
    },
};

/// How often grown counts are sent.
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// How often `-o` reports are rewritten.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// How long a broken event stream waits before it is followed again.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

/// What a guard saw, for its last words.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Containers guarded at some point.
    pub guarded: usize,
    /// Distinct findings.
    pub findings: usize,
    /// Failed writes counted in all.
    pub failures: u64,
    /// Engine errors survived (event stream breaks, failed inspects).
    pub engine_errors: u64,
    /// Containers that vanished while being looked up (one that left
    /// failed writes and was gone before it could be classified, too).
    pub vanished: u64,
    /// Failed-write records of not yet classified containers dropped
    /// because the hold was full ([`super::pending::HELD_MAX`]).
    pub held_dropped: u64,
    /// Records the loop received.
    pub events: u64,
    /// The tracer's losses.
    pub losses: Losses,
    /// Report files written (`-o`).
    pub reports: Vec<PathBuf>,
}

/// Hands each decoded record to the guard loop.
struct Forward(tokio::sync::mpsc::UnboundedSender<RawEvent>, u64);

impl Sink for Forward {
    fn push_bytes(&mut self, bytes: &[u8]) {
        if let Some(ev) = RawEvent::parse(bytes) {
            self.1 += 1;
            let _ = self.0.send(ev);
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            events: self.1,
            ..Progress::default()
        }
    }
}

struct Guard<'a> {
    cfg: &'a GuardConfig,
    source: Source,
    tracer: Tracer,
    images: ImageCache,
    containers: HashMap<String, Guarded>,
    by_cgroup: HashMap<u64, String>,
    pending: Pending,
    findings: Findings,
    summary: Summary,
    metrics: Metrics,
    emit: &'a mut (dyn FnMut(&Line) + Send),
}

/// Runs `guard` until SIGINT/SIGTERM; `emit` gets every JSON line.
pub async fn run(
    cfg: &GuardConfig,
    emit: &mut (dyn FnMut(&Line) + Send),
) -> Result<Summary, GuardError> {
    if let Some(d) = &cfg.out_dir {
        std::fs::create_dir_all(d).map_err(|source| GuardError::Output {
            path: d.clone(),
            source,
        })?;
    }
    let metrics = Metrics::new();
    if let Some(addr) = cfg.metrics {
        let bound = metrics
            .serve(addr)
            .await
            .map_err(|source| GuardError::Metrics { addr, source })?;
        eprintln!("roprof: guard: metrics at http://{bound}/metrics");
    }
    let source = Source::connect(&cfg.runtime).await?;
    // Subscribed before the running containers are listed: one started
    // meanwhile is in the list or in the events (or both).
    let mut events = source.events();
    let ringbuf = cfg.ringbuf_bytes;
    let mut tracer = load_tracer(move || Tracer::start_guard(ringbuf)).await?;
    let ring = tracer
        .take_ring()
        .ok_or(TraceError::MissingMap(profiler_common::MAP_EVENTS))?;
    let (tx, mut records) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let drain = tokio::spawn(crate::trace::drain_ring(
        ring,
        Forward(tx, 0),
        stop_rx,
        None,
    ));
    let mut g = Guard {
        cfg,
        source,
        tracer,
        images: ImageCache::default(),
        containers: HashMap::new(),
        by_cgroup: HashMap::new(),
        pending: Pending::default(),
        findings: Findings::default(),
        summary: Summary::default(),
        metrics,
        emit,
    };
    g.guard_running().await;
    eprintln!("roprof: guard: watching {} containers", g.by_cgroup.len());
    g.follow(&mut events, &mut records).await;
    let _ = stop.send(true);
    let _ = drain.await;
    while let Ok(ev) = records.try_recv() {
        g.on_record(ev);
    }
    g.classify_pending().await;
    g.end().await
}

impl Guard<'_> {
    fn warn(&mut self, what: &str) {
        self.summary.engine_errors += 1;
        self.metrics.engine_error();
        eprintln!("roprof: guard: warning: {what}");
    }

    /// Guards the containers already running.
    async fn guard_running(&mut self) {
        match self.source.running_ids().await {
            Ok(ids) => {
                for id in ids {
                    self.consider(&id).await;
                }
            }
            Err(e) => self.warn(&e.to_string()),
        }
    }

    /// Follows events and records until a signal.
    async fn follow(
        &mut self,
        events: &mut Events,
        records: &mut tokio::sync::mpsc::UnboundedReceiver<RawEvent>,
    ) {
        let mut counts = tokio::time::interval(COUNT_EVERY);
        let mut reports = tokio::time::interval(REPORT_EVERY);
        loop {
            tokio::select! {
                () = interrupt::wait() => return,
                Some(ev) = records.recv() => self.on_record(ev),
                ev = events.next() => {
                // The kernel's records so far come first: a container that
                // started and stopped is classified before its exit is
                // handled.
                while let Ok(r) = records.try_recv() {
                    self.on_record(r);
                }
                self.classify_pending().await;
                match ev {
                    Some(Ok(LifecycleEvent::Started { id })) => self.consider(&id).await,
                    Some(Ok(LifecycleEvent::Exited { id, .. } | LifecycleEvent::Removed { id })) => {
                        self.release(&id);
                    }
                    Some(Ok(LifecycleEvent::Created(_))) => {}
                    // Never stops on its own: a broken stream (the engine
                    // restarting) is followed again, and counted.
                    Some(Err(e)) => {
                        self.warn(&format!("{e}; following the events again"));
                        self.resubscribe(events).await;
                    }
                    None => {
                        self.warn("the engine's event stream ended; following it again");
                        self.resubscribe(events).await;
                    }
                }},
                _ = counts.tick() => self.send_counts(),
                _ = reports.tick() => self.write_reports(),
            }
            self.classify_pending().await;
        }
    }
    /// Follows the events again after a pause, then lists the running
    /// containers: those started while the stream was down are guarded too.
    async fn resubscribe(&mut self, events: &mut Events) {
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        *events = self.source.events();
        self.guard_running().await;
    }

    /// Container `id` stopped: its last counts are read, then its cgroup
    /// and dedupe entries are forgotten in the kernel (its findings stay).
    fn release(&mut self, id: &str) {
        let cgroups = self
            .containers
            .get_mut(id)
            .map(|c| std::mem::take(&mut c.cgroups))
            .unwrap_or_default();
        if cgroups.is_empty() {
            return;
        }
        self.read_counts();
        let mut forgot = Ok(());
        for cg in &cgroups {
            self.by_cgroup.remove(cg);
            forgot = forgot.and(self.tracer.unguard_cgroup(*cg));
        }
        let keys = self.findings.keys_of(id);
        let forgot = forgot.and_then(|()| self.tracer.forget_dedup(&keys));
        if let Err(e) = forgot {
            self.warn(&e.to_string());
        }
        for k in keys {
            self.findings.retire(k);
        }
    }

    /// One record: a new cgroup, or a failed write (held while its
    /// container is not classified yet).
    fn on_record(&mut self, ev: RawEvent) {
        self.summary.events += 1;
        self.metrics.event();
        if ev.header.kind == kind::CGROUP {
            let path = String::from_utf8_lossy(&ev.name).into_owned();
            self.on_cgroup(ev.header.cgroup, &path);
        } else if ev.header.kind == kind::PATH_OP && !self.by_cgroup.contains_key(&ev.header.cgroup)
        {
            let cg = ev.header.cgroup;
            match self.pending.hold(ev) {
                Hold::Held => {}
                Hold::Dropped => {
                    self.summary.held_dropped += 1;
                    self.metrics.held_dropped();
                }
                // Guarded in the kernel, but neither pending nor a guarded
                // container's here: its `CGROUP` record was lost (a full
                // ring), or it was just let go. Let it go (again).
                Hold::NotPending => {
                    if let Err(e) = self.tracer.unguard_cgroup(cg) {
                        self.warn(&e.to_string());
                    }
                }
            }
        } else {
            self.on_failure(&ev);
        }
    }

    /// A failed write of a guarded container: a finding when new, else a
    /// repeat the counts catch.
    fn on_failure(&mut self, ev: &RawEvent) {
        let h = &ev.header;
        let (Some(errno), Some(op)) = (Errno::from_ret(h.ret), map_op(h.op, h.flags)) else {
            return;
        };
        let Some(c) = self
            .by_cgroup
            .get(&h.cgroup)
            .and_then(|id| self.containers.get_mut(id))
        else {
            return;
        };
        let path = ev.path_with(&|p: &CPath| c.links.get(p).cloned());
        if errno == Errno::Eacces && !c.under_writable_mount(&path) {
            return;
        }
        let key = FindingKey {
            container: c.facts.info.id.clone(),
            path,
            op,
            errno,
        };
        let comm = ev.comm();
        let proc = Arc::new(ProcRef {
            pid: h.tgid,
            comm: comm.clone(),
            uid: h.uid,
            gid: h.gid,
        });
        c.add(&key, &proc, is_log_open(h.flags));
        if !self.findings.record(key.clone(), h.key) {
            return;
        }
        self.metrics.failed(&c.workload, &key, 1);
        let (losses, stats) = self.tracer.losses().unwrap_or_default();
        let report = c.report(&losses, &stats);
        let mut fix = fix_for(&report, &key.path);
        if errno == Errno::Eacces && fix.docker.is_none() {
            fix = Fix {
                unmounted: Some(format!(
                    "{} is on a mount of the container that uid {} may not write: give \
                     the mount the owner and mode the process needs (a plan's mount \
                     options set them)",
                    key.path.display(),
                    h.uid
                )),
                ..Fix::default()
            };
        }
        let line = Line::Finding {
            schema_version: LINE_SCHEMA_VERSION,
            container: container_ref(c),
            path: key.path.display(),
            operation: key.op,
            errno: key.errno,
            process: Process {
                comm: comm.to_string(),
                pid: h.tgid,
            },
            time: rfc3339(SystemTime::now()),
            count: 1,
            fix: Box::new(fix),
        };
        (self.emit)(&line);
    }

    /// Reads the kernel's counts of every live dedupe key.
    fn read_counts(&mut self) {
        let counts = match self.tracer.dedup_counts() {
            Ok(c) => c,
            Err(e) => {
                self.warn(&e.to_string());
                return;
            }
        };
        for k in self.findings.live_keys() {
            if let Some(d) = counts.get(&k) {
                self.findings.set_count(k, d.count);
            }
        }
    }

    /// A count line for every finding that grew since its last line.
    fn send_counts(&mut self) {
        self.read_counts();
        if let Ok((l, _)) = self.tracer.losses() {
            self.metrics.losses(&l);
        }
        for (f, n) in self.findings.changed() {
            self.count_line(&f, n);
        }
    }

    fn count_line(&mut self, f: &FindingKey, n: u64) {
        let Some(c) = self.containers.get_mut(&f.container) else {
            return;
        };
        c.set_count(f, n);
        self.metrics.failed(&c.workload, f, n);
        let line = Line::Count {
            schema_version: LINE_SCHEMA_VERSION,
            container: container_ref(c),
            path: f.path.display(),
            operation: f.op,
            errno: f.errno,
            count: n,
        };
        (self.emit)(&line);
    }

    /// Writes one report per workload under `-o DIR`.
    fn write_reports(&mut self) {
        let Some(dir) = self.cfg.out_dir.clone() else {
            return;
        };
        match self.reports(&dir) {
            Ok(written) => self.summary.reports = written,
            Err(e) => eprintln!("roprof: guard: {e}"),
        }
    }

    fn reports(&self, dir: &Path) -> Result<Vec<PathBuf>, GuardError> {
        let (losses, stats) = self.tracer.losses().unwrap_or_default();
        let mut by_workload: std::collections::BTreeMap<&str, Vec<&Guarded>> =
            std::collections::BTreeMap::new();
        for c in self.containers.values() {
            by_workload.entry(&c.workload).or_default().push(c);
        }
        let mut written = Vec::new();
        for (w, cs) in by_workload {
            let sets: Vec<Vec<PathObservation>> = cs
                .iter()
                .map(|c| c.observations.values().cloned().collect())
                .collect();
            let obs = workload::merge(&sets.iter().map(Vec::as_slice).collect::<Vec<_>>());
            let names: Vec<&str> = cs.iter().map(|c| c.facts.info.name.as_str()).collect();
            let note = format!(
                "made by roprof guard from the failed writes of workload {w} (containers: {})",
                names.join(", ")
            );
            let report = report_for(&cs[0].image, cs[0], obs, vec![note], &losses, &stats);
            let path = dir.join(format!("{}.json", workload::dir_name(w)));
            write_report(&report, &path)?;
            written.push(path);
        }
        Ok(written)
    }

    /// The last counts and reports, then the programs are unloaded.
    async fn end(mut self) -> Result<Summary, GuardError> {
        self.read_counts();
        // Every finding that grew gets a last count line, whether or not
        // the last tick sent the same number: the last line of a key is
        // its total.
        let _ = self.findings.changed();
        for (f, n) in self.findings.grown() {
            self.count_line(&f, n);
        }
        self.write_reports();
        self.summary.findings = self.findings.len();
        self.summary.failures = self.findings.all().iter().map(|(_, n)| n).sum();
        self.summary.losses = self.tracer.losses().map(|(l, _)| l).unwrap_or_default();
        let tracer = self.tracer;
        // Detaching waits for RCU grace periods: off the async threads.
        let _ = tokio::task::spawn_blocking(move || drop(tracer)).await;
        if let Source::Docker(engine) = &self.source {
            interrupt::remove_all(engine).await;
        }
        Ok(self.summary)
    }
}

fn container_ref(c: &Guarded) -> ContainerRef {
    ContainerRef {
        id: c.facts.info.id.clone(),
        name: c.facts.info.name.clone(),
        image: c.facts.info.image.clone(),
        workload: c.workload.clone(),
    }
}

/// Writes `report` as JSON through a temporary file, so a reader never
/// sees half of it.
fn write_report(report: &crate::model::Report, path: &Path) -> Result<(), GuardError> {
    let text = crate::render::render(report, crate::render::Format::Json)?;
    let tmp = path.with_extension("json.tmp");
    let io = |source| GuardError::Output {
        path: path.to_path_buf(),
        source,
    };
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
