//! `roprof attach`: profile an already running container from now on. The
//! tracer is loaded for this one run, targeting the container's cgroup and
//! its current processes.

use std::time::Instant;

use super::{
    RunConfig, RunOutput, SessionError, bar, note, observe::Observation, phases::Stopwatch,
};
use crate::{
    model::Phase,
    runtime::Engine,
    trace::{Scope, Tracer, Wakeups},
};

/// Profiles an already running container from now on (`roprof attach`).
/// Every process of its cgroup is traced; the container is left running.
pub async fn attach(
    engine: &Engine,
    cfg: &RunConfig,
    container: &str,
) -> Result<RunOutput, SessionError> {
    let pb = bar(cfg.quiet, cfg.label.as_deref());
    let mut sw = Stopwatch::default();
    sw.enter(Phase::Inspect).await;
    let id = engine.resolve(container).await?;
    let pid = engine.pid(&id).await?;
    if pid <= 0 {
        return Err(SessionError::NotRunning(container.to_owned()));
    }
    let image_ref = engine.image_of(&id).await?;
    let image = engine.image_config(&image_ref).await?;
    sw.enter(Phase::Listing).await;
    note(&pb, cfg.quiet, "reading the container filesystem");
    let listing = engine.listing(&id).await?;
    let (cgroup_id, pids) = cgroup_of(pid)
        .map_err(|e| SessionError::Cgroup(format!("container {container} (pid {pid}): {e}")))?;
    sw.enter(Phase::Attach).await;
    note(&pb, cfg.quiet, "attaching eBPF programs");
    let t = Instant::now();
    let mut tracer = Tracer::start(&Scope {
        cgroup_ids: vec![cgroup_id],
        pids,
        ringbuf_bytes: cfg.ringbuf_bytes,
        pre_opened: true,
        wakeups: Wakeups::WaitsToo,
        ..Default::default()
    })?;
    let load_secs = t.elapsed().as_secs_f64();
    let run = Observation::begin(&mut tracer, &listing)?;
    let mut out = run
        .observe(
            engine,
            cfg,
            &id,
            image,
            listing,
            &pb,
            Instant::now(),
            false,
            &mut sw,
        )
        .await?;
    pb.finish_and_clear();
    out.stats.phases = sw.finish();
    out.stats.bpf_load_secs = load_secs;
    // Detaching waits for RCU grace periods: after the answer, not before.
    std::thread::spawn(move || drop(tracer));
    Ok(out)
}

/// cgroup v2 id (the directory's inode) and member pids of `pid`'s cgroup.
fn cgroup_of(pid: i64) -> Result<(u64, Vec<u32>), String> {
    use std::os::unix::fs::MetadataExt as _;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    let rel = crate::host::cgroup::v2_membership(&text).ok_or(
        "no cgroup v2 (unified) membership; roprof needs cgroup v2 or the hybrid unified hierarchy",
    )?;
    for dir in crate::host::cgroup::dirs_of(rel) {
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        let procs_file = dir.join("cgroup.procs");
        if !procs_file.exists() {
            continue;
        }
        let procs = std::fs::read_to_string(&procs_file).map_err(|e| e.to_string())?;
        let pids = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        return Ok((meta.ino(), pids));
    }
    Err(format!("cgroup {rel} not found under /sys/fs/cgroup"))
}
