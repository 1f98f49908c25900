//! roprof kernel side.
//!
//! Two generic programs, `sys_enter` and `sys_exit`, are attached to the
//! `raw_syscalls` raw tracepoints (one link each; no per-call perf record is
//! built, unlike the `syscalls:*` tracepoints). What each syscall means
//! (which argument is the dirfd, the name, the flags) comes from the `SPECS`
//! map that userspace fills, keyed by syscall number: the same verified code
//! serves every architecture and every syscall, and only tracepoints
//! (available everywhere, unlike fentry or BPF LSM) are needed.
//!
//! Scoping: a process is traced once it is in `TRACED`. It gets there by
//! exec'ing inside a target cgroup (so the runtime's setup inside the
//! container, before the entrypoint's exec, is not traced), or by being forked
//! by a traced process. The target cgroup id is learnt in the kernel from
//! `cgroup_mkdir` by matching the container id, so nothing between container
//! start and the first exec races with userspace.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]

use aya_ebpf::{
    helpers::generated as bh,
    macros::{map, raw_tracepoint},
    maps::{Array, HashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::RawTracePointContext,
};
use profiler_common::{
    BASE_LIMIT, Config, Counters, DATA_SIZE, DedupValue, EventBuf, EventHeader, FileStats,
    Inflight, JUMP_EMIT, JUMP_WALK, MAX_DEPTH, NAME_MAX_NUL, NO_ARG, Offsets, PATH_MAX, SPECS_LEN,
    STATUS_BASE_DETACHED, STATUS_BASE_IS_OBJECT, STATUS_BASE_TRUNCATED, STATUS_NAME_ABSOLUTE,
    STATUS_NAME_TRUNCATED, SyscallSpec, argkind, counter, kind, op, specflag,
};

/// 4 MiB: with in-kernel dedupe only distinct operations are sent (~200
/// bytes each), so ~20k can queue before userspace drains; `--ringbuf-bytes`
/// raises it. Its pages are mapped into roprof, so it is also most of its RSS.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);
#[map]
static TARGET_CGROUPS: HashMap<u64, u32> = HashMap::with_max_entries(64, 0);
#[map]
static TRACED: HashMap<u32, u32> = HashMap::with_max_entries(16384, 0);
#[map]
static SPECS: Array<SyscallSpec> = Array::with_max_entries(SPECS_LEN, 0);
#[map]
static INFLIGHT: HashMap<u64, Inflight> = HashMap::with_max_entries(16384, 0);
/// Not preallocated: 512k entries would pin ~50 MiB of kernel memory for runs
/// that touch a few hundred paths.
#[map]
static DEDUP: HashMap<u64, DedupValue> = HashMap::with_max_entries(524_288, BPF_F_NO_PREALLOC);
#[map]
static FILES: HashMap<u64, FileStats> = HashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);
#[map]
static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);
#[map]
static SCRATCH: PerCpuArray<EventBuf> = PerCpuArray::with_max_entries(1, 0);
#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);
#[map]
static CONTAINER_ID: Array<[u8; 64]> = Array::with_max_entries(1, 0);
/// Slot 0: the `emit` program. `sys_exit` queues path jobs and tail-calls it,
/// so the path walk and name hash are verified once, in a program of their
/// own, instead of once per call site (which exceeds the 1M-instruction
/// verifier budget).
#[map]
static JUMP: ProgramArray = ProgramArray::with_max_entries(4, 0);
#[map]
static JOBS: PerCpuArray<Jobs> = PerCpuArray::with_max_entries(1, 0);

const JOB_OBJECT: u32 = 1;
const JOB_NAMED: u32 = 2;
/// Like [`JOB_NAMED`], but the name is a kernel string (`bprm->filename`).
const JOB_NAMED_KERNEL: u32 = 3;

/// One event to build: the object behind `file`, or `name` relative to `dirfd`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Job {
    kind: u32,
    opc: u32,
    ret: i64,
    pid_tgid: u64,
    file: u64,
    dirfd: i64,
    name_ptr: u64,
    name_max: u32,
    _pad: u32,
    flags: u64,
    mode: u64,
}

/// Jobs queued by `sys_exit` for `emit` (two for rename/link-style calls).
#[repr(C)]
#[derive(Clone, Copy)]
struct Jobs {
    n: u32,
    next: u32,
    items: [Job; 2],
    /// Pending walk for the event in SCRATCH (0 = none): see `walk_prog`.
    walk_dentry: u64,
    walk_mnt: u64,
    walk_start: u64,
}

