//! Event throughput and loss: opsuite's `churn N DISTINCT DIR` (N x
//! open-for-write + write one byte + close, cycling over DISTINCT names)
//! under roprof, with the kernel maps' memory sampled by `bpftool map show`
//! while it runs and the peak RSS from `/usr/bin/time -v`.
//!
//! Two runs: `--format json` (the numbers come from the report; its peak RSS
//! includes rendering a report with every path) and `--format docker` (a
//! one-line output, so its peak RSS is the tracing and analysis alone).

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::{
    docker::image_name,
    roprof_report::RoprofReport,
    schema::{Sizes, Throughput},
    util::{self, Sampling},
};

/// A tmpfs in the container: the writes are traced like any other, and
/// removing the container does not have to delete 100k files from an
/// overlayfs layer (tens of seconds on this machine). Each 1-byte file
/// takes a 4 KiB page: 100k of them need 400 MiB (256 MiB ran out at the
/// 65,536th file, and every later write failed with ENOSPC).
const DIR: &str = "/tmp/m";
const TMPFS: &str = "/tmp/m:rw,size=512m";

pub fn run(roprof: &Path, sizes: &Sizes, work: &Path) -> Result<Throughput> {
    let args = |format: &str| -> Vec<String> {
        [
            "profile",
            "--quiet",
            "--format",
            format,
            "--duration",
            "300s",
            "--tmpfs",
            TMPFS,
        ]
        .into_iter()
        .map(String::from)
        .chain([
            image_name("writer"),
            "churn".into(),
            sizes.churn_ops.to_string(),
            sizes.churn_distinct.to_string(),
            DIR.into(),
        ])
        .collect()
    };

    let json_run = util::run_roprof(roprof, &args("json"), work, Sampling::Maps)
        .context("churn under roprof --format json")?;
    let report = RoprofReport::from_run(&json_run)?;
    // The workload must have done what the table says it did.
    let code = report.run.exit_code;
    if code != Some(0) {
        anyhow::bail!(
            "the churn workload exited {code:?} in the container: {}",
            report.logs_tail()
        );
    }
    let churn = util::tagged_fields(&report.logs_tail(), "CHURN")
        .context("no CHURN line in the report's logs_tail")?;
    let events = report.stats.events;
    let deduped = report.stats.deduped;
    let observed = report.run.observed_secs.unwrap_or(0.0);
    let workload_ns = churn.get("ns").copied().unwrap_or(0);
    let paths = report.paths.len();
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let (events_f, deduped_f, ops_f, ns_f) = (
        events as f64,
        deduped as f64,
        sizes.churn_ops as f64,
        workload_ns as f64,
    );
    let cpu = json_run.time.user_secs + json_run.time.sys_secs;
    eprintln!(
        "roprof-bench:   {events} events, {deduped} deduped in {observed:.1} s; peak RSS {} KiB",
        json_run.time.max_rss_kib
    );

    let docker_run = util::run_roprof(roprof, &args("docker"), work, Sampling::Maps)
        .context("churn under roprof --format docker")?;
    eprintln!(
        "roprof-bench:   --format docker: peak RSS {} KiB",
        docker_run.time.max_rss_kib
    );

    Ok(Throughput {
        ops: sizes.churn_ops,
        distinct: sizes.churn_distinct,
        dir: DIR.into(),
        tmpfs: TMPFS.into(),
        exit_code: json_run.exit_code,
        wall_secs: json_run.wall_secs,
        observed_secs: observed,
        workload_ns,
        workload_ops_per_sec: if ns_f > 0.0 { ops_f * 1e9 / ns_f } else { 0.0 },
        events,
        deduped,
        stats: report.stats,
        losses: report.losses,
        paths_in_report: paths,
        events_per_sec: if observed > 0.0 {
            events_f / observed
        } else {
            0.0
        },
        kernel_handled_per_sec: if observed > 0.0 {
            (events_f + deduped_f) / observed
        } else {
            0.0
        },
        roprof_cpu_secs: cpu,
        roprof_user_secs: json_run.time.user_secs,
        roprof_sys_secs: json_run.time.sys_secs,
        max_rss_kib_json: json_run.time.max_rss_kib,
        sampled_rss_kib_json: json_run.sampled_rss_kib,
        json_report_bytes: json_run.stdout.len(),
        max_rss_kib_docker: docker_run.time.max_rss_kib,
        sampled_rss_kib_docker: docker_run.sampled_rss_kib,
        exit_code_docker: docker_run.exit_code,
        map_memlock_bytes: json_run.map_memlock_max,
        maps: json_run.maps_at_max,
        map_memlock_bytes_docker_run: docker_run.map_memlock_max,
        other_roprof_tracers: json_run.foreign_tracers.max(docker_run.foreign_tracers),
    })
}
