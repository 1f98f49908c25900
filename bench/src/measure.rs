//! One whole measurement: the machine, then the four benchmarks in turn,
//! into one [`Bench`].

use std::{path::Path, time::Instant};

use anyhow::{Context as _, Result};

use crate::{
    answer, overhead,
    schema::{Bench, Schema, Sizes},
    servers, throughput, util, workload,
};

/// The sizes of a real run.
pub const FULL: Sizes = Sizes {
    ops: 500_000,
    strace_ops: 20_000,
    reps: 5,
    churn_ops: 1_000_000,
    churn_distinct: 100_000,
    answer_reps: 3,
    redis_requests: 100_000,
    wrk_secs: 3,
    pgbench_secs: 5,
    pgbench_scale: 1,
};

/// For trying the harness itself: minutes less, numbers not meaningful.
pub const QUICK: Sizes = Sizes {
    ops: 50_000,
    strace_ops: 2_000,
    reps: 2,
    churn_ops: 100_000,
    churn_distinct: 10_000,
    answer_reps: 1,
    redis_requests: 20_000,
    wrk_secs: 1,
    pgbench_secs: 2,
    pgbench_scale: 1,
};

/// Runs every benchmark with `roprof`, writing scratch files under `work`.
/// The tools (bpftrace, strace, GNU time, bpftool), Docker and the fixture
/// images must be there: `cargo xtask bench` sees to them.
pub fn measure(roprof: &Path, sizes: Sizes, quick: bool, work: &Path) -> Result<Bench> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let mut machine = util::machine(roprof, crate::workspace_root())?;
    let stats_off = util::BpfStats::disable()?;
    machine.bpf_stats_enabled_at_start = Some(stats_off.previous().to_owned());
    eprintln!("roprof-bench: bench on {}", machine.summary);
    let started = Instant::now();

    eprintln!(
        "roprof-bench: [1/4] tracing overhead ({} x {} ops per variant) ...",
        sizes.reps, sizes.ops
    );
    let overhead = overhead::run(roprof, &sizes, work)?;
    eprintln!("roprof-bench: [2/4] event throughput and loss ...");
    let throughput = throughput::run(roprof, &sizes, work)?;
    eprintln!("roprof-bench: [3/4] time and runs to a working read-only nginx ...");
    let mut answer = answer::run(roprof, &sizes, work)?;
    eprintln!("roprof-bench: [3/4] default profiles of an idle and a ticking server ...");
    answer.servers = servers::run(roprof, &sizes, work)?;
    eprintln!("roprof-bench: [4/4] real servers under load ...");
    let workloads = workload::run(roprof, &sizes, work)?;

    drop(stats_off);
    machine.load_after = util::loadavg();
    Ok(Bench {
        schema: Schema::V3,
        quick,
        sizes,
        machine,
        wall_secs: started.elapsed().as_secs_f64(),
        overhead,
        throughput,
        answer,
        workloads,
    })
}