const BPF_F_NO_PREALLOC: u32 = 1;
const BPF_NOEXIST: u64 = 1;
const EEXIST: i64 = 17;
const AT_FDCWD: i64 = -100;
const AT_REMOVEDIR: u64 = 0x200;
const AT_EMPTY_PATH: u64 = 0x1000;
/// Open flags with write intent, widened for the 64-bit argument words.
const O_ACCMODE: u64 = profiler_common::O_ACCMODE as u64;
const O_CREAT: u64 = profiler_common::O_CREAT as u64;
const O_TRUNC: u64 = profiler_common::O_TRUNC as u64;
const O_APPEND: u64 = profiler_common::O_APPEND as u64;
const W_OK: u64 = 2;
const PROT_EXEC: u64 = 4;
const AF_UNIX: u16 = 1;
const SUN_PATH_MAX: u32 = 108;
const HEADER: usize = core::mem::size_of::<EventHeader>();

#[inline(always)]
fn count(idx: usize) {
    if let Some(c) = COUNTERS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe {
            if idx < counter::COUNT {
                (*c).values[idx] += 1;
            }
        }
    }
}

/// Reads a `T` from kernel memory at `addr`.
#[inline(always)]
fn rk<T: Copy>(addr: u64) -> Result<T, i64> {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    // SAFETY: the helper validates the source address; the destination is a
    // stack slot of exactly size_of::<T>() bytes.
    let r = unsafe {
        bh::bpf_probe_read_kernel(
            v.as_mut_ptr().cast(),
            core::mem::size_of::<T>() as u32,
            addr as *const _,
        )
    };
    if r < 0 {
        return Err(r);
    }
    // SAFETY: the helper filled all bytes on success.
    Ok(unsafe { v.assume_init() })
}

#[inline(always)]
fn config() -> Option<&'static Config> {
    CONFIG.get(0)
}

#[inline(always)]
fn current_task() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bh::bpf_get_current_task() }
}

#[inline(always)]
fn tgid_traced(tgid: u32) -> bool {
    TRACED.get_ptr(&tgid).is_some()
}

/// The `struct file *` behind `fd` of the current task, or 0.
#[inline(always)]
fn fd_file(o: &Offsets, fd: i64) -> u64 {
    if fd < 0 {
        return 0;
    }
    let Ok(files) = rk::<u64>(current_task() + o.task_files) else {
        return 0;
    };
    let Ok(fdt) = rk::<u64>(files + o.files_fdt) else {
        return 0;
    };
    let Ok(max) = rk::<u32>(fdt + o.fdt_max_fds) else {
        return 0;
    };
    if fd as u64 >= u64::from(max) {
        return 0;
    }
    let Ok(arr) = rk::<u64>(fdt + o.fdt_fd) else {
        return 0;
    };
    rk::<u64>(arr + (fd as u64) * 8).unwrap_or(0)
}

/// Reads a `struct path` (mnt, dentry).
#[inline(always)]
fn read_path(o: &Offsets, at: u64) -> (u64, u64) {
    let mnt = rk::<u64>(at + o.path_mnt).unwrap_or(0);
    let dentry = rk::<u64>(at + o.path_dentry).unwrap_or(0);
    (mnt, dentry)
}

/// Identity of a directory entry for dedupe keys and `FILES`: its
/// address, its parent's address and its name's hash (with length) mixed.
/// Not the address alone: an unlinked file's dentry is freed at once and its
/// memory goes to the next file created, so `create a; unlink a; create b`
/// would fold b into a's key and b would never be reported. Not the inode's
/// identity either: on overlayfs over ext4 a recreated file gets the same
/// inode address, number and (overlay) generation 0. What stays the same is
/// what should be deduped: the same name in the same directory.
#[inline(always)]
fn dentry_ident(o: &Offsets, dentry: u64) -> u64 {
    let parent = rk::<u64>(dentry + o.dentry_parent).unwrap_or(0);
    let hash_len = rk::<u64>(dentry + o.dentry_hash_len).unwrap_or(0);
    mix(mix(dentry, parent), hash_len)
}

