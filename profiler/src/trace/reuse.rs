//! One loaded tracer for every run of a roprof process.
//!
//! Loading and verifying the programs costs about two seconds; a closed
//! loop (verify, repair, iterate, leave-one-out) runs the image several
//! times. So the programs are loaded once, armed for each run's container
//! with [`Tracer::reset_for`], and the ring buffer goes back to the tracer
//! after each drain ([`drain_ring`], [`Tracer::put_ring`]).

use aya::maps::{Array, HashMap, MapData, PerCpuArray, PerCpuValues, RingBuf};
use profiler_common::{
    Config, Counters, DedupValue, FileStats, ID_MAX, MAP_CONFIG, MAP_CONTAINER_IDS, MAP_COUNTERS,
    MAP_DEDUP, MAP_FILES, MAP_TARGET_CGROUPS, MAP_TRACED, MAP_WAKEUPS, SCOPE_NONE, Wakeup, counter,
};
use tokio::io::unix::AsyncFd;

use super::{Scope, Sink, TraceError, Tracer, collect, map_err};

/// Deletes every entry of a hash map (keys first: deleting while walking
/// with `get_next_key` can restart the walk).
fn clear<K: aya::Pod, V: aya::Pod>(
    ebpf: &mut aya::Ebpf,
    name: &'static str,
) -> Result<(), TraceError> {
    let mut m: HashMap<_, K, V> =
        HashMap::try_from(ebpf.map_mut(name).ok_or(TraceError::MissingMap(name))?)
            .map_err(map_err(name))?;
    let keys: Vec<K> = m.keys().collect::<Result<_, _>>().map_err(map_err(name))?;
    for k in keys {
        // A key that vanished meanwhile (an exiting process) is fine.
        let _ = m.remove(&k);
    }
    Ok(())
}

impl Tracer {
    /// Arms a loaded tracer for a new run: forgets everything the previous
    /// run left in the kernel (target cgroups, traced processes, in-flight
    /// syscalls, dedupe and file entries, counters), discards records still
    /// in the ring, then selects the processes `scope` names. The hooks stay
    /// attached throughout; with no target they record nothing.
    pub fn reset_for(&mut self, scope: &Scope) -> Result<(), TraceError> {
        // Stop matching first, so that nothing new is targeted while the
        // maps are cleared.
        self.set_mode(SCOPE_NONE)?;
        clear::<u64, u32>(&mut self.ebpf, MAP_TARGET_CGROUPS)?;
        clear::<u32, u64>(&mut self.ebpf, MAP_TRACED)?;
        clear::<[u8; ID_MAX], u32>(&mut self.ebpf, MAP_CONTAINER_IDS)?;
        clear::<u64, DedupValue>(&mut self.ebpf, MAP_DEDUP)?;
        clear::<u64, FileStats>(&mut self.ebpf, MAP_FILES)?;
        clear::<u64, Wakeup>(&mut self.ebpf, MAP_WAKEUPS)?;
        {
            let mut a: PerCpuArray<_, Counters> = PerCpuArray::try_from(
                self.ebpf
                    .map_mut(MAP_COUNTERS)
                    .ok_or(TraceError::MissingMap(MAP_COUNTERS))?,
            )
            .map_err(map_err(MAP_COUNTERS))?;
            let cpus = a.get(&0, 0).map_err(map_err(MAP_COUNTERS))?.len();
            let zeros = PerCpuValues::try_from(vec![
                Counters {
                    values: [0; counter::COUNT]
                };
                cpus
            ])
            .map_err(|e| TraceError::Reset {
                map: MAP_COUNTERS,
                reason: e.to_string(),
            })?;
            a.set(0, zeros, 0).map_err(map_err(MAP_COUNTERS))?;
        }
        if let Some(ring) = self.ring.as_mut() {
            while ring.next().is_some() {}
        }
        super::seed_scope(&mut self.ebpf, scope)?;
        self.set_mode(scope.mode())?;
        Ok(())
    }

    /// Sets what `cgroup_mkdir` targets, keeping the rest of the
    /// configuration `start` wrote.
    fn set_mode(&mut self, mode: u32) -> Result<(), TraceError> {
        let mut a: Array<_, Config> = Array::try_from(
            self.ebpf
                .map_mut(MAP_CONFIG)
                .ok_or(TraceError::MissingMap(MAP_CONFIG))?,
        )
        .map_err(map_err(MAP_CONFIG))?;
        let mut cfg = a.get(&0, 0).map_err(map_err(MAP_CONFIG))?;
        cfg.scope_mode = mode;
        a.set(0, cfg, 0).map_err(map_err(MAP_CONFIG))
    }

    /// Gives the ring buffer back after a drain, for the next run.
    pub fn put_ring(&mut self, ring: RingBuf<MapData>) {
        self.ring = Some(ring);
    }
}

/// Drains `ring` into `collector` (a [`Collector`], or any [`Sink`], e.g.
/// one that routes records by container) until `stop` fires, then drains
/// what is left; returns the sink and the ring (see [`Tracer::put_ring`]).
pub async fn drain_ring<S: Sink>(
    ring: RingBuf<MapData>,
    mut collector: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
    progress: Option<tokio::sync::watch::Sender<collect::Progress>>,
) -> Result<(S, RingBuf<MapData>), TraceError> {
    // SAFETY: the RingBuf owns its map fd, which stays open and unchanged
    // until the RingBuf (owned by the AsyncFd) is dropped.
    let mut fd = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
        .map_err(|e| TraceError::Poll(e.into_parts().1))?;
    loop {
        tokio::select! {
            guard = fd.readable_mut() => {
                let mut guard = guard.map_err(TraceError::Poll)?;
                let ring = guard.get_inner_mut();
                while let Some(item) = ring.next() {
                    collector.push_bytes(&item);
                }
                guard.clear_ready();
                if let Some(p) = &progress {
                    let _ = p.send(collector.progress());
                }
            }
            _ = stop.changed() => break,
        }
    }
    let mut ring = fd.into_inner();
    while let Some(item) = ring.next() {
        collector.push_bytes(&item);
    }
    Ok((collector, ring))
}
