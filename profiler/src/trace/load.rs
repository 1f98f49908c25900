//! Loading the programs into the kernel. Each program is verified by a
//! `BPF_PROG_LOAD` of its own, and nothing in one load depends on another
//! (the stages' program arrays are filled afterwards), so the largest
//! (`emit`, about 60% of the verification time: 1.06 of 1.72 s on the bench
//! machine) is verified on a thread of its own while this one verifies the
//! rest. The kernel verifies privileged loads concurrently; the load is on
//! the critical path of every `profile` from its first container start.

use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::ProgramArray,
    programs::{BtfTracePoint, Program, RawTracePoint},
};

use super::{TraceError, map_err, not_found, prog_err};

/// How one program is loaded.
#[derive(Clone, Copy)]
pub(super) enum Kind<'b> {
    /// A raw tracepoint program (attached by name later).
    Raw,
    /// A BTF-typed program on `tp_btf/sys_exit`, resolved in this BTF.
    SysExitBtf(&'b aya::Btf),
}

/// Loads `progs`, the first on a thread of its own beside the others (put
/// the one the verifier takes longest on first), noting each program's
/// verified instruction count. The first error is returned, the first
/// program's before the rest's.
pub(super) fn load_all(
    ebpf: &mut Ebpf,
    progs: &[(&'static str, Kind<'_>)],
    verified: &mut BTreeMap<String, u32>,
) -> Result<(), TraceError> {
    let mut found: BTreeMap<&str, &mut Program> = ebpf.programs_mut().collect();
    let mut jobs = Vec::with_capacity(progs.len());
    for &(name, kind) in progs {
        let prog = found.remove(name).ok_or_else(|| not_found(name))?;
        jobs.push((name, kind, prog));
    }
    let Some((first, rest)) = jobs.split_first_mut() else {
        return Ok(());
    };
    let (first_done, rest_done) = std::thread::scope(|s| {
        let worker = s.spawn(|| load_one(first.0, first.1, &mut *first.2));
        let rest_done: Vec<_> = rest
            .iter_mut()
            .map(|(name, kind, prog)| load_one(name, *kind, prog).map(|n| (*name, n)))
            .collect();
        let first_done = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (first_done.map(|n| (first.0, n)), rest_done)
    });
    for done in std::iter::once(first_done).chain(rest_done) {
        if let (name, Some(n)) = done? {
            verified.insert(name.to_owned(), n);
        }
    }
    Ok(())
}

/// Loads one program; its verified instruction count where the kernel
/// reports it (5.16).
fn load_one(name: &str, kind: Kind<'_>, prog: &mut Program) -> Result<Option<u32>, TraceError> {
    let info = match kind {
        Kind::Raw => {
            let p: &mut RawTracePoint = prog.try_into().map_err(prog_err(name, "convert"))?;
            p.load().map_err(prog_err(name, "load"))?;
            p.info()
        }
        Kind::SysExitBtf(btf) => {
            let p: &mut BtfTracePoint = prog.try_into().map_err(prog_err(name, "convert"))?;
            p.load("sys_exit", btf).map_err(prog_err(name, "load"))?;
            p.info()
        }
    };
    Ok(info.ok().and_then(|i| i.verified_instruction_count()))
}

/// Puts the loaded stages into their slots of the program array `map`.
pub(super) fn set_stages(
    ebpf: &mut Ebpf,
    map: &'static str,
    stages: [(u32, &'static str); 2],
) -> Result<(), TraceError> {
    for (slot, name) in stages {
        let prog = ebpf.program(name).ok_or_else(|| not_found(name))?;
        let fd = prog
            .fd()
            .map_err(prog_err(name, "expose its fd"))?
            .try_clone()
            .map_err(TraceError::Poll)?;
        let mut jump =
            ProgramArray::try_from(ebpf.map_mut(map).ok_or(TraceError::MissingMap(map))?)
                .map_err(map_err(map))?;
        jump.set(slot, &fd, 0).map_err(map_err(map))?;
    }
    Ok(())
}