/// [`dentry_ident`] of the file behind a `struct file` (0 if unreadable).
#[inline(always)]
fn file_ident(o: &Offsets, file: u64) -> u64 {
    match rk::<u64>(file + o.file_path + o.path_dentry) {
        Ok(dentry) if dentry != 0 => dentry_ident(o, dentry),
        _ => 0,
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
fn walk(
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
    // `off` lives in map memory (`cell`), not in a register: the verifier
    // does not track map contents, so every loop iteration reaches the same
    // abstract state whatever the component lengths were, and state pruning
    // keeps verification linear in MAX_DEPTH instead of exponential.
    // SAFETY: cell points into the per-CPU scratch slot.
    unsafe { core::ptr::write_volatile(cell, 0) };
    let start = if start > PATH_MAX { PATH_MAX } else { start };
    let mut i = 0u32;
    // MAX_DEPTH bounds the loop for the verifier (see profiler-common).
    while i < MAX_DEPTH {
        i += 1;
        if dentry == root_dentry && mnt == root_mnt {
            return (unsafe { core::ptr::read_volatile(cell) }, status);
        }
        let Ok(mnt_root) = rk::<u64>(mnt + o.vfsmount_root) else {
            count(counter::READ_ERRORS);
            return (
                unsafe { core::ptr::read_volatile(cell) },
                status | STATUS_BASE_DETACHED,
            );
        };
        if dentry == mnt_root {
            let Ok(parent) = rk::<u64>(mount + o.mount_parent) else {
                return (
                    unsafe { core::ptr::read_volatile(cell) },
                    status | STATUS_BASE_DETACHED,
                );
            };
            if parent == mount {
                // Global root reached without meeting the task's root: the
                // object is outside the container's root (e.g. a host fd).
                return (
                    unsafe { core::ptr::read_volatile(cell) },
                    status | STATUS_BASE_DETACHED,
                );
            }
            dentry = rk::<u64>(mount + o.mount_mountpoint).unwrap_or(0);
            mount = parent;
            mnt = mount + o.mount_mnt;
            continue;
        }
        let Ok(parent) = rk::<u64>(dentry + o.dentry_parent) else {
            return (
                unsafe { core::ptr::read_volatile(cell) },
                status | STATUS_BASE_DETACHED,
            );
        };
        if parent == dentry || parent == 0 {
            return (
                unsafe { core::ptr::read_volatile(cell) },
                status | STATUS_BASE_DETACHED,
            );
        }
        // SAFETY: cell points into the per-CPU scratch slot.
        let off = unsafe { core::ptr::read_volatile(cell) } as usize;
        if off >= BASE_LIMIT {
            status |= STATUS_BASE_TRUNCATED;
            return (unsafe { core::ptr::read_volatile(cell) }, status);
        }
        let Ok(name) = rk::<u64>(dentry + o.dentry_name) else {
            return (
                unsafe { core::ptr::read_volatile(cell) },
                status | STATUS_BASE_DETACHED,
            );
        };
        let at = start + (off & (BASE_LIMIT - 1));
        // SAFETY: at + NAME_MAX_NUL <= PATH_MAX + BASE_LIMIT + NAME_MAX_NUL <= DATA_SIZE.
        let n = unsafe {
            bh::bpf_probe_read_kernel_str(buf.add(at).cast(), NAME_MAX_NUL as u32, name as *const _)
        };
        if n <= 0 {
            count(counter::READ_ERRORS);
            return (
                unsafe { core::ptr::read_volatile(cell) },
                status | STATUS_BASE_DETACHED,
            );
        }
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(cell, (off + n as usize) as u32) };
        dentry = parent;
    }
    (
        unsafe { core::ptr::read_volatile(cell) },
        status | STATUS_BASE_TRUNCATED,
    )
}

/// Hashes `len` bytes of `buf` eight at a time (bytes past `len` are
/// masked off: the scratch slot holds stale data there). 512 iterations
/// instead of 4096 keeps verification cheap for every caller state.
#[inline(always)]
fn hash_bytes(mut h: u64, buf: *const u8, len: usize) -> u64 {
    let mut i = 0usize;
    // PATH_MAX / 8 bounds the loop; len <= PATH_MAX by construction.
    while i < PATH_MAX / 8 {
        let at = i * 8;
        if at >= len {
            break;
        }
        // SAFETY: at + 8 <= PATH_MAX < DATA_SIZE; unaligned read of plain bytes.
        let mut w = unsafe { core::ptr::read_unaligned(buf.add(at).cast::<u64>()) };
        let rem = len - at;
        if rem < 8 {
            // Last, partial word. Break explicitly: the verifier learns
            // `rem < 8` but not `len < at + 8`, so without it would explore
            // the rest of the loop from here.
            w &= (1u64 << (rem * 8)) - 1;
            return mix(h, w);
        }
        h = mix(h, w);
        i += 1;
    }
    h
}

#[inline(always)]
fn mix(h: u64, v: u64) -> u64 {
    let mut x = h ^ v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Returns true when the operation was already reported (and counts it).
#[inline(always)]
fn seen_before(cfg: &Config, key: u64, pid_tgid: u64) -> bool {
    if cfg.dedupe == 0 {
        return false;
    }
    let tgid = (pid_tgid >> 32) as u32;
    let pid = pid_tgid as u32;
    if let Some(v) = DEDUP.get_ptr_mut(&key) {
        // SAFETY: map value pointer; a racing update only skews a counter.
        unsafe {
            (*v).count += 1;
            (*v).last_tgid = tgid;
            (*v).last_pid = pid;
        }
        count(counter::DEDUPED);
        return true;
    }
    let v = DedupValue {
        count: 1,
        last_tgid: tgid,
        last_pid: pid,
    };
    match DEDUP.insert(&key, &v, BPF_NOEXIST) {
        Ok(()) => false,
        Err(e) if i64::from(e) == -EEXIST => {
            // Another CPU inserted it between our lookup and insert.
            if let Some(v) = DEDUP.get_ptr_mut(&key) {
                // SAFETY: as above.
                unsafe { (*v).count += 1 };
            }
            true
        }
        Err(_) => {
            count(counter::DEDUP_FULL);
            false
        }
    }
}

#[inline(always)]
fn fill_header(h: &mut EventHeader, k: u32, opc: u32, ret: i64, pid_tgid: u64) {
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
}

#[inline(always)]
fn submit(ev: *mut EventBuf) {
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

/// Dedupe key of an operation on the object with inode identity `ident`.
#[inline(always)]
fn object_key(opc: u32, ret: i64, ident: u64, flags: u64) -> u64 {
    mix(
        mix(mix(u64::from(opc), ret as u64), ident),
        flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND),
    )
}

/// Dedupe check for an object operation, done in `sys_exit` itself so the
/// common case (a repeat) costs no tail call. Returns true when it is new.
#[inline(always)]
fn object_is_new(cfg: &Config, opc: u32, ret: i64, pid_tgid: u64, file: u64, flags: u64) -> bool {
    let ident = file_ident(&cfg.offsets, file);
    ident != 0 && !seen_before(cfg, object_key(opc, ret, ident, flags), pid_tgid)
}

/// Builds the record for an object operation already found new by
/// [`object_is_new`].
#[inline(always)]
fn emit_object(cfg: &Config, opc: u32, ret: i64, pid_tgid: u64, file: u64, flags: u64, mode: u64) {
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
    let key = object_key(opc, ret, ident, flags);
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch slot owned by this program invocation.
    let evr = unsafe { &mut *ev };
    fill_header(&mut evr.header, kind::PATH_OP, opc, ret, pid_tgid);
    evr.header.key = key;
    evr.header.ident = ident;
    evr.header.flags = flags as u32;
    evr.header.mode = mode as u32;
    evr.header.status = STATUS_BASE_IS_OBJECT;
    request_walk(mnt, dentry, 0);
}

/// Emits a record for `name` (user pointer) relative to `dirfd`.
#[inline(always)]
fn emit_named(
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
        let f = fd_file(o, i64::from(dirfd as i32));
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
    let mut key = object_key(opc, ret, dir_ident, flags);
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

/// Records that the event in SCRATCH still needs its base path walked.
#[inline(always)]
fn request_walk(mnt: u64, dentry: u64, start: u64) {
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
fn finish_walk(cfg: &Config) {
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

#[inline(always)]
fn arg(args: &[u64; 6], idx: u8) -> u64 {
    match idx {
        0 => args[0],
        1 => args[1],
        2 => args[2],
        3 => args[3],
        4 => args[4],
        5 => args[5],
        _ => 0,
    }
}

#[inline(always)]
fn account_write(cfg: &Config, fd: u64, len: u64, fsync: bool, exec_map: bool) {
    let o = &cfg.offsets;
    let file = fd_file(o, fd as i64);
    if file == 0 {
        return;
    }
    let ident = file_ident(o, file);
    let Some(st) = FILES.get_ptr_mut(&ident) else {
        return;
    };
    // SAFETY: map value pointer; racing writers only skew counters.
    unsafe {
        if fsync {
            (*st).fsynced = 1;
        } else if exec_map {
            (*st).exec_mapped = 1;
        } else {
            (*st).bytes += len;
            (*st).writes += 1;
            let inode = rk::<u64>(file + o.file_inode).unwrap_or(0);
            let size = rk::<i64>(inode + o.inode_size).unwrap_or(0) as u64;
            // i_size + len: exact for appends, an upper bound for overwrites;
            // one kernel read less than also reading f_pos on this hot path.
            let end = size + len;
            if end > (*st).max_size {
                (*st).max_size = end;
            }
        }
    }
}

/// Raw tracepoint `sys_enter(struct pt_regs *regs, long id)`: every
/// syscall of every task; untraced tasks and unhooked syscalls leave after
/// one map lookup each.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> u32 {
    match try_sys_enter(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

/// `w[i]` with constant indices only: kernels before 5.12 refuse stack
/// accesses at a variable offset.
#[inline(always)]
fn word(w: &[u64; 8], i: u64) -> u64 {
    match i {
        0 => w[0],
        1 => w[1],
        2 => w[2],
        3 => w[3],
        4 => w[4],
        5 => w[5],
        6 => w[6],
        7 => w[7],
        _ => 0,
    }
}

/// Is the current syscall a 32-bit (compat) one? Its number means
/// something else; such calls are not interpreted.
#[inline(always)]
fn in_compat_syscall(o: &Offsets) -> bool {
    o.compat_mask != 0
        && rk::<u32>(current_task() + o.compat_off).unwrap_or(0) as u64 & o.compat_mask != 0
}

fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    if !tgid_traced((pid_tgid >> 32) as u32) {
        return Ok(());
    }
    let nr: i64 = ctx.arg(1);
    if !(0..i64::from(SPECS_LEN)).contains(&nr) {
        return Ok(());
    }
    let Some(spec) = SPECS.get(nr as u32) else {
        return Ok(());
    };
    if spec.op == 0 {
        return Ok(());
    }
    let Some(cfg) = config() else { return Ok(()) };
    let o = &cfg.offsets;
    if in_compat_syscall(o) {
        return Ok(());
    }
    let regs: u64 = ctx.arg(0);
    // One read of the 64-byte window of pt_regs holding the argument
    // registers; each argument's word index comes from BTF.
    let window = rk::<[u64; 8]>(regs + o.sys_regs_base)?;
    let args: [u64; 6] = [
        word(&window, o.sys_regs_idx[0]),
        word(&window, o.sys_regs_idx[1]),
        word(&window, o.sys_regs_idx[2]),
        word(&window, o.sys_regs_idx[3]),
        word(&window, o.sys_regs_idx[4]),
        word(&window, o.sys_regs_idx[5]),
    ];
    let mut flags = 0u64;
    match spec.argkind {
        argkind::WRITE => {
            // mode_arg holds the byte-count argument (NO_ARG for vectored writes).
            let len = if spec.mode_arg == NO_ARG {
                0
            } else {
                arg(&args, spec.mode_arg)
            };
            account_write(cfg, arg(&args, spec.fd_arg), len, false, false);
            return Ok(());
        }
        argkind::FSYNC => {
            account_write(cfg, arg(&args, spec.fd_arg), 0, true, false);
            return Ok(());
        }
        argkind::URING => {
            count(counter::IO_URING_SETUPS);
            return Ok(());
        }
        argkind::WRITE_RET => {
            // Only files opened for writing by the container are accounted:
            // sockets and pipes (most `writev`/`sendfile`/`splice` traffic)
            // leave here without an in-flight record.
            let file = fd_file(o, arg(&args, spec.fd_arg) as i64);
            if file == 0 {
                return Ok(());
            }
            let ident = file_ident(o, file);
            if FILES.get_ptr(&ident).is_none() {
                return Ok(());
            }
            let inode = rk::<u64>(file + o.file_inode).unwrap_or(0);
            let inf = Inflight {
                nr: nr as u64,
                args,
                flags: ident,
                obj: inode,
            };
            if INFLIGHT.insert(&pid_tgid, &inf, 0).is_err() {
                count(counter::INFLIGHT_FULL);
            }
            return Ok(());
        }
        argkind::MMAP => {
            let fd = arg(&args, spec.fd_arg) as i64;
            if arg(&args, 2) & PROT_EXEC == 0 || fd as i32 <= 0 {
                return Ok(());
            }
        }
        _ => {}
    }
    if spec.flags & specflag::OPEN != 0 {
        flags = if spec.flags & specflag::CREAT != 0 {
            O_CREAT | O_TRUNC | 1
        } else if spec.flags & specflag::OPEN_HOW != 0 {
            // SAFETY: struct open_how starts with u64 flags.
            unsafe {
                aya_ebpf::helpers::bpf_probe_read_user(arg(&args, spec.flags_arg) as *const u64)
            }
            .unwrap_or(0)
        } else {
            arg(&args, spec.flags_arg)
        };
        if flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND) == 0 {
            return Ok(()); // read-only open
        }
    } else if spec.flags & specflag::ACCESS != 0 {
        if arg(&args, spec.mode_arg) & W_OK == 0 {
            return Ok(());
        }
    } else if spec.flags_arg != NO_ARG {
        flags = arg(&args, spec.flags_arg);
    }
    let inf = Inflight {
        nr: nr as u64,
        args,
        flags,
        obj: 0,
    };
    if INFLIGHT.insert(&pid_tgid, &inf, 0).is_err() {
        count(counter::INFLIGHT_FULL);
    }
    Ok(())
}

/// Raw tracepoint `sys_exit(struct pt_regs *regs, long ret)`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> u32 {
    match try_sys_exit(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

fn try_sys_exit(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    // SAFETY: the map value is copied out before removal.
    let Some(inf) = (unsafe { INFLIGHT.get(&pid_tgid) }).copied() else {
        return Ok(());
    };
    let _ = INFLIGHT.remove(&pid_tgid);
    let ret: i64 = ctx.arg(1);
    // The entry recorded the syscall number (only hooked ones are stashed).
    let nr = inf.nr;
    if nr >= u64::from(SPECS_LEN) {
        return Ok(());
    }
    let Some(spec) = SPECS.get(nr as u32) else {
        return Ok(());
    };
    let Some(cfg) = config() else { return Ok(()) };
    if spec.argkind == argkind::WRITE_RET {
        if ret > 0
            && let Some(st) = FILES.get_ptr_mut(&inf.flags)
        {
            let size = rk::<i64>(inf.obj + cfg.offsets.inode_size).unwrap_or(0) as u64;
            // SAFETY: map value pointer; racing writers only skew counters.
            unsafe {
                (*st).bytes += ret as u64;
                (*st).writes += 1;
                if size > (*st).max_size {
                    (*st).max_size = size;
                }
            }
        }
        return Ok(());
    }
    if spec.op == op::EXEC && ret >= 0 {
        // A successful exec returns into the new image: the name pointer
        // is gone with the old memory. `sched_exec` recorded it already.
        return Ok(());
    }
    let a = &inf.args;
    let mode = if spec.mode_arg == NO_ARG {
        0
    } else {
        arg(a, spec.mode_arg)
    };
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU slot owned by this program and the `emit` it tail-calls.
    let mut q = Queue(unsafe { &mut *jobs });
    q.0.n = 0;
    q.0.next = 0;
    match spec.argkind {
        argkind::FD | argkind::MMAP => {
            let file = fd_file(&cfg.offsets, arg(a, spec.fd_arg) as i64);
            if file != 0 {
                if object_is_new(cfg, spec.op, ret, pid_tgid, file, inf.flags) {
                    q.object(spec.op, ret, pid_tgid, file, inf.flags, mode);
                }
                if spec.argkind == argkind::MMAP && ret >= 0 {
                    account_write(cfg, arg(a, spec.fd_arg), 0, false, true);
                }
            }
        }
        argkind::BIND => {
            let sa = arg(a, 1);
            // SAFETY: user pointer read through the helper.
            let fam =
                unsafe { aya_ebpf::helpers::bpf_probe_read_user(sa as *const u16) }.unwrap_or(0);
            if fam != AF_UNIX {
                return Ok(());
            }
            let first = unsafe { aya_ebpf::helpers::bpf_probe_read_user((sa + 2) as *const u8) }
                .unwrap_or(0);
            if first == 0 {
                return Ok(()); // abstract socket: no filesystem path
            }
            q.named(spec.op, ret, pid_tgid, AT_FDCWD, sa + 2, SUN_PATH_MAX, 0, 0);
        }
        _ => {
            let mut opc = spec.op;
            if spec.flags & specflag::UNLINKAT != 0 && inf.flags & AT_REMOVEDIR != 0 {
                opc = op::RMDIR;
            }
            if spec.op == op::OPEN_WRITE && ret >= 0 {
                // Success: the new fd names the canonical object (symlinks,
                // `..` and bind mounts already resolved by the kernel).
                let file = fd_file(&cfg.offsets, ret);
                if file != 0 {
                    let ident = file_ident(&cfg.offsets, file);
                    if FILES.get_ptr(&ident).is_none()
                        && FILES
                            .insert(&ident, &FileStats::default(), BPF_NOEXIST)
                            .is_err()
                        && FILES.get_ptr(&ident).is_none()
                    {
                        count(counter::FILES_FULL);
                    }
                    if object_is_new(cfg, opc, ret, pid_tgid, file, inf.flags) {
                        q.object(opc, ret, pid_tgid, file, inf.flags, mode);
                    }
                    return q.run(ctx);
                }
            }
            let dirfd = if spec.dirfd_arg == NO_ARG {
                AT_FDCWD
            } else {
                arg(a, spec.dirfd_arg) as i64
            };
            let name_ptr = if spec.name_arg == NO_ARG {
                0
            } else {
                arg(a, spec.name_arg)
            };
            if spec.flags & specflag::SECOND_ONLY == 0 {
                let empty_fd = spec.flags & specflag::EMPTY_IS_FD != 0
                    && (name_ptr == 0 || inf.flags & AT_EMPTY_PATH != 0);
                if empty_fd {
                    let file = fd_file(&cfg.offsets, dirfd);
                    if file != 0 && object_is_new(cfg, opc, ret, pid_tgid, file, inf.flags) {
                        q.object(opc, ret, pid_tgid, file, inf.flags, mode);
                    }
                } else if name_ptr != 0 {
                    q.named(
                        opc,
                        ret,
                        pid_tgid,
                        dirfd,
                        name_ptr,
                        PATH_MAX as u32,
                        inf.flags,
                        mode,
                    );
                }
            }
            if spec.flags & specflag::TWO_PATHS != 0 {
                let opc2 = if spec.op == op::RENAME_FROM {
                    op::RENAME_TO
                } else {
                    spec.op
                };
                let dirfd2 = if spec.dirfd2_arg == NO_ARG {
                    AT_FDCWD
                } else {
                    arg(a, spec.dirfd2_arg) as i64
                };
                let name2 = arg(a, spec.name2_arg);
                if name2 != 0 {
                    q.named(
                        opc2,
                        ret,
                        pid_tgid,
                        dirfd2,
                        name2,
                        PATH_MAX as u32,
                        inf.flags,
                        0,
                    );
                }
            }
        }
    }
    q.run(ctx)
}

/// Queue of path jobs for the `emit` program.
struct Queue<'a>(&'a mut Jobs);

impl Queue<'_> {
    #[inline(always)]
    fn push(&mut self, job: Job) {
        let n = self.0.n;
        if n == 0 {
            self.0.items[0] = job;
        } else if n == 1 {
            self.0.items[1] = job;
        } else {
            return;
        }
        self.0.n = n + 1;
    }

    #[inline(always)]
    fn object(&mut self, opc: u32, ret: i64, pid_tgid: u64, file: u64, flags: u64, mode: u64) {
        self.push(Job {
            kind: JOB_OBJECT,
            opc,
            ret,
            pid_tgid,
            file,
            dirfd: 0,
            name_ptr: 0,
            name_max: 0,
            _pad: 0,
            flags,
            mode,
        });
    }

    /// A kernel-string name (`bprm->filename`) relative to the cwd.
    #[inline(always)]
    fn named_kernel(&mut self, opc: u32, ret: i64, pid_tgid: u64, name_ptr: u64) {
        self.named(
            opc,
            ret,
            pid_tgid,
            AT_FDCWD,
            name_ptr,
            PATH_MAX as u32,
            0,
            0,
        );
        if self.0.n > 0 {
            let last = (self.0.n - 1) as usize;
            if last == 0 {
                self.0.items[0].kind = JOB_NAMED_KERNEL;
            } else {
                self.0.items[1].kind = JOB_NAMED_KERNEL;
            }
        }
    }

    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn named(
        &mut self,
        opc: u32,
        ret: i64,
        pid_tgid: u64,
        dirfd: i64,
        name_ptr: u64,
        name_max: u32,
        flags: u64,
        mode: u64,
    ) {
        self.push(Job {
            kind: JOB_NAMED,
            opc,
            ret,
            pid_tgid,
            file: 0,
            dirfd,
            name_ptr,
            name_max,
            _pad: 0,
            flags,
            mode,
        });
    }

    #[inline(always)]
    fn run(self, ctx: &RawTracePointContext) -> Result<(), i64> {
        if self.0.n > 0 {
            // SAFETY: JUMP slot 0 holds `emit`, a raw tracepoint program
            // taking the same context. A tail call only returns on failure
            // (slot empty, or the 33-call chain limit): nothing is emitted.
            let _ = unsafe { JUMP.tail_call(ctx, JUMP_EMIT) };
            count(counter::TAIL_CALL_FAILS);
        }
        Ok(())
    }
}

/// Builds and sends the queued path jobs, one per invocation, tail-calling
/// itself for the next one. Never attached; reached through `JUMP`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn emit(ctx: RawTracePointContext) -> u32 {
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return 0;
    };
    let Some(cfg) = config() else { return 0 };
    // SAFETY: per-CPU slot filled by `sys_exit` just before the tail call.
    let jobs = unsafe { &mut *jobs };
    let idx = jobs.next;
    if idx >= jobs.n || idx >= 2 {
        return 0;
    }
    jobs.next = idx + 1;
    let job = if idx == 0 {
        jobs.items[0]
    } else {
        jobs.items[1]
    };
    jobs.walk_dentry = 0;
    if job.kind == JOB_OBJECT {
        emit_object(
            cfg,
            job.opc,
            job.ret,
            job.pid_tgid,
            job.file,
            job.flags,
            job.mode,
        );
    } else {
        emit_named(
            cfg,
            job.opc,
            job.ret,
            job.pid_tgid,
            job.dirfd,
            job.name_ptr,
            job.name_max,
            job.flags,
            job.mode,
            job.kind == JOB_NAMED_KERNEL,
        );
    }
    if jobs.walk_dentry != 0 {
        // SAFETY: JUMP slot 1 holds `walk_prog`, same program type and context.
        let _ = unsafe { JUMP.tail_call(&ctx, JUMP_WALK) };
        count(counter::TAIL_CALL_FAILS);
    } else if jobs.next < jobs.n {
        // SAFETY: as in Queue::run.
        let _ = unsafe { JUMP.tail_call(&ctx, JUMP_EMIT) };
        count(counter::TAIL_CALL_FAILS);
    }
    0
}

/// Second stage of `emit`: the path walk, in a program of its own so the
/// verifier explores it once. Chains back to `emit` for the next job.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn walk_prog(ctx: RawTracePointContext) -> u32 {
    let Some(cfg) = config() else { return 0 };
    finish_walk(cfg);
    if let Some(jobs) = JOBS.get_ptr(0) {
        // SAFETY: per-CPU slot.
        if unsafe { (*jobs).next < (*jobs).n } {
            // SAFETY: JUMP slot 0 holds `emit`.
            let _ = unsafe { JUMP.tail_call(&ctx, JUMP_EMIT) };
            count(counter::TAIL_CALL_FAILS);
        }
    }
    0
}

