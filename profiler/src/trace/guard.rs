//! The tracer in guard mode (`roprof guard`): `guard_exit` on `sys_exit`,
//! with the `emit`/`walk_prog` stages it tail-calls, the `GUARDED` set of
//! container cgroups it reports failed writes of, and `cgroup_mkdir`, which
//! adds each new cgroup to that set as pending (`SCOPE_GUARD`) and reports
//! it with its path.

use std::collections::BTreeMap;

use aya::{
    maps::{Array, HashMap, RingBuf},
    programs::RawTracePoint,
};
use profiler_common::{
    Config, GUARDED_ON, JUMP_EMIT, JUMP_WALK, MAP_CONFIG, MAP_EVENTS, MAP_GUARDED, MAP_JUMP,
    PROG_CGROUP_MKDIR, PROG_EMIT, PROG_GUARD_EXIT, PROG_WALK, SCOPE_GUARD,
};

use super::{
    EBPF_OBJECT, Scope, TraceError, Tracer, btf, load, load_object, map_err, prog_err, program,
    task_btf_wanted, write_specs,
};

/// Loads `guard_exit`, its stages and `cgroup_mkdir`.
fn load(
    offsets: &profiler_common::Offsets,
    scope: &Scope,
    task_btf: bool,
    verified: &mut BTreeMap<String, u32>,
) -> Result<aya::Ebpf, TraceError> {
    // Guard's hook stays the untyped raw tracepoint: it reads `pt_regs`
    // only for the few syscalls that failed with EROFS or EACCES.
    let mut ebpf = load_object(offsets, scope, task_btf, false)?;
    let raw = load::Kind::Raw;
    load::load_all(
        &mut ebpf,
        &[
            (PROG_EMIT, raw),
            (PROG_WALK, raw),
            (PROG_GUARD_EXIT, raw),
            (PROG_CGROUP_MKDIR, raw),
        ],
        verified,
    )?;
    load::set_stages(
        &mut ebpf,
        MAP_JUMP,
        [(JUMP_EMIT, PROG_EMIT), (JUMP_WALK, PROG_WALK)],
    )?;
    Ok(ebpf)
}

impl Tracer {
    /// Loads and attaches guard's programs, with in-kernel dedupe on: no
    /// running container is guarded until [`Tracer::guard_cgroup`]; each
    /// cgroup created from now on is, pending, until userspace guards it
    /// for good or [`Tracer::unguard_cgroup`]s it.
    pub fn start_guard(ringbuf_bytes: Option<u32>) -> Result<Self, TraceError> {
        if EBPF_OBJECT.is_empty() {
            return Err(TraceError::NoObject);
        }
        let offsets = btf::Btf::from_sys_fs()?.offsets()?;
        let scope = Scope {
            ringbuf_bytes,
            ..Scope::default()
        };
        let mut task_btf = task_btf_wanted();
        let mut verified = BTreeMap::new();
        let mut ebpf = match load(&offsets, &scope, task_btf, &mut verified) {
            Ok(e) => e,
            Err(_) if task_btf => {
                task_btf = false;
                verified.clear();
                load(&offsets, &scope, false, &mut verified)?
            }
            Err(e) => return Err(e),
        };
        let cfg = Config {
            offsets,
            dedupe: 1,
            scope_mode: SCOPE_GUARD,
            ..Config::default()
        };
        {
            let mut a: Array<_, Config> = Array::try_from(
                ebpf.map_mut(MAP_CONFIG)
                    .ok_or(TraceError::MissingMap(MAP_CONFIG))?,
            )
            .map_err(map_err(MAP_CONFIG))?;
            a.set(0, cfg, 0).map_err(map_err(MAP_CONFIG))?;
        }
        write_specs(&mut ebpf)?;
        let ring = RingBuf::try_from(
            ebpf.take_map(MAP_EVENTS)
                .ok_or(TraceError::MissingMap(MAP_EVENTS))?,
        )
        .map_err(map_err(MAP_EVENTS))?;
        program::<RawTracePoint>(&mut ebpf, PROG_GUARD_EXIT)?
            .attach("sys_exit")
            .map_err(prog_err(
                PROG_GUARD_EXIT,
                "attach to the raw tracepoint sys_exit",
            ))?;
        // After `guard_exit`: a cgroup it adds is recorded from its first
        // process's first syscall.
        program::<RawTracePoint>(&mut ebpf, PROG_CGROUP_MKDIR)?
            .attach("cgroup_mkdir")
            .map_err(prog_err(
                PROG_CGROUP_MKDIR,
                "attach to the raw tracepoint cgroup_mkdir",
            ))?;
        Ok(Tracer {
            ebpf,
            ring: Some(ring),
            attached: 2,
            verified,
            task_btf,
        })
    }

    fn guarded(&mut self) -> Result<HashMap<&mut aya::maps::MapData, u64, u32>, TraceError> {
        HashMap::try_from(
            self.ebpf
                .map_mut(MAP_GUARDED)
                .ok_or(TraceError::MissingMap(MAP_GUARDED))?,
        )
        .map_err(map_err(MAP_GUARDED))
    }

    /// Reports the failed writes of the processes in cgroup `id` from now on.
    pub fn guard_cgroup(&mut self, id: u64) -> Result<(), TraceError> {
        self.guarded()?
            .insert(id, GUARDED_ON, 0)
            .map_err(map_err(MAP_GUARDED))
    }

    /// Stops reporting cgroup `id` (its container is gone); absent is fine.
    pub fn unguard_cgroup(&mut self, id: u64) -> Result<(), TraceError> {
        let _ = self.guarded()?.remove(&id);
        Ok(())
    }

    /// Forgets the dedupe entries of `keys` (a container that is gone: its
    /// keys carry its cgroup id and cannot recur).
    pub fn forget_dedup(&mut self, keys: &[u64]) -> Result<(), TraceError> {
        let mut m: HashMap<_, u64, profiler_common::DedupValue> = HashMap::try_from(
            self.ebpf
                .map_mut(profiler_common::MAP_DEDUP)
                .ok_or(TraceError::MissingMap(profiler_common::MAP_DEDUP))?,
        )
        .map_err(map_err(profiler_common::MAP_DEDUP))?;
        for k in keys {
            let _ = m.remove(k);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Tracer;

    /// Needs root and a kernel with BTF: `cargo test -p profiler --lib
    /// guard_exit_loads -- --ignored --nocapture`.
    #[test]
    #[ignore = "loads BPF programs: needs root"]
    fn guard_exit_loads_and_attaches() {
        let t = Tracer::start_guard(None)
            .expect("guard_exit, its stages and cgroup_mkdir load and attach");
        let n = t.verified_insns();
        eprintln!("verified instructions: {n:?}");
        assert!(
            n.get(profiler_common::PROG_GUARD_EXIT)
                .is_some_and(|v| *v < 800_000),
            "guard_exit verified under the 800k guard: {n:?}"
        );
        assert!(
            n.contains_key(profiler_common::PROG_CGROUP_MKDIR),
            "cgroup_mkdir is loaded: {n:?}"
        );
        assert_eq!(t.attached(), 2, "guard_exit and cgroup_mkdir are attached");
    }
}
