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
    kube::{self, KubeError, Manifest, PodRun},
    model::Settings,
    model::{Report, Round, RoundKind},
    render,
    runtime::Engine,
    session::{
        self, Context, RunConfig,
        closed::{
            compare,
            flow::{self, Loop},
        },
    },
};

/// Keeps the interrupt visible to `main` (exit 130).
fn lift(e: KubeError) -> anyhow::Error {
    match e {
        KubeError::Session(s) => s.into(),
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
    let cfg = config(args, &pod, args.read_only);
    let mut ctx = Context::new(engine, args.ringbuf_bytes);
    let res = Box::pin(profile_and_patch(
        args,
        &mut ctx,
        &cfg,
        &manifest,
        (w, &c.name),
        pod,
    ))
    .await;
    ctx.teardown().await;
    let (report, patched, verdict) = res?;
    finish(args, &cfg, report, &patched, verdict)
}

fn config(args: &ProfileArgs, pod: &PodRun, read_only: bool) -> RunConfig {
    let mut run = pod.run.clone();
    run.publish.clone_from(&args.run.publish);
    if !args.reveal_env {
        run.withhold_env_values();
    }
    RunConfig {
        quiet: args.quiet,
        read_only,
        ringbuf_bytes: args.ringbuf_bytes,
        ..args.observe.observe().config(
            pod.image.clone(),
            run,
            pod.env.clone(),
            roprof::model::RunMode::Profile,
        )
    }
}

/// Profiles, patches and (with `--verify`) verifies; the pod's volumes
/// live until the profile's runs are over.
async fn profile_and_patch(
    args: &ProfileArgs,
    ctx: &mut Context,
    cfg: &RunConfig,
    manifest: &Manifest,
    (workload, container): (&kube::Workload, &str),
    pod: PodRun,
) -> anyhow::Result<(Report, String, Option<bool>)> {
    let settings = Settings {
        max_mounts: args.max_mounts,
        ..Settings::default()
    };
    let how = if args.verify {
        Loop::Verify
    } else {
        Loop::None
    };
    let p = flow::profile(
        ctx,
        cfg,
        settings,
        how,
        roprof::request::max_runs(how, args.max_runs),
    )
    .await?;
    drop(pod);
    let mut report = p.report;
    let mut verdict = p.verdict;
    report.run.notes.extend(kube_notes(manifest));
    let patched = manifest
        .patch(workload, &report, container)
        .with_context(|| format!("patching {}", manifest.path.display()))?;
    if verdict == Some(true) && !report.run.incomplete {
        let ok = verify_patched(
            args,
            ctx,
            manifest,
            &patched,
            (workload.doc, container),
            &mut report,
        )
        .await?;
        verdict = Some(ok);
    }
    Ok((report, patched, verdict))
}

fn kube_notes(manifest: &Manifest) -> Vec<String> {
    vec![format!(
        "run from {} with the kubelet's semantics (volumes as the kubelet makes them, \
         initContainers first); the -v paths above are the pod's volumes on the profiling host",
        manifest.path.display()
    )]
}

/// Runs the patched pod read-only with the kubelet's semantics (fresh
/// volumes, its initContainers, roprof's seeds among them) and compares
/// it with the profile. The round is added to the report.
async fn verify_patched(
    args: &ProfileArgs,
    ctx: &mut Context,
    manifest: &Manifest,
    patched: &str,
    (doc, container): (usize, &str),
    report: &mut Report,
) -> anyhow::Result<bool> {
    let m = Manifest::parse(&manifest.path, patched.to_owned())
        .context("reading back the patched manifest")?;
    let w = m
        .workload_at(doc)
        .context("the patched manifest lost the profiled workload")?;
    let c = w
        .spec
        .containers
        .iter()
        .find(|c| c.name == container)
        .context("the patched workload lost the profiled container")?;
    if !args.quiet {
        eprintln!(
            "roprof: running the patched {} with the kubelet's semantics",
            w.describe()
        );
    }
    let pod = kube::prepare(&ctx.engine, &m, w, c, args.quiet)
        .await
        .map_err(lift)?;
    let mut cfg = config(args, &pod, pod.read_only);
    cfg.mode = roprof::model::RunMode::Verify;
    let ro = session::run(ctx, &cfg).await;
    if let Ok(o) = &ro {
        ctx.remove_later(o.meta.container_id.clone(), Vec::new());
    }
    let ro = ro?;
    drop(pod);
    let mut v = compare(report, &ro);
    if !pod_read_only(&cfg) {
        v.passed = false;
        v.differences
            .push("the patched container does not have readOnlyRootFilesystem: true".into());
    }
    report.rounds.push(Round {
        kind: RoundKind::Verify,
        mounts: report
            .plan
            .mounts
            .iter()
            .map(|m| m.target.clone())
            .collect(),
        erofs: v.erofs,
        exit_code: ro.meta.exit_code,
        health: ro.meta.health,
        passed: v.passed,
        differences: v.differences.clone(),
        action: if v.passed {
            "the patched manifest ran read-only with the kubelet's semantics and matched".into()
        } else {
            "the patched manifest, run with the kubelet's semantics, differed".into()
        },
        ended: ro.meta.ended,
        phases: ro.stats.phases.clone(),
    });
    report.run.notes.push(format!(
        "the patched manifest {} with the kubelet's semantics",
        if v.passed {
            "verified"
        } else {
            "FAILED verification"
        }
    ));
    Ok(v.passed)
}

fn pod_read_only(cfg: &RunConfig) -> bool {
    cfg.read_only
}

/// Writes the outputs and picks the exit code: the patched manifest on
/// stdout, every report format under `-o`.
fn finish(
    args: &ProfileArgs,
    cfg: &RunConfig,
    mut report: Report,
    patched: &str,
    verdict: Option<bool>,
) -> anyhow::Result<i32> {
    if let Some(ok) = verdict {
        super::verify::print_rounds(&report, ok);
    }
    report.stats.peak_rss_kib = super::render::peak_rss_kib().unwrap_or(0);
    super::withhold_env(&mut report, &cfg.env, args.reveal_env);
    for w in render::unrepresentable(&report) {
        eprintln!("roprof: warning: {w}");
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let options = render::RenderOptions {
            helm_prefix: args.helm_prefix.clone(),
        };
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
