//! `cgroup_mkdir`: the container's cgroup id, learnt as the runtime creates it.

use crate::*;

/// Raw tracepoint `cgroup_mkdir(struct cgroup *cgrp, const char *path)`:
/// learns the container's cgroup v2 id the moment the runtime creates it.
/// Raw, so that attaching it needs no tracefs (the classic tracepoint's
/// record layout is only published there).
#[raw_tracepoint(tracepoint = "cgroup_mkdir")]
pub fn cgroup_mkdir(ctx: RawTracePointContext) -> u32 {
    match try_cgroup_mkdir(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

/// Length of a full container id (hex).
pub(crate) const ID_LEN: usize = 64;

pub(crate) fn try_cgroup_mkdir(ctx: &RawTracePointContext) -> Result<(), i64> {
    let Some(cfg) = config() else { return Ok(()) };
    if cfg.match_container_id == 0 {
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
    let Some(want) = CONTAINER_ID.get(0) else {
        return Ok(());
    };
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU scratch slot owned by this invocation; the path is
    // read into its data area (PATH_MAX <= DATA_SIZE).
    let evr = unsafe { &mut *ev };
    let buf = evr.data.as_mut_ptr();
    // SAFETY: at most PATH_MAX bytes into data[0..PATH_MAX].
    let n = unsafe { bh::bpf_probe_read_kernel_str(buf.cast(), PATH_MAX as u32, path as *const _) };
    if n <= 0 {
        return Ok(());
    }
    let len = n as usize; // includes the NUL
    // The leaf is `<id>` (cgroupfs driver) or `docker-<id>.scope` /
    // `libpod-<id>.scope` (systemd driver): compare the 64 bytes that end
    // either at the NUL or 6 bytes (".scope") before it.
    let mut matched = false;
    let mut variant = 0usize;
    while variant < 2 {
        let tail = if variant == 0 { 1 } else { 7 };
        variant += 1;
        if len < ID_LEN + tail || len > PATH_MAX {
            continue;
        }
        let start = (len - tail - ID_LEN) & (PATH_MAX - 1);
        let mut eq = true;
        let mut i = 0;
        while i < ID_LEN {
            // SAFETY: start < PATH_MAX and i < 64: inside the data area.
            if unsafe { *buf.add(start + i) } != want[i] {
                eq = false;
                break;
            }
            i += 1;
        }
        if eq {
            matched = true;
            break;
        }
    }
    if !matched {
        return Ok(());
    }
    let _ = TARGET_CGROUPS.insert(id, 1, 0);
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    fill_header(&mut evr.header, kind::CGROUP, 0, 0, pid_tgid);
    evr.header.key = id;
    submit(ev);
    Ok(())
}
