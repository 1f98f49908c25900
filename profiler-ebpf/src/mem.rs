//! Kernel-memory helpers: typed reads, the current task, fd → file, and
//! the identity dedupe keys and `FILES` use.

use aya_ebpf::helpers::generated as bh;
use profiler_common::{Config, Offsets, counter};

use crate::{
    dedupe::mix,
    maps::{CONFIG, COUNTERS, TRACED, TRACED_BITS},
};

#[inline(always)]
pub(crate) fn count(idx: usize) {
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
pub(crate) fn rk<T: Copy>(addr: u64) -> Result<T, i64> {
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
pub(crate) fn config() -> Option<&'static Config> {
    CONFIG.get(0)
}

#[inline(always)]
pub(crate) fn current_task() -> u64 {
    // SAFETY: helper without arguments.
    unsafe { bh::bpf_get_current_task() }
}

/// Is `tgid` traced? The bitmap first (a load), then the map.
#[inline(always)]
pub(crate) fn tgid_traced(tgid: u32) -> bool {
    traced_cgroup(tgid).is_some()
}

/// The container (cgroup id) of a traced `tgid`; `None` when untraced.
#[inline(always)]
pub(crate) fn traced_cgroup(tgid: u32) -> Option<u64> {
    if !tgid_maybe_traced(tgid) {
        return None;
    }
    // SAFETY: the map value is a plain u64 read once.
    TRACED.get_ptr(tgid).map(|v| unsafe { *v })
}

/// `false`: `tgid` is certainly not traced (its `TRACED_BITS` bit is clear).
#[inline(always)]
pub(crate) fn tgid_maybe_traced(tgid: u32) -> bool {
    TRACED_BITS
        .get(tgid >> 6)
        .is_some_and(|w| *w & (1u64 << (tgid & 63)) != 0)
}

/// Puts `tgid` in `TRACED` (container `cg`) and sets its bit first, so the
/// bitmap never misses a traced process. `false` when `TRACED` is full.
#[inline(always)]
pub(crate) fn trace_tgid(tgid: u32, cg: u64) -> bool {
    let bit = 1u64 << (tgid & 63);
    if let Some(w) = TRACED_BITS.get_ptr_mut(tgid >> 6) {
        // SAFETY: array value pointer. Only events of this tgid change its
        // bit (its exec, its creation by fork, its exit), and they do not
        // run concurrently; other bits of the word change by atomic adds
        // (BPF_XADD, available on every kernel this supports), so no
        // update is lost.
        unsafe {
            if *w & bit == 0 {
                atomic_add(w, bit);
            }
        }
    }
    TRACED.insert(tgid, cg, 0).is_ok()
}

/// `*w += v` as one atomic instruction whose result is unused, which LLVM
/// emits as `BPF_XADD` (every kernel; the fetching forms need 5.12). The
/// `bpfel` target has no `AtomicU64`, hence the intrinsic.
#[cfg(target_arch = "bpf")]
#[inline(always)]
unsafe fn atomic_add(w: *mut u64, v: u64) {
    // SAFETY: the caller passes a valid, aligned map value pointer.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            w, v,
        );
    }
}

/// Host build (clippy only): the same through `AtomicU64`.
#[cfg(not(target_arch = "bpf"))]
#[inline(always)]
unsafe fn atomic_add(w: *mut u64, v: u64) {
    // SAFETY: the caller passes a valid, aligned pointer.
    unsafe { core::sync::atomic::AtomicU64::from_ptr(w) }
        .fetch_add(v, core::sync::atomic::Ordering::Relaxed);
}

/// Takes `tgid` out of `TRACED` and clears its bit (process exit).
#[inline(always)]
pub(crate) fn untrace_tgid(tgid: u32) {
    let bit = 1u64 << (tgid & 63);
    if let Some(w) = TRACED_BITS.get_ptr_mut(tgid >> 6) {
        // SAFETY: as in `trace_tgid`.
        unsafe {
            if *w & bit == 0 {
                return; // never traced: nothing to remove
            }
            atomic_add(w, bit.wrapping_neg());
        }
    }
    let _ = TRACED.remove(tgid);
}

/// Two u64 fields of one struct at `addr + a` and `addr + b` (b > a, both
/// 8-aligned): one helper call when they lie within 48 bytes of each other,
/// as `fdtable.max_fds`/`fd`, `dentry.d_parent`/`d_name.hash_len` and
/// `file.f_inode`/`f_path.dentry` do on current kernels. Each
/// `bpf_probe_read_kernel` costs more than the bytes it copies, and these
/// reads are on the path every traced write and open takes.
#[inline(always)]
pub(crate) fn rk_two(addr: u64, a: u64, b: u64) -> Result<(u64, u64), i64> {
    if b == a + 8 {
        let w = rk::<[u64; 2]>(addr + a)?;
        return Ok((w[0], w[1]));
    }
    if b > a && (b - a).is_multiple_of(8) && b - a < 48 {
        let w = rk::<[u64; 6]>(addr + a)?;
        let second = match (b - a) / 8 {
            2 => w[2],
            3 => w[3],
            4 => w[4],
            _ => w[5],
        };
        return Ok((w[0], second));
    }
    Ok((rk::<u64>(addr + a)?, rk::<u64>(addr + b)?))
}

