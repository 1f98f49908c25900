//! The doctor's real test: load the embedded object's tiny
//! `doctor_smoke` program (see `profiler-ebpf/src/smoke.rs`), attach it to
//! the `sys_exit` raw tracepoint, and detach it again. Nothing under
//! tracefs or debugfs is read; raw tracepoints need neither. The other
//! programs of the object are not loaded (its maps are created, then freed
//! with it).

use std::time::Instant;

use aya::{EbpfLoader, programs::RawTracePoint};
use profiler_common::PROG_DOCTOR_SMOKE;

use super::{Check, CheckId};
use crate::trace::EBPF_OBJECT;

/// The raw tracepoint the smoke program is attached to, as roprof's
/// syscall hook is.
const TRACEPOINT: &str = "sys_exit";

/// Why the smoke test failed.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    /// Built with `AYA_BUILD_SKIP`.
    #[error("this roprof binary was built without its eBPF programs (AYA_BUILD_SKIP)")]
    NoObject,
    /// The object (its maps) could not be loaded.
    #[error("creating the eBPF maps failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    /// The program is missing from the object.
    #[error("program `{PROG_DOCTOR_SMOKE}` is missing from the embedded eBPF object")]
    Missing,
    /// The program could not be loaded, attached or detached.
    #[error("program `{PROG_DOCTOR_SMOKE}` failed to {what}: {source}")]
    Program {
        /// load, attach to …, detach.
        what: String,
        /// Cause (the verifier log, or the errno).
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
}

/// Loads, attaches and detaches the smoke program; returns how long it took
/// in milliseconds.
pub fn run() -> Result<u128, SmokeError> {
    if EBPF_OBJECT.is_empty() {
        return Err(SmokeError::NoObject);
    }
    let started = Instant::now();
    let mut ebpf = EbpfLoader::new()
        .load(EBPF_OBJECT)
        .map_err(|e| SmokeError::Load(Box::new(e)))?;
    let prog: &mut RawTracePoint = ebpf
        .program_mut(PROG_DOCTOR_SMOKE)
        .ok_or(SmokeError::Missing)?
        .try_into()
        .map_err(prog_err("be used as a raw tracepoint program"))?;
    prog.load().map_err(prog_err("load"))?;
    let link = prog.attach(TRACEPOINT).map_err(prog_err(&format!(
        "attach to the raw tracepoint {TRACEPOINT}"
    )))?;
    prog.detach(link).map_err(prog_err("detach"))?;
    drop(ebpf);
    Ok(started.elapsed().as_millis())
}

fn prog_err(what: &str) -> impl FnOnce(aya::programs::ProgramError) -> SmokeError {
    let what = what.to_owned();
    move |source| SmokeError::Program {
        what,
        source: Box::new(source),
    }
}

/// The checklist line for the smoke test.
#[must_use]
pub fn check() -> Check {
    match run() {
        Ok(ms) => Check::pass(
            CheckId::Smoke,
            format!(
                "loaded `{PROG_DOCTOR_SMOKE}`, attached it to the raw tracepoint {TRACEPOINT} and detached it ({ms} ms)"
            ),
        ),
        Err(e) => Check::fail(CheckId::Smoke, error_chain(&e)),
    }
}

/// `e: cause: cause…`, on one line (a verifier log is cut to its last line,
/// which says why).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        src = s.source();
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match lines.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [first, .., last] => format!("{first} … {last}"),
    }
}
