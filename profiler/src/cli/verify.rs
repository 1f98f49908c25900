//! `roprof verify IMAGE --report report.json`: re-run read-only with the
//! plan's mounts, under tracing, and compare with the observed run.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;

use super::{EXIT_VERIFY_FAILED, RunArgs, parse_duration};
use crate::{
    model::{MountKind, Op, PathObservation, Report},
    render::{self, docker::tmpfs_options},
    runtime::Engine,
    session::{self, RunConfig, RunOutput},
};

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The report whose plan to verify.
    #[arg(long)]
    pub report: PathBuf,
    /// Observation window.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub stop_timeout: i32,
    /// Shell command run on the host during the window.
    #[arg(long)]
    pub exercise: Option<String>,
    /// URL polled until it answers (publish the port on 127.0.0.1).
    #[arg(long)]
    pub probe: Option<String>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Image to run (default: the report's).
    pub image: Option<String>,
}

/// Outcome of a verification run.
#[derive(Debug, Default)]
pub struct Verdict {
    /// No difference found.
    pub passed: bool,
    /// What differs.
    pub differences: Vec<String>,
}

fn failed_only(o: &PathObservation, op: Op) -> Option<String> {
    let s = o.ops.get(&op)?;
    (s.ok == 0 && !s.errors.is_empty())
        .then(|| s.errors.keys().cloned().collect::<Vec<_>>().join(","))
}

/// Compares a read-only run with the observed (writable) one.
#[must_use]
pub fn compare(observed: &Report, ro: &RunOutput) -> Verdict {
    let mut diffs = Vec::new();
    for o in &ro.observations {
        for (op, st) in &o.ops {
            if let Some(n) = st.errors.get("EROFS") {
                diffs.push(format!("EROFS: {op:?} on {} ({n}x)", o.path));
            }
        }
    }
    for before in observed.paths.iter().filter(|o| o.any_write_ok()) {
        let Some(now) = ro.observations.iter().find(|o| o.path == before.path) else {
            continue;
        };
        for (op, st) in &before.ops {
            if st.ok > 0 && op.is_write() {
                if let Some(errs) = failed_only(now, *op) {
                    if !errs.contains("EROFS") {
                        diffs.push(format!(
                            "{op:?} on {} succeeded before, now fails with {errs}",
                            before.path
                        ));
                    }
                }
            }
        }
    }
    if observed.run.exit_code != ro.meta.exit_code {
        diffs.push(format!(
            "exit code differs: observed {:?}, read-only {:?}",
            observed.run.exit_code, ro.meta.exit_code
        ));
    }
    if observed.run.health.as_deref() == Some("healthy")
        && ro.meta.health.as_deref() != Some("healthy")
    {
        diffs.push("the probe answered in the observed run but not read-only".into());
    }
    diffs.sort();
    diffs.dedup();
    Verdict {
        passed: diffs.is_empty(),
        differences: diffs,
    }
}

/// Runs the report's image read-only with its plan and compares.
pub async fn verify(
    engine: &Engine,
    report: &Report,
    mut cfg: RunConfig,
) -> anyhow::Result<(Verdict, RunOutput)> {
    let tag = report
        .run
        .container_id
        .get(..12)
        .unwrap_or("run")
        .to_owned();
    let mut volumes = Vec::new();
    cfg.read_only = true;
    cfg.mode = "verify";
    cfg.keep = false;
    for (i, m) in report.plan.mounts.iter().enumerate() {
        let target = m
            .target
            .to_str()
            .context("a mount target is not UTF-8; Docker cannot express it")?;
        match m.kind {
            MountKind::Tmpfs => cfg.extra_tmpfs.push((target.to_owned(), tmpfs_options(m))),
            MountKind::SeededVolume | MountKind::PersistentVolume => {
                let name = format!("roprof-verify-{tag}-{i}");
                cfg.extra_binds.push(format!("{name}:{target}"));
                volumes.push(name);
            }
        }
    }
    let out = session::run(engine, &cfg).await;
    for v in &volumes {
        if let Err(e) = engine.remove_volume(v).await {
            eprintln!("roprof: {e}");
        }
    }
    let out = out?;
    Ok((compare(report, &out), out))
}

/// Prints a verdict on stderr.
pub fn print_verdict(v: &Verdict) {
    if v.passed {
        eprintln!(
            "roprof: verified: the image behaves the same with --read-only and the proposed mounts"
        );
    } else {
        eprintln!("roprof: verification FAILED:");
        for d in &v.differences {
            eprintln!("  - {d}");
        }
    }
}

/// Runs `verify`.
pub async fn run(args: &VerifyArgs, run_args: &RunArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("reading report {}", args.report.display()))?;
    let report = render::json::load_report(&text)
        .with_context(|| format!("loading report {}", args.report.display()))?;
    let engine = Engine::connect().await?;
    let mut run = report.run_options.clone();
    // Extra docker-run flags given to verify are added to the report's.
    let extra = run_args.to_options(&[]);
    run.publish.extend(extra.publish);
    run.env.extend(extra.env);
    let cfg = RunConfig {
        image: args
            .image
            .clone()
            .unwrap_or_else(|| report.image.image.clone()),
        run,
        duration: args.duration,
        stop_timeout: args.stop_timeout,
        exercise: args.exercise.clone(),
        probe: args.probe.clone(),
        keep: false,
        quiet: args.quiet,
        read_only: true,
        extra_tmpfs: vec![],
        extra_binds: vec![],
        mode: "verify",
        ringbuf_bytes: None,
    };
    let (verdict, _) = verify(&engine, &report, cfg).await?;
    print_verdict(&verdict);
    Ok(if verdict.passed {
        0
    } else {
        EXIT_VERIFY_FAILED
    })
}
