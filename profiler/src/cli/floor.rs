//! `roprof bench-floor` (hidden from help): attaches empty programs to the
//! raw tracepoints roprof hooks and holds them until a signal or
//! `--seconds`. `cargo xtask bench` runs its workload with them attached:
//! the throughput left is the floor of the mechanism (every syscall on the
//! host enters BPF twice), against which roprof's own overhead is read.

use std::time::{Duration, Instant};

use aya::{EbpfLoader, programs::RawTracePoint};
use clap::Args;
use profiler_common::FLOOR_PROGRAMS;

use roprof::{session::interrupt, trace::EBPF_OBJECT};

/// Arguments of `bench-floor`.
#[derive(Debug, Args)]
pub struct FloorArgs {
    /// Detach and exit after this many seconds (default: hold until
    /// SIGINT or SIGTERM).
    #[arg(long)]
    pub seconds: Option<u64>,
}

/// Why the floor programs could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// Built with `AYA_BUILD_SKIP`.
    #[error("this roprof binary was built without its eBPF programs (AYA_BUILD_SKIP)")]
    NoObject,
    /// The object (its maps) could not be loaded.
    #[error("creating the eBPF maps failed: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    /// A program is missing, or failed to load or attach.
    #[error("floor program `{prog}` failed to {what}: {source}")]
    Program {
        /// Program name.
        prog: &'static str,
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
}

/// Loads and attaches the floor programs, says so on stderr, holds.
/// Dropping the loaded object detaches and unloads them.
pub async fn run(args: &FloorArgs) -> anyhow::Result<i32> {
    if EBPF_OBJECT.is_empty() {
        return Err(FloorError::NoObject.into());
    }
    let mut ebpf = EbpfLoader::new()
        .load(EBPF_OBJECT)
        .map_err(|e| FloorError::Load(Box::new(e)))?;
    for (prog, tp) in FLOOR_PROGRAMS {
        let err = |what: String| {
            move |source| FloorError::Program {
                prog,
                what,
                source: Box::new(source),
            }
        };
        let p: &mut RawTracePoint = ebpf
            .program_mut(prog)
            .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
            .map_err(err("be found".into()))?
            .try_into()
            .map_err(err("be used as a raw tracepoint program".into()))?;
        p.load().map_err(err("load".into()))?;
        p.attach(tp)
            .map_err(err(format!("attach to the raw tracepoint {tp}")))?;
    }
    eprintln!(
        "roprof: bench-floor: {} empty programs attached ({})",
        FLOOR_PROGRAMS.len(),
        FLOOR_PROGRAMS.map(|(_, tp)| tp).join(", ")
    );
    let until = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    while !interrupt::interrupted() && until.is_none_or(|t| Instant::now() < t) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(ebpf);
    eprintln!("roprof: bench-floor: detached");
    Ok(0)
}
