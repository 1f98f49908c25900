//! `profile --manifest`: a container of a Kubernetes workload's pod
//! template, run on Docker with the kubelet's semantics (see
//! [`super::prepare`]), profiled, and its manifest patched as
//! `roprof patch` patches it; with `--verify`, the plan is verified and
//! repaired as for an image, then the patched pod itself is run read-only,
//! initContainers and all, and compared with the profile. The command line
//! prints the results; this module does the work.

use std::path::PathBuf;

use super::{KubeError, Manifest, PodRun, Workload};
use crate::{
    model::{Report, RoundKind, RunMode, Settings},
    render::patch::PatchError,
    request::{Observe, withhold_env},
    session::{
        self, Context, RunConfig, SessionError,
        closed::{
            compare,
            flow::{self, Loop},
        },
    },
};

/// What `profile --manifest` was asked.
#[derive(Clone, Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the command line's switches, each its own flag"
)]
pub struct ManifestRequest {
    /// How the container is observed.
    pub observe: Observe,
    /// `-p`, for `--probe` (the only run option the pod template does not
    /// give).
    pub publish: Vec<String>,
    /// `--verify`.
    pub verify: bool,
    /// `--max-mounts`.
    pub max_mounts: Option<usize>,
    /// `--max-runs` (default: [`crate::request::max_runs`]'s).
    pub max_runs: Option<usize>,
    /// `--quiet`.
    pub quiet: bool,
    /// `--read-only`: profile with a read-only root.
    pub read_only: bool,
    /// `--reveal-env`.
    pub reveal_env: bool,
    /// `--ringbuf-bytes`.
    pub ringbuf_bytes: Option<u32>,
}

/// The profile and its patch.
#[derive(Debug)]
pub struct Profiled {
    /// The report (env values as the request says).
    pub report: Report,
    /// The manifest, the profiled workload's document patched.
    pub patched: String,
    /// The closed loop's verdict with `--verify` (the patched pod's run
    /// included).
    pub verdict: Option<bool>,
}

/// Why `profile --manifest` failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// Preparing the pod.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// A run (a signal among them).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Patching the manifest.
    #[error("patching {}: {source}", path.display())]
    Patch {
        /// The manifest.
        path: PathBuf,
        /// Cause.
        source: PatchError,
    },
    /// The patched manifest, read back for verification, is not what
    /// was written.
    #[error("reading back the patched manifest: {what}")]
    ReadBack {
        /// What is wrong.
        what: &'static str,
        /// Cause.
        #[source]
        source: Option<Box<KubeError>>,
    },
}

/// Profiles container `container` of `workload` (prepared as `pod`),
/// patches the manifest and, with `--verify`, verifies.
pub async fn profile(
    req: &ManifestRequest,
    ctx: &mut Context,
    manifest: &Manifest,
    (workload, container): (&Workload, &str),
    pod: PodRun,
) -> Result<Profiled, WorkflowError> {
    let cfg = config(req, &pod, req.read_only);
    Box::pin(profile_and_patch(
        req,
        ctx,
        &cfg,
        manifest,
        (workload, container),
        pod,
    ))
    .await
}

fn config(req: &ManifestRequest, pod: &PodRun, read_only: bool) -> RunConfig {
    let mut run = pod.run.clone();
    run.publish.clone_from(&req.publish);
    if !req.reveal_env {
        run.withhold_env_values();
    }
    RunConfig {
        quiet: req.quiet,
        read_only,
        ringbuf_bytes: req.ringbuf_bytes,
        ..req
            .observe
            .config(pod.image.clone(), run, pod.env.clone(), RunMode::Profile)
    }
}

/// Profiles, patches and (with `--verify`) verifies; the pod's volumes
/// live until the profile's runs are over.
async fn profile_and_patch(
    req: &ManifestRequest,
    ctx: &mut Context,
    cfg: &RunConfig,
    manifest: &Manifest,
    (workload, container): (&Workload, &str),
    pod: PodRun,
) -> Result<Profiled, WorkflowError> {
    let settings = Settings {
        max_mounts: req.max_mounts,
        ..Settings::default()
    };
    let how = if req.verify { Loop::Verify } else { Loop::None };
    let p = flow::profile(
        ctx,
        cfg,
        settings,
        how,
        crate::request::max_runs(how, req.max_runs),
    )
    .await?;
    drop(pod);
    let mut report = p.report;
    withhold_env(&mut report, &cfg.env, req.reveal_env);
    let mut verdict = p.verdict;
    report.run.notes.extend(kube_notes(manifest));
    let patched = manifest
        .patch(workload, &report, container)
        .map_err(|source| WorkflowError::Patch {
            path: manifest.path.clone(),
            source,
        })?;
    if verdict == Some(true) && !report.run.incomplete {
        let ok = verify_patched(
            req,
            ctx,
            manifest,
            &patched,
            (workload.doc, container),
            &mut report,
        )
        .await?;
        verdict = Some(ok);
    }
    Ok(Profiled {
        report,
        patched,
        verdict,
    })
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
    req: &ManifestRequest,
    ctx: &mut Context,
    manifest: &Manifest,
    patched: &str,
    (doc, container): (usize, &str),
    report: &mut Report,
) -> Result<bool, WorkflowError> {
    let m = Manifest::parse(&manifest.path, patched.to_owned()).map_err(|source| {
        WorkflowError::ReadBack {
            what: "the manifest does not parse",
            source: Some(Box::new(source)),
        }
    })?;
    let lost = |what| WorkflowError::ReadBack { what, source: None };
    let w = m
        .workload_at(doc)
        .ok_or_else(|| lost("it lost the profiled workload"))?;
    let c = w
        .spec
        .containers
        .iter()
        .find(|c| c.name == container)
        .ok_or_else(|| lost("it lost the profiled container"))?;
    if !req.quiet {
        eprintln!(
            "roprof: running the patched {} with the kubelet's semantics",
            w.describe()
        );
    }
    let pod = super::prepare(&ctx.engine, &m, w, c, req.quiet).await?;
    let mut cfg = config(req, &pod, pod.read_only);
    cfg.mode = RunMode::Verify;
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
    let mounts = report.plan.mounts.clone();
    let mut round = crate::session::closed::round_of(RoundKind::Verify, &mounts, &ro, &v);
    round.action = if v.passed {
        "the patched manifest ran read-only with the kubelet's semantics and matched".into()
    } else {
        "the patched manifest, run with the kubelet's semantics, differed".into()
    };
    crate::session::closed::record(report, round);
    report.run.notes.push(format!(
        "the patched manifest {} with the kubelet's semantics",
        if v.passed {
            "verified"
        } else {
            "FAILED verification"
        }
    ));
    crate::session::closed::set_verification(report, v.passed);
    Ok(v.passed)
}

fn pod_read_only(cfg: &RunConfig) -> bool {
    cfg.read_only
}
