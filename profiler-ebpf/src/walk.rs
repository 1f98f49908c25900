//! The path walk: from a dentry up to the task's root, across mounts.
//!
//! The verifier budget is tight here: the walk runs in its own tail-called
//! program (`walk_prog`) with its loop cursor in map memory, so each
//! iteration is explored once; any branch added inside the loop multiplies
//! what `emit` and `walk_prog` cost to verify (E2BIG at load when over).

use aya_ebpf::helpers::generated as bh;
use profiler_common::{
    BASE_LIMIT, Config, MAX_DEPTH, NAME_MAX_NUL, Offsets, PATH_MAX, STATUS_BASE_DETACHED,
    STATUS_BASE_TRUNCATED, counter,
};

use crate::{
    event::submit,
    maps::{JOBS, SCRATCH},
    mem::{count, current_task, read_path, rk},
};

/// The walk's cursor, kept in map memory (the scratch slot's `base_len`)
/// rather than in a register: the verifier does not track map contents, so
/// every loop iteration reaches the same abstract state whatever the
/// component lengths were, and state pruning keeps verification linear in
/// `MAX_DEPTH` instead of exponential. Volatile so the compiler keeps every
/// access in memory too.
#[derive(Clone, Copy)]
struct Cursor(*mut u32);

impl Cursor {
    #[inline(always)]
    fn get(self) -> u32 {
        // SAFETY: the pointer is into the per-CPU scratch slot owned by this
        // program invocation.
        unsafe { core::ptr::read_volatile(self.0) }
    }

    #[inline(always)]
    fn set(self, v: u32) {
        // SAFETY: as in `get`.
        unsafe { core::ptr::write_volatile(self.0, v) }
    }
}

/// Walks from (`mnt`, `dentry`) up to the current task's root, writing the
/// component names leaf-first, each NUL-terminated, at `buf[start..]`.
/// Returns (bytes written, status bits).
///
/// Bounds: `start` <= `PATH_MAX` and every write lands at
/// `start + (off & (BASE_LIMIT - 1))` with at most `NAME_MAX_NUL` bytes, so the
/// verifier sees every access inside `DATA_SIZE`.
#[inline(always)]
pub(crate) fn walk(
    o: &Offsets,
    buf: *mut u8,
    start: usize,
    mnt: u64,
    dentry: u64,
    cell: *mut u32,
) -> (u32, u32) {
    let mut status = 0u32;
    let Ok(fs) = rk::<u64>(current_task() + o.task_fs) else {
        return (0, STATUS_BASE_DETACHED);
    };
    let (root_mnt, root_dentry) = read_path(o, fs + o.fs_root);
    let mut mnt = mnt;
    let mut dentry = dentry;
    let mut mount = mnt.wrapping_sub(o.mount_mnt);
    // The cursor lives in map memory (see `Cursor`).
    let cur = Cursor(cell);
    cur.set(0);
    let start = if start > PATH_MAX { PATH_MAX } else { start };
    let mut i = 0u32;
    // MAX_DEPTH bounds the loop for the verifier (see profiler-common).
    while i < MAX_DEPTH {
        i += 1;
        if dentry == root_dentry && mnt == root_mnt {
            return (cur.get(), status);
        }
        let Ok(mnt_root) = rk::<u64>(mnt + o.vfsmount_root) else {
            count(counter::READ_ERRORS);
            return (cur.get(), status | STATUS_BASE_DETACHED);
        };
        if dentry == mnt_root {
            let Ok(parent) = rk::<u64>(mount + o.mount_parent) else {
                return (cur.get(), status | STATUS_BASE_DETACHED);
            };
            if parent == mount {
                // Global root reached without meeting the task's root: the
                // object is outside the container's root (e.g. a host fd).
                return (cur.get(), status | STATUS_BASE_DETACHED);
            }
            dentry = rk::<u64>(mount + o.mount_mountpoint).unwrap_or(0);
            mount = parent;
            mnt = mount + o.mount_mnt;
            continue;
        }
        let Ok(parent) = rk::<u64>(dentry + o.dentry_parent) else {
            return (cur.get(), status | STATUS_BASE_DETACHED);
        };
        if parent == dentry || parent == 0 {
            return (cur.get(), status | STATUS_BASE_DETACHED);
        }
        let off = cur.get() as usize;
        if off >= BASE_LIMIT {
            status |= STATUS_BASE_TRUNCATED;
            return (cur.get(), status);
        }
        let Ok(name) = rk::<u64>(dentry + o.dentry_name) else {
            return (cur.get(), status | STATUS_BASE_DETACHED);
        };
        let at = start + (off & (BASE_LIMIT - 1));
        // SAFETY: at + NAME_MAX_NUL <= PATH_MAX + BASE_LIMIT + NAME_MAX_NUL <= DATA_SIZE.
        let n = unsafe {
            bh::bpf_probe_read_kernel_str(buf.add(at).cast(), NAME_MAX_NUL as u32, name as *const _)
        };
        if n <= 0 {
            count(counter::READ_ERRORS);
            return (cur.get(), status | STATUS_BASE_DETACHED);
        }
        cur.set((off + n as usize) as u32);
        dentry = parent;
    }
    (cur.get(), status | STATUS_BASE_TRUNCATED)
}

/// Records that the event in SCRATCH still needs its base path walked.
#[inline(always)]
pub(crate) fn request_walk(mnt: u64, dentry: u64, start: u64) {
    if let Some(j) = JOBS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot.
        unsafe {
            (*j).walk_mnt = mnt;
            (*j).walk_dentry = dentry;
            (*j).walk_start = start;
        }
    }
}

/// Walks the pending base path into the event in SCRATCH and sends it.
///
/// Every input is read back from map memory, so the verifier sees a single
/// abstract entry state here, whichever branch queued the walk.
#[inline(always)]
pub(crate) fn finish_walk(cfg: &Config) {
    let Some(j) = JOBS.get_ptr_mut(0) else { return };
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU slots owned by this program chain.
    let (j, evr) = unsafe { (&mut *j, &mut *ev) };
    let dentry = j.walk_dentry;
    if dentry == 0 {
        return;
    }
    j.walk_dentry = 0;
    let start = j.walk_start as usize;
    let start = if start > PATH_MAX { PATH_MAX } else { start };
    let (bl, st) = walk(
        &cfg.offsets,
        evr.data.as_mut_ptr(),
        start,
        j.walk_mnt,
        dentry,
        &raw mut evr.header.base_len,
    );
    evr.header.base_len = bl;
    evr.header.status |= st;
    if st & STATUS_BASE_TRUNCATED != 0 {
        count(counter::TRUNCATED_PATHS);
    }
    submit(ev);
}
