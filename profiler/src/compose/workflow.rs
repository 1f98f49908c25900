//! `profile --compose`: each selected service of a Compose project is
//! profiled with its dependencies running (see [`super::project`]), and
//! the file is hardened with the plans (`read_only: true`, the mounts).
//! The command line prints the results; this module does the work.

use std::collections::BTreeSet;

use super::{
    ComposeError, Hardening, Project, Service,
    project::{ProjectError, ProjectRun},
};
use crate::{
    doctor::Blocker,
    model::{Report, RunMode, Settings},
    render::compose::{VolumeEntry, compose_file},
    request::{Observe, warn_unset, withhold_env},
    runtime::{Engine, RuntimeError},
    session::{
        Context, RunConfig, SessionError,
        closed::flow::{self, Loop},
    },
};

/// What `profile --compose` was asked.
#[derive(Clone, Debug)]
pub struct ComposeRequest {
    /// How each service is observed (a service's `stop_grace_period`
    /// replaces the stop timeout).
    pub observe: Observe,
    /// `--verify`: verify each plan, then run the hardened file.
    pub verify: bool,
    /// `--max-mounts`.
    pub max_mounts: Option<usize>,
    /// `--max-runs` (default: [`crate::request::max_runs`]'s).
    pub max_runs: Option<usize>,
    /// `--quiet`.
    pub quiet: bool,
    /// `--reveal-env`.
    pub reveal_env: bool,
    /// `--ringbuf-bytes`.
    pub ringbuf_bytes: Option<u32>,
}

/// One profiled service.
#[derive(Debug)]
pub struct Profiled {
    /// The service.
    pub name: String,
    /// Its report (env values withheld unless `--reveal-env`).
    pub report: Report,
    /// Its closed loop's verdict, with `--verify`.
    pub verdict: Option<bool>,
}

/// Why `profile --compose` failed. Each variant is the error of the step
/// that failed, as it was (the command line looks into them for its exit
/// code and remedy).
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The file, a service or an image of it.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// Starting the dependencies.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// A run (a signal among them).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The engine.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The host cannot profile.
    #[error(transparent)]
    Host(#[from] Blocker),
}

/// Profiles the `selected` services (see [`select`]), each with its
/// dependencies running, in file order; stops after a run that was cut
/// short. The engine's images are checked first: roprof neither builds
/// nor pulls for a compose file.
pub async fn profile(
    req: &ComposeRequest,
    ctx: &mut Context,
    project: &Project,
    selected: &[&Service],
) -> Result<Vec<Profiled>, WorkflowError> {
    check_images(&ctx.engine, project, selected).await?;
    let engine = ctx.engine.clone();
    let mut run = ProjectRun::start(&engine, project).await?;
    let res = Box::pin(profile_all(req, ctx, &mut run, selected)).await;
    run.finish(ctx).await;
    res
}

/// The hardened file's text, with the reason its comments were lost when
/// it had to be re-serialised.
pub fn hardened(
    project: &Project,
    done: &[Profiled],
) -> Result<(String, Option<String>), ComposeError> {
    let mut taken = BTreeSet::new();
    let hardenings: Vec<Hardening> = done.iter().map(|p| hardening(p, &mut taken)).collect();
    super::harden(project, &hardenings)
}

/// The services `names` selects (every service when empty).
pub fn select<'p>(
    project: &'p Project,
    names: &[String],
) -> Result<Vec<&'p Service>, ComposeError> {
    if names.is_empty() {
        return Ok(project.services.iter().collect());
    }
    let lines = super::lines::Lines::new(&project.text);
    names
        .iter()
        .map(|n| {
            project
                .services
                .iter()
                .find(|s| &s.name == n)
                .ok_or_else(|| {
                    let all: Vec<&str> = project.services.iter().map(|s| s.name.as_str()).collect();
                    ComposeError::Key {
                        file: project.file.display().to_string(),
                        line: lines.line_of(&["services"]),
                        key: "services".into(),
                        reason: format!(
                            "--service {n}: no such service (the file has: {})",
                            all.join(", ")
                        ),
                    }
                })
        })
        .collect()
}

