//! In-kernel dedupe: repeated identical operations are counted in `DEDUP`
//! and sent once.

use profiler_common::{Config, DedupValue, PATH_MAX, counter};

use crate::{
    maps::{BPF_NOEXIST, DEDUP, EEXIST, O_ACCMODE, O_APPEND, O_CREAT, O_TRUNC},
    mem::{count, file_ident},
};

/// Hashes `len` bytes of `buf` eight at a time (bytes past `len` are
/// masked off: the scratch slot holds stale data there). 512 iterations
/// instead of 4096 keeps verification cheap for every caller state.
#[inline(always)]
pub(crate) fn hash_bytes(mut h: u64, buf: *const u8, len: usize) -> u64 {
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
pub(crate) fn mix(h: u64, v: u64) -> u64 {
    let mut x = h ^ v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    x.wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Returns true when the operation was already reported (and counts it).
#[inline(always)]
pub(crate) fn seen_before(cfg: &Config, key: u64, pid_tgid: u64) -> bool {
    if cfg.dedupe == 0 {
        return false;
    }
    let tgid = (pid_tgid >> 32) as u32;
    let pid = pid_tgid as u32;
    if let Some(v) = DEDUP.get_ptr_mut(key) {
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
    match DEDUP.insert(key, v, BPF_NOEXIST) {
        Ok(()) => false,
        Err(e) if i64::from(e) == -EEXIST => {
            // Another CPU inserted it between our lookup and insert.
            if let Some(v) = DEDUP.get_ptr_mut(key) {
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

/// Dedupe key of an operation on the object with inode identity `ident`,
/// by a process of container `cg`. Successes are one outcome whatever they
/// returned: an open's fd number is not part of what was done, and opening
/// the same log as fd 3 and then fd 7 is one operation, not two.
#[inline(always)]
pub(crate) fn object_key(opc: u32, ret: i64, ident: u64, flags: u64, cg: u64) -> u64 {
    let outcome = if ret > 0 { 0 } else { ret };
    mix(
        mix(
            mix(mix(u64::from(opc), outcome as u64), ident),
            flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND),
        ),
        cg,
    )
}

/// Dedupe check for an object operation, done in `sys_exit` itself so the
/// common case (a repeat) costs no tail call. Returns true when it is new.
#[inline(always)]
pub(crate) fn object_is_new(
    cfg: &Config,
    opc: u32,
    ret: i64,
    pid_tgid: u64,
    file: u64,
    flags: u64,
    cg: u64,
) -> bool {
    ident_is_new(
        cfg,
        opc,
        ret,
        pid_tgid,
        file_ident(&cfg.offsets, file),
        flags,
        cg,
    )
}

/// [`object_is_new`] for an object whose identity is known already.
#[inline(always)]
pub(crate) fn ident_is_new(
    cfg: &Config,
    opc: u32,
    ret: i64,
    pid_tgid: u64,
    ident: u64,
    flags: u64,
    cg: u64,
) -> bool {
    ident != 0 && !seen_before(cfg, object_key(opc, ret, ident, flags, cg), pid_tgid)
}
