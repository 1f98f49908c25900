//! `roprof doctor`'s smoke test: the smallest raw tracepoint program that
//! does what roprof's hooks do first — take the syscall's `struct pt_regs`
//! pointer from the raw tracepoint's arguments and read kernel memory there
//! with `bpf_probe_read_kernel`. Loading and attaching it to `sys_exit` for
//! a moment proves that this kernel, with these privileges (and this
//! lockdown mode: kernels from 5.13 refuse the helper at load time under
//! `lockdown=confidentiality`), accepts roprof's kind of program. It touches
//! no map and discards what it read.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

use crate::mem::rk;

/// Reads one word of the syscall's registers and returns; the load and the
/// attach are the test.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn doctor_smoke(ctx: RawTracePointContext) -> u32 {
    let regs: u64 = ctx.arg(0);
    // The read's result does not matter: the verifier accepting the helper
    // (refused under lockdown=confidentiality) is what is tested.
    let _ = rk::<u64>(regs);
    0
}