// Read-only globals (`.rodata`, frozen before the programs load): the
// verifier sees their values as constants. Userspace sets them with
// `override_global` on kernels that have `bpf_get_current_task_btf` (5.11);
// left at 0, the `bpf_probe_read_kernel` paths below are the only ones the
// verifier walks.
/// 1: the current task is read through its BTF pointer (plain loads, which
/// the verifier types against the kernel's BTF and the JIT guards with an
/// exception table) instead of one `bpf_probe_read_kernel` call per field.
#[unsafe(no_mangle)]
static ROPROF_TASK_BTF: u64 = 0;
/// `task_struct.files`, as a constant the verifier can check the loads with.
#[unsafe(no_mangle)]
static ROPROF_TASK_FILES: u64 = 0;
/// `files_struct.fdt`.
#[unsafe(no_mangle)]
static ROPROF_FILES_FDT: u64 = 0;
/// `fdtable.max_fds`.
#[unsafe(no_mangle)]
static ROPROF_FDT_MAX_FDS: u64 = 0;
/// `fdtable.fd`.
#[unsafe(no_mangle)]
static ROPROF_FDT_FD: u64 = 0;
/// Offset of the compat-syscall word in `task_struct` (0: not checked).
#[unsafe(no_mangle)]
static ROPROF_COMPAT_OFF: u64 = 0;

/// `Offsets::sys_regs_idx`, as constants: the verifier resolves `word()`'s
/// match on each index at load time instead of walking its eight arms for
/// each of six arguments (8^6 paths when they do not prune), and the
/// program runs no branch for them.
#[unsafe(no_mangle)]
static ROPROF_SYS_REGS_IDX: [u64; 6] = [0; 6];

/// Where the syscall number is in the `pt_regs` window read at exit
/// (`ARG_OUTSIDE_WINDOW`: read on its own), as a constant for the same
/// reason.
#[unsafe(no_mangle)]
static ROPROF_SYS_NR_IDX: u64 = profiler_common::ARG_OUTSIDE_WINDOW;

/// Byte offsets in `struct pt_regs` of the syscall number and of its six
/// arguments at exit (`sys_exit_btf`'s plain loads; unused by `sys_exit`).
#[unsafe(no_mangle)]
static ROPROF_SYS_NR_OFF: u64 = 0;
#[unsafe(no_mangle)]
static ROPROF_SYS_ARG_OFF: [u64; 6] = [0; 6];
/// 1: the syscall hook is `sys_exit_btf`, so `sched_exec` leaves an exec's
/// records to the exec's return (its stages are not in `JUMP_BTF`).
#[unsafe(no_mangle)]
static ROPROF_HOOK_BTF: u64 = 0;

/// Offset of the syscall number in `pt_regs`.
#[inline(always)]
pub(crate) fn sys_nr_off() -> u64 {
    ro(&ROPROF_SYS_NR_OFF)
}

/// Offset of syscall argument `i` (< 6) in `pt_regs`.
#[inline(always)]
pub(crate) fn sys_arg_off(i: usize) -> u64 {
    // SAFETY: a static read in bounds; volatile as in `ro`.
    unsafe { core::ptr::read_volatile(&ROPROF_SYS_ARG_OFF[i]) }
}

/// Is the syscall hook `sys_exit_btf`?
#[inline(always)]
pub(crate) fn hook_btf() -> bool {
    ro(&ROPROF_HOOK_BTF) != 0
}

/// Word index of the syscall number in the `pt_regs` window.
#[inline(always)]
pub(crate) fn sys_nr_idx() -> u64 {
    ro(&ROPROF_SYS_NR_IDX)
}

/// Word index of syscall argument `i` (< 6) in the `pt_regs` window.
#[inline(always)]
pub(crate) fn sys_reg_idx(i: usize) -> u64 {
    // SAFETY: a static read in bounds; volatile as in `ro`.
    unsafe { core::ptr::read_volatile(&ROPROF_SYS_REGS_IDX[i]) }
}

#[inline(always)]
fn ro(v: &'static u64) -> u64 {
    // SAFETY: a static; volatile so the compiler does not fold the
    // compile-time 0 the loader overrides.
    unsafe { core::ptr::read_volatile(v) }
}

