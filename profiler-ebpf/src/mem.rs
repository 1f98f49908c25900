//! Kernel-memory helpers: typed reads, the current task, fd → file, and
//! the identity dedupe keys and `FILES` use.

use crate::*;

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

#[inline(always)]
pub(crate) fn tgid_traced(tgid: u32) -> bool {
    TRACED.get_ptr(tgid).is_some()
}

/// The `struct file *` behind `fd` of the current task, or 0.
#[inline(always)]
pub(crate) fn fd_file(o: &Offsets, fd: i64) -> u64 {
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
    let parent = rk::<u64>(dentry + o.dentry_parent).unwrap_or(0);
    let hash_len = rk::<u64>(dentry + o.dentry_hash_len).unwrap_or(0);
    mix(mix(dentry, parent), hash_len)
}

/// [`dentry_ident`] of the file behind a `struct file` (0 if unreadable).
#[inline(always)]
pub(crate) fn file_ident(o: &Offsets, file: u64) -> u64 {
    match rk::<u64>(file + o.file_path + o.path_dentry) {
        Ok(dentry) if dentry != 0 => dentry_ident(o, dentry),
        _ => 0,
    }
}
