//! `cgroup_mkdir`: the containers' cgroup ids, learnt as the runtime creates
//! them (before any process of the container runs: the runtime creates the
//! cgroup, then moves its init into it). In guard mode the new cgroup is
//! provisionally guarded here, so that no failed write of a container's
//! first milliseconds waits for userspace to hear of the container.

use aya_ebpf::{helpers::generated as bh, macros::raw_tracepoint, programs::RawTracePointContext};
use profiler_common::{
    GUARDED_PENDING, ID_MAX, Offsets, PATH_MAX, SCOPE_ALL, SCOPE_GUARD, SCOPE_IDS, kind,
};

use crate::{
    event::{fill_header, submit},
    guard::GUARDED,
    maps::{CONTAINER_IDS, SCRATCH, TARGET_CGROUPS},
    mem::{config, rk},
};

/// Raw tracepoint `cgroup_mkdir(struct cgroup *cgrp, const char *path)`:
/// learns a container's cgroup v2 id the moment the runtime creates it.
/// Raw, so that attaching it needs no tracefs (the classic tracepoint's
/// record layout is only published there).
#[raw_tracepoint(tracepoint = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: RawTracePointContext) -> u32 {
    match try_cgroup_mkdir(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

/// Is the cgroup whose kernfs node is `kn` a container of `CONTAINER_IDS`?
///
/// The leaf name is looked up whole: userspace inserts every form a
/// runtime gives it for each id (`<id>`, `docker-<id>.scope`,
/// `libpod-<id>.scope`, `libpod-<id>`, `cri-containerd-<id>.scope`,
/// `crio-<id>.scope`), so no parsing loop runs here (byte loops with early
/// exits over a path multiply the verifier's states past its budget).
/// crun puts the processes in a `container` child of that cgroup, which
/// stands for its parent.
#[inline(always)]
fn names_container(o: &Offsets, kn: u64) -> bool {
    let mut key = [0u8; ID_MAX];
    if read_name(o, kn, &mut key).is_err() {
        return false;
    }
    if CONTAINER_IDS.get_ptr(key).is_some() {
        return true;
    }
    if key[..10] != *b"container\0" {
        return false;
    }
    let Ok(parent) = rk::<u64>(kn + o.kernfs_parent) else {
        return false;
    };
    key = [0u8; ID_MAX];
    read_name(o, parent, &mut key).is_ok() && CONTAINER_IDS.get_ptr(key).is_some()
}

/// Reads a kernfs node's name (NUL-terminated, the rest of `key` stays 0).
#[inline(always)]
fn read_name(o: &Offsets, kn: u64, key: &mut [u8; ID_MAX]) -> Result<(), i64> {
    let name = rk::<u64>(kn + o.kernfs_name)?;
    // SAFETY: at most ID_MAX bytes into `key`.
    let n = unsafe {
        bh::bpf_probe_read_kernel_str(key.as_mut_ptr().cast(), ID_MAX as u32, name as *const _)
    };
    if n <= 1 { Err(-1) } else { Ok(()) }
}

pub(crate) fn try_cgroup_mkdir(ctx: &RawTracePointContext) -> Result<(), i64> {
    let Some(cfg) = config() else { return Ok(()) };
    let mode = cfg.scope_mode;
    if mode != SCOPE_IDS && mode != SCOPE_ALL && mode != SCOPE_GUARD {
        return Ok(());
    }
    let o = &cfg.offsets;
    let cgrp: u64 = ctx.arg(0);
    let path: u64 = ctx.arg(1);
    let root = rk::<u64>(cgrp + o.cgroup_root)?;
    if rk::<i32>(root + o.cgroup_root_hierarchy_id)? != 0 {
        return Ok(()); // a cgroup v1 hierarchy; ids there are not v2 ids
    }
    let kn = rk::<u64>(cgrp + o.cgroup_kn)?;
    let id = rk::<u64>(kn + o.kernfs_id)?;
    if mode == SCOPE_IDS && !names_container(o, kn) {
        return Ok(());
    }
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU scratch slot owned by this invocation; the path is
    // read into its data area (PATH_MAX <= DATA_SIZE).
    let evr = unsafe { &mut *ev };
    let buf = evr.data.as_mut_ptr();
    // SAFETY: at most PATH_MAX bytes into data[0..PATH_MAX].
    let n = unsafe { bh::bpf_probe_read_kernel_str(buf.cast(), PATH_MAX as u32, path as *const _) };
    if n <= 1 || n as usize > PATH_MAX {
        return Ok(());
    }
    if mode == SCOPE_GUARD {
        // Every new cgroup: userspace tells the containers' apart from the
        // record's path and removes the rest (a full map only means a
        // container is guarded from its start event on, as before).
        let _ = GUARDED.insert(id, GUARDED_PENDING, 0);
    } else {
        let _ = TARGET_CGROUPS.insert(id, 1, 0);
    }
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    fill_header(&mut evr.header, kind::CGROUP, 0, 0, pid_tgid);
    evr.header.key = id;
    evr.header.cgroup = id;
    // The path (with its NUL) is the record's name.
    evr.header.name_len = n as u32;
    submit(ev);
    Ok(())
}
