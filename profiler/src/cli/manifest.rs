//! `roprof profile --manifest FILE [--container NAME]`: profiles a
//! container of a Kubernetes workload's pod template, run on Docker with
//! the kubelet's semantics (see [`roprof::kube`]), and prints the manifest
//! patched as `roprof patch` patches it (untouched documents byte for
//! byte). With `--verify`, the plan is verified and repaired as for an
//! image, then the patched pod itself is run read-only, initContainers and
//! all, with the kubelet's semantics, and compared with the profile.

use std::path::Path;

use anyhow::Context as _;

use super::profile::{Mode, ProfileArgs};
use roprof::{
    kube::{
        self, KubeError, Manifest,
        workflow::{self, ManifestRequest, Profiled, WorkflowError},
    },
    render,
    runtime::Engine,
    session::Context,
};

/// Keeps the interrupt visible to `main` (exit 130).
fn lift(e: KubeError) -> anyhow::Error {
    match e {
        KubeError::Session(s) => s.into(),
        e => e.into(),
    }
}

/// The step's own error, for `main`'s exit code and remedy.
fn lift_workflow(e: WorkflowError) -> anyhow::Error {
    match e {
        WorkflowError::Kube(e) => lift(e),
        WorkflowError::Session(s) => s.into(),
        e => e.into(),
    }
}

/// Refuses the closed loops `--manifest` has not: the `docker run`
/// options the pod template gives are refused by clap already
/// ([`super::GIVEN_BY_THE_FILE`]).
fn refuse_run_flags(args: &ProfileArgs) {
    use clap::CommandFactory as _;
    if args.mode == Mode::Iterate || args.check_minimal {
        super::Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--mode iterate and --check-minimal are not available with --manifest (it takes \
                 the command, environment, user, working directory and volumes from the pod \
                 template; only -p/--publish, for --probe, may be added)",
            )
            .exit();
    }
}

/// Runs `profile --manifest`.
pub async fn run(args: &ProfileArgs, path: &Path) -> anyhow::Result<i32> {
    refuse_run_flags(args);
    // Bad input is refused before anything is loaded or created.
    let manifest = Manifest::load(path)?;
    let (w, c) = manifest.select(args.container.as_deref())?;
    if !args.quiet && args.container.is_none() && w.spec.containers.len() > 1 {
        eprintln!(
            "roprof: {} has {} containers; profiling {} (pass --container for another)",
            w.describe(),
            w.spec.containers.len(),
            c.name
        );
    }
    roprof::doctor::preflight(args.ringbuf_bytes)?;
    let engine = Engine::connect().await?;
    let pod = kube::prepare(&engine, &manifest, w, c, args.quiet)
        .await
        .map_err(lift)?;
    for n in &pod.notes {
        eprintln!("roprof: warning: {n}");
    }
    let req = ManifestRequest {
        observe: args.observe.observe(),
        publish: args.run.publish.clone(),
        verify: args.verify,
        max_mounts: args.max_mounts,
        max_runs: args.max_runs,
        quiet: args.quiet,
        read_only: args.read_only,
        reveal_env: args.reveal_env,
        ringbuf_bytes: args.ringbuf_bytes,
    };
    let mut ctx = Context::new(engine, args.ringbuf_bytes);
    let res = Box::pin(workflow::profile(
        &req,
        &mut ctx,
        &manifest,
        (w, &c.name),
        pod,
    ))
    .await;
    ctx.teardown().await;
    finish(args, res.map_err(lift_workflow)?)
}

/// Writes the outputs and picks the exit code: the patched manifest on
/// stdout, every report format under `-o`.
fn finish(args: &ProfileArgs, done: Profiled) -> anyhow::Result<i32> {
    let Profiled {
        mut report,
        patched,
        verdict,
    } = done;
    if let Some(ok) = verdict {
        super::verify::print_verdict(&report, ok);
    }
    report.stats.peak_rss_kib = roprof::host::peak_rss_kib().unwrap_or(0);
    for w in render::unrepresentable(&report) {
        eprintln!("roprof: warning: {w}");
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let options = args.k8s.options(&report, args.helm_prefix.clone());
        let files = render::write_all_with(&report, dir, &options)?;
        eprintln!("roprof: wrote {} files to {}", files.len(), dir.display());
    }
    if report.run.incomplete {
        // A patch from a partial run must not be applied: no manifest on
        // stdout (the report under -o says what was seen).
        eprintln!(
            "roprof: no patched manifest: the profile did not finish, so its mounts cannot be \
             trusted"
        );
    } else {
        print!("{patched}");
    }
    if let Some(exit) = report.run.exit_code.filter(|c| *c != 0)
        && report.run.ended == Some(roprof::model::Ended::Exited)
    {
        eprintln!(
            "roprof: warning: the container exited {exit} on its own during the profile: the \
             patch covers only what it wrote before (its last log lines are in the report)"
        );
    }
    Ok(super::exit_code(
        "profile",
        &report,
        verdict,
        args.allow_loss,
    ))
}