/// Every image the selected services and their dependencies need must be
/// present locally: roprof neither builds nor pulls for a compose file.
pub async fn check_images(
    engine: &Engine,
    project: &Project,
    selected: &[&Service],
) -> Result<(), ComposeError> {
    let mut needed: BTreeSet<&str> = selected.iter().map(|s| s.name.as_str()).collect();
    let mut grew = true;
    while grew {
        grew = false;
        for s in &project.services {
            if needed.contains(s.name.as_str()) {
                for (d, _) in &s.depends_on {
                    grew |= needed.insert(d.as_str());
                }
            }
        }
    }
    let lines = super::lines::Lines::new(&project.text);
    for s in project
        .services
        .iter()
        .filter(|s| needed.contains(s.name.as_str()))
    {
        if !matches!(engine.has_image(&s.image).await, Ok(true)) {
            let path = ["services", s.name.as_str(), "image"];
            return Err(ComposeError::Key {
                file: project.file.display().to_string(),
                line: lines.line_of(&path),
                key: path.join("."),
                reason: format!(
                    "image `{}` is not present locally (roprof does not pull or build for a \
                     compose file: run `docker-compose pull` or `docker-compose build` first)",
                    s.image
                ),
            });
        }
    }
    Ok(())
}

async fn profile_all(
    req: &ComposeRequest,
    ctx: &mut Context,
    run: &mut ProjectRun<'_>,
    selected: &[&Service],
) -> Result<Vec<Profiled>, WorkflowError> {
    let how = if req.verify { Loop::Verify } else { Loop::None };
    let mut done = Vec::new();
    for svc in selected {
        eprintln!("roprof: services.{}: profiling {}", svc.name, svc.image);
        let round = Box::pin(profile_one(req, ctx, run, svc, how)).await;
        run.end_round(ctx).await;
        let p = round?;
        let stop = p.report.run.incomplete;
        done.push(p);
        if stop {
            break;
        }
    }
    Ok(done)
}

async fn profile_one(
    req: &ComposeRequest,
    ctx: &mut Context,
    run: &mut ProjectRun<'_>,
    svc: &Service,
    how: Loop,
) -> Result<Profiled, WorkflowError> {
    let (opts, env, extras) = run.options(svc, req.reveal_env)?;
    warn_unset(&env);
    run.start_dependencies(svc).await?;
    let mut observe = req.observe.clone();
    if let Some(grace) = svc.stop_grace_secs {
        observe.stop_timeout = grace;
    }
    let cfg = RunConfig {
        quiet: req.quiet,
        ringbuf_bytes: req.ringbuf_bytes,
        extras,
        ..observe.config(svc.image.clone(), opts, env, RunMode::Profile)
    };
    let settings = Settings {
        max_mounts: req.max_mounts,
        ..Settings::default()
    };
    let p = flow::profile(
        ctx,
        &cfg,
        settings,
        how,
        crate::request::max_runs(how, req.max_runs),
    )
    .await?;
    let mut report = p.report;
    report.stats.peak_rss_kib = crate::host::peak_rss_kib().unwrap_or(0);
    withhold_env(&mut report, &cfg.env, req.reveal_env);
    Ok(Profiled {
        name: svc.name.clone(),
        report,
        verdict: p.verdict,
    })
}

/// The plan of one service as compose entries (the user's own tmpfs and
/// volumes are in the file already); volume names unique in the file.
fn hardening(p: &Profiled, taken: &mut BTreeSet<String>) -> Hardening {
    let r = &p.report.run_options;
    let file = compose_file(&p.report);
    let Some(mut svc) = file.services.into_values().next() else {
        return Hardening::default();
    };
    svc.tmpfs
        .truncate(svc.tmpfs.len().saturating_sub(r.tmpfs.len()));
    svc.volumes
        .truncate(svc.volumes.len().saturating_sub(r.volumes.len()));
    let mut named = Vec::new();
    for v in &mut svc.volumes {
        if let VolumeEntry::Long(l) = v
            && let Some(src) = &mut l.source
        {
            if !taken.insert(src.clone()) {
                *src = format!("{}-{src}", p.name);
                taken.insert(src.clone());
            }
            named.push(src.clone());
        }
    }
    Hardening {
        service: p.name.clone(),
        tmpfs: svc.tmpfs,
        volumes: svc.volumes,
        named,
    }
}