/// Is the current task read through its BTF pointer?
#[inline(always)]
pub(crate) fn task_btf() -> bool {
    ro(&ROPROF_TASK_BTF) != 0
}

/// The current task's address for the probe-read paths of [`fd_file`] and
/// [`compat_word`]; 0 (and no helper call) when they read its BTF pointer.
#[inline(always)]
pub(crate) fn task_for_probes() -> u64 {
    if task_btf() { 0 } else { current_task() }
}

/// The word holding the compat-syscall flag of the current task (`task`
/// is its address from `bpf_get_current_task`, for the fallback read).
#[inline(always)]
pub(crate) fn compat_word(o: &Offsets, task: u64) -> u64 {
    if task_btf() {
        // SAFETY: a BTF pointer from the helper; the load is checked by the
        // verifier against `task_struct` at this constant offset.
        unsafe {
            let t = bh::bpf_get_current_task_btf() as *const u8;
            u64::from(*(t.add(ro(&ROPROF_COMPAT_OFF) as usize) as *const u32))
        }
    } else {
        u64::from(rk::<u32>(task + o.compat_off).unwrap_or(0))
    }
}

/// `fdtable.fd` and `max_fds` of the current task through its BTF pointer:
/// three plain loads instead of three helper calls.
#[inline(always)]
fn fd_array_btf() -> (u64, u64) {
    // SAFETY: BTF pointers; each load is typed by the verifier (task_struct
    // -> files_struct -> fdtable) and a faulting one reads 0.
    unsafe {
        let t = bh::bpf_get_current_task_btf() as *const u8;
        let files = *(t.add(ro(&ROPROF_TASK_FILES) as usize) as *const *const u8);
        if files.is_null() {
            return (0, 0);
        }
        let fdt = *(files.add(ro(&ROPROF_FILES_FDT) as usize) as *const *const u8);
        if fdt.is_null() {
            return (0, 0);
        }
        let max = *(fdt.add(ro(&ROPROF_FDT_MAX_FDS) as usize) as *const u32);
        let arr = *(fdt.add(ro(&ROPROF_FDT_FD) as usize) as *const u64);
        (u64::from(max), arr)
    }
}

/// The `struct file *` behind `fd` of `task` (the current task), or 0.
#[inline(always)]
pub(crate) fn fd_file(o: &Offsets, task: u64, fd: i64) -> u64 {
    if fd < 0 {
        return 0;
    }
    if task_btf() {
        let (max, arr) = fd_array_btf();
        if arr == 0 || fd as u64 >= max {
            return 0;
        }
        return rk::<u64>(arr + (fd as u64) * 8).unwrap_or(0);
    }
    let Ok(files) = rk::<u64>(task + o.task_files) else {
        return 0;
    };
    let Ok(fdt) = rk::<u64>(files + o.files_fdt) else {
        return 0;
    };
    // max_fds is a u32: the low half of its word (little-endian targets).
    let Ok((max, arr)) = rk_two(fdt, o.fdt_max_fds, o.fdt_fd) else {
        return 0;
    };
    if fd as u64 >= max & 0xffff_ffff {
        return 0;
    }
    rk::<u64>(arr + (fd as u64) * 8).unwrap_or(0)
}

/// Reads a `struct path` (mnt, dentry).
#[inline(always)]
pub(crate) fn read_path(o: &Offsets, at: u64) -> (u64, u64) {
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
pub(crate) fn dentry_ident(o: &Offsets, dentry: u64) -> u64 {
    let (parent, hash_len) = if o.dentry_hash_len > o.dentry_parent {
        rk_two(dentry, o.dentry_parent, o.dentry_hash_len).unwrap_or((0, 0))
    } else {
        (
            rk::<u64>(dentry + o.dentry_parent).unwrap_or(0),
            rk::<u64>(dentry + o.dentry_hash_len).unwrap_or(0),
        )
    };
    mix(mix(dentry, parent), hash_len)
}

/// [`dentry_ident`] of the file behind a `struct file` (0 if unreadable).
#[inline(always)]
pub(crate) fn file_ident(o: &Offsets, file: u64) -> u64 {
    file_inode_ident(o, file).1
}

/// `file.f_inode` and the [`dentry_ident`] of `file`'s dentry, read together
/// when they are close in `struct file` (0 for what could not be read).
#[inline(always)]
pub(crate) fn file_inode_ident(o: &Offsets, file: u64) -> (u64, u64) {
    let d = o.file_path + o.path_dentry;
    let (inode, dentry) = if d > o.file_inode {
        rk_two(file, o.file_inode, d).unwrap_or((0, 0))
    } else {
        (
            rk::<u64>(file + o.file_inode).unwrap_or(0),
            rk::<u64>(file + d).unwrap_or(0),
        )
    };
    if dentry == 0 {
        return (inode, 0);
    }
    (inode, dentry_ident(o, dentry))
}