/// Raw tracepoint `sched_process_exec(struct task_struct *p, pid_t
/// old_pid, struct linux_binprm *bprm)`: raw, like `sys_exit`, because it
/// tail-calls `emit` and a program array serves one program type.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_exec(ctx: RawTracePointContext) -> u32 {
    match try_sched_exec(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

fn try_sched_exec(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helpers without pointer arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    let tgid = (pid_tgid >> 32) as u32;
    if !tgid_traced(tgid) {
        let cg = unsafe { bh::bpf_get_current_cgroup_id() };
        if TARGET_CGROUPS.get_ptr(&cg).is_none() {
            return Ok(());
        }
        if TRACED.insert(&tgid, &1, 0).is_err() {
            count(counter::TRACED_FULL);
            return Ok(());
        }
    }
    let Some(cfg) = config() else { return Ok(()) };
    let o = &cfg.offsets;
    // A PROC record (not deduped) so userspace knows the new comm.
    if let Some(ev) = SCRATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU scratch slot owned by this invocation.
        let evr = unsafe { &mut *ev };
        fill_header(&mut evr.header, kind::PROC, 0, 0, pid_tgid);
        let parent = rk::<u64>(current_task() + o.task_real_parent).unwrap_or(0);
        evr.header.ppid = rk::<u32>(parent + o.task_tgid).unwrap_or(0);
        submit(ev);
    }
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU slot owned by this program and the `emit` it tail-calls.
    let mut q = Queue(unsafe { &mut *jobs });
    q.0.n = 0;
    q.0.next = 0;
    // The binary now running: for an ELF file the file exec'd, for a
    // script its interpreter.
    let mm = rk::<u64>(current_task() + o.task_mm)?;
    let exe = rk::<u64>(mm + o.mm_exe_file)?;
    if exe != 0 && object_is_new(cfg, op::EXEC, 0, pid_tgid, exe, 0) {
        q.object(op::EXEC, 0, pid_tgid, exe, 0, 0);
    }
    // A script (or a binfmt_misc handler) replaced `interp`: record the
    // name exec was called with too, relative to the unchanged cwd, so the
    // directory holding the script is not planned `noexec`.
    let bprm: u64 = ctx.arg(2);
    let filename = rk::<u64>(bprm + o.bprm_filename).unwrap_or(0);
    let interp = rk::<u64>(bprm + o.bprm_interp).unwrap_or(0);
    if filename != 0 && interp != filename {
        q.named_kernel(op::EXEC, 0, pid_tgid, filename);
    }
    q.run(ctx)
}

