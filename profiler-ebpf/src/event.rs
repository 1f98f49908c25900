//! Building ring-buffer records: headers, object records (the file
//! behind an fd) and named records (a name relative to a directory).

use aya_ebpf::helpers::generated as bh;
use profiler_common::{
    Config, EventBuf, EventHeader, PATH_MAX, STATUS_BASE_DETACHED, STATUS_BASE_IS_OBJECT,
    STATUS_NAME_ABSOLUTE, STATUS_NAME_TRUNCATED, counter, kind,
};

use crate::{
    dedupe::{hash_bytes, object_key, seen_before},
    maps::{AT_FDCWD, EVENTS, HEADER, SCRATCH, TRACED},
    mem::{count, current_task, dentry_ident, fd_file, read_path, rk},
    walk::request_walk,
};

#[inline(always)]
pub(crate) fn fill_header(h: &mut EventHeader, k: u32, opc: u32, ret: i64, pid_tgid: u64) {
    h.kind = k;
    h.op = opc;
    h.ret = ret;
    h.pid = pid_tgid as u32;
    h.tgid = (pid_tgid >> 32) as u32;
    // SAFETY: helpers without pointer arguments.
    let ug = unsafe { bh::bpf_get_current_uid_gid() };
    h.uid = ug as u32;
    h.gid = (ug >> 32) as u32;
    h.ts = unsafe { bh::bpf_ktime_get_ns() };
    h.comm = aya_ebpf::helpers::bpf_get_current_comm().unwrap_or([0; 16]);
    h.status = 0;
    h.base_len = 0;
    h.name_len = 0;
    h.flags = 0;
    h.mode = 0;
    h.ident = 0;
    h.key = 0;
    h.ppid = 0;
    // `cgroup` is left alone: it is stamped once per program run by
    // `stamp_cgroup` (a map lookup inlined into each of `emit`'s record
    // builders costs the verifier ~270k instructions).
}

/// Writes the current process's container (its `TRACED` value) into the
/// scratch header, for every record the tail-called stages build from it:
/// they run on this CPU, in turn, before anything else can use the slot.
#[inline(always)]
pub(crate) fn stamp_cgroup(pid_tgid: u64) {
    if let Some(ev) = SCRATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU scratch slot; the map value is a plain u64.
        unsafe {
            (*ev).header.cgroup = TRACED.get_ptr((pid_tgid >> 32) as u32).map_or(0, |v| *v);
        }
    }
}

/// [`stamp_cgroup`] with the container given (`guard_exit`: the caller's
/// cgroup, found in `GUARDED`).
#[inline(always)]
pub(crate) fn stamp_cgroup_id(cg: u64) {
    if let Some(ev) = SCRATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU scratch slot.
        unsafe { (*ev).header.cgroup = cg };
    }
}

#[inline(always)]
pub(crate) fn submit(ev: *mut EventBuf) {
    // SAFETY: ev is the per-CPU scratch slot.
    let h = unsafe { &(*ev).header };
    let mut len = HEADER + h.name_len as usize + h.base_len as usize;
    if len > core::mem::size_of::<EventBuf>() {
        len = core::mem::size_of::<EventBuf>();
    }
    // SAFETY: len is clamped to the size of the scratch slot.
    let bytes = unsafe { core::slice::from_raw_parts(ev.cast::<u8>(), len) };
    if EVENTS.output::<[u8]>(bytes, 0).is_err() {
        count(counter::RINGBUF_DROPS);
    } else {
        count(counter::EVENTS_SENT);
    }
}

/// Builds the record for an object operation already found new by
/// [`object_is_new`](crate::dedupe::object_is_new).
#[inline(always)]
pub(crate) fn emit_object(
    cfg: &Config,
    opc: u32,
    ret: i64,
    pid_tgid: u64,
    file: u64,
    flags: u64,
    mode: u64,
) {
    let o = &cfg.offsets;
    let (mnt, dentry) = read_path(o, file + o.file_path);
    if dentry == 0 {
        count(counter::READ_ERRORS);
        return;
    }
    let ident = dentry_ident(o, dentry);
    if ident == 0 {
        count(counter::READ_ERRORS);
        return;
    }
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch slot owned by this program invocation.
    let evr = unsafe { &mut *ev };
    // The container stamped before the tail call: the key is the one
    // `object_is_new` checked.
    let key = object_key(opc, ret, ident, flags, evr.header.cgroup);
    fill_header(&mut evr.header, kind::PATH_OP, opc, ret, pid_tgid);
    evr.header.key = key;
    evr.header.ident = ident;
    evr.header.flags = flags as u32;
    evr.header.mode = mode as u32;
    evr.header.status = STATUS_BASE_IS_OBJECT;
    request_walk(mnt, dentry, 0);
}

/// Emits a record for `name` (a user pointer, or a kernel one when
/// `kernel_name`) relative to `dirfd`.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "one job's fields, passed in registers; a struct would go through the 512-byte stack"
)]
pub(crate) fn emit_named(
    cfg: &Config,
    opc: u32,
    ret: i64,
    pid_tgid: u64,
    dirfd: i64,
    name_ptr: u64,
    name_max: u32,
    flags: u64,
    mode: u64,
    kernel_name: bool,
) {
    let o = &cfg.offsets;
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch slot owned by this program invocation.
    let evr = unsafe { &mut *ev };
    let buf = evr.data.as_mut_ptr();
    let max = if name_max > PATH_MAX as u32 {
        PATH_MAX as u32
    } else {
        name_max
    };
    // SAFETY: reads at most PATH_MAX bytes into data[0..PATH_MAX].
    let n = unsafe {
        if kernel_name {
            bh::bpf_probe_read_kernel_str(buf.cast(), max, name_ptr as *const _)
        } else {
            bh::bpf_probe_read_user_str(buf.cast(), max, name_ptr as *const _)
        }
    };
    let mut status = 0u32;
    let name_len: usize = if n <= 0 {
        status |= STATUS_NAME_TRUNCATED;
        0
    } else {
        let n = n as usize;
        if n > PATH_MAX { PATH_MAX } else { n }
    };
    if name_len == max as usize && max == PATH_MAX as u32 {
        // The helper stopped at PATH_MAX: the name may be longer.
        status |= STATUS_NAME_TRUNCATED;
        count(counter::TRUNCATED_PATHS);
    }
    // SAFETY: buf points at data[0]; name_len <= PATH_MAX.
    let absolute = name_len > 0 && unsafe { *buf } == b'/';
    let (mnt, dentry) = if absolute {
        (0, 0)
    } else if dirfd == AT_FDCWD || dirfd as i32 == AT_FDCWD as i32 {
        match rk::<u64>(current_task() + o.task_fs) {
            Ok(fs) => read_path(o, fs + o.fs_pwd),
            Err(_) => (0, 0),
        }
    } else {
        let f = fd_file(o, current_task(), i64::from(dirfd as i32));
        if f == 0 {
            (0, 0)
        } else {
            read_path(o, f + o.file_path)
        }
    };
    let dir_ident = if dentry == 0 {
        0
    } else {
        dentry_ident(o, dentry)
    };
    let mut key = object_key(opc, ret, dir_ident, flags, evr.header.cgroup);
    key = hash_bytes(key, buf, name_len);
    if seen_before(cfg, key, pid_tgid) {
        return;
    }
    fill_header(&mut evr.header, kind::PATH_OP, opc, ret, pid_tgid);
    evr.header.key = key;
    evr.header.flags = flags as u32;
    evr.header.mode = mode as u32;
    evr.header.name_len = name_len as u32;
    if absolute {
        status |= STATUS_NAME_ABSOLUTE;
    } else if dentry == 0 {
        status |= STATUS_BASE_DETACHED;
    }
    evr.header.status = status;
    if absolute || dentry == 0 {
        submit(ev);
    } else {
        request_walk(mnt, dentry, name_len as u64);
    }
}