/// Raw tracepoint `sched_process_fork(struct task_struct *parent, struct task_struct *child)`:
/// the raw form gives the child's task pointer, so threads (same tgid) are
/// told apart from new processes.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_fork(ctx: RawTracePointContext) -> u32 {
    match try_sched_fork(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

fn try_sched_fork(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    if !tgid_traced((pid_tgid >> 32) as u32) {
        return Ok(());
    }
    let Some(cfg) = config() else { return Ok(()) };
    let child: u64 = ctx.arg(1);
    let child_tgid = rk::<u32>(child + cfg.offsets.task_tgid)?;
    if child_tgid == (pid_tgid >> 32) as u32 {
        return Ok(()); // a thread of a traced process
    }
    if TRACED.insert(&child_tgid, &1, 0).is_err() {
        count(counter::TRACED_FULL);
    }
    Ok(())
}

/// Raw tracepoint `sched_process_exit(struct task_struct *p, ...)`: the
/// process leaves the traced set when its last thread (the leader) exits.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_exit(_ctx: RawTracePointContext) -> u32 {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    if (pid_tgid >> 32) as u32 == pid_tgid as u32 {
        let _ = TRACED.remove(&((pid_tgid >> 32) as u32));
    }
    0
}

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
const ID_LEN: usize = 64;

fn try_cgroup_mkdir(ctx: &RawTracePointContext) -> Result<(), i64> {
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
    let _ = TARGET_CGROUPS.insert(&id, &1, 0);
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    fill_header(&mut evr.header, kind::CGROUP, 0, 0, pid_tgid);
    evr.header.key = id;
    submit(ev);
    Ok(())
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

// Keep unused-import lint quiet for constants only used in some cfgs.
const _: usize = DATA_SIZE;
