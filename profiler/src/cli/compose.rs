//! `roprof profile --compose FILE [--service NAME]...`: profiles each
//! selected service of a Compose project with its dependencies running,
//! then prints the file hardened (`read_only: true` and the plans' mounts)
//! on stdout, or writes it to `-o FILE`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use clap::Args;

use roprof::request::{EXIT_VERIFY_FAILED, Outcome, outcome};

use super::profile::ProfileArgs;
use roprof::{
    compose::{
        self, ComposeError, Hardening, Project, Service,
        project::{ProjectError, ProjectRun},
        verify::{self, Expect},
    },
    model::Settings,
    model::{Ended, MountKind, Report},
    render::compose::{VolumeEntry, compose_file},
    runtime::Engine,
    session::{
        Context, RunConfig,
        closed::flow::{self, Loop},
    },
};

/// `--compose` and `--service`.
#[derive(Debug, Args, Clone, Default)]
pub struct ComposeArgs {
    /// Profile the services of this Compose file instead of IMAGE, each with
    /// its own image, command, environment, user, ports, tmpfs and volumes,
    /// and its dependencies running; print the file hardened (or write it
    /// to -o FILE). With --verify, the hardened file is also run with
    /// docker-compose and compared. --probe and --exercise apply to every
    /// profiled service (pick one with --service).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = super::GIVEN_BY_THE_FILE,
        conflicts_with_all = [
            "image", "command", "check_minimal", "publish", "keep", "read_only", "format"
        ]
    )]
    pub compose: Option<PathBuf>,
    /// With --compose: profile this service (repeat for more; all by default).
    #[arg(long = "service", value_name = "NAME", requires = "compose")]
    pub service: Vec<String>,
}

/// One profiled service.
struct Profiled {
    name: String,
    report: Report,
    verdict: Option<bool>,
}

/// Runs `profile --compose`.
pub async fn run(args: &ProfileArgs, file: &Path) -> anyhow::Result<i32> {
    if args.mode == super::profile::Mode::Iterate {
        anyhow::bail!("--compose profiles in --mode observe only");
    }
    let project = compose::load(file)?;
    for w in &project.ignored {
        eprintln!("roprof: warning: {w}");
    }
    let selected = select(&project, &args.compose.service)?;
    roprof::doctor::preflight(args.ringbuf_bytes)?;
    let engine = Engine::connect().await?;
    check_images(&engine, &project, &selected).await?;
    let mut ctx = Context::new(engine.clone(), args.ringbuf_bytes);
    let mut run = ProjectRun::start(&engine, &project)
        .await
        .map_err(unwrap_session)?;
    let res = Box::pin(profile_all(args, &mut ctx, &mut run, &selected)).await;
    run.finish(&mut ctx).await;
    let code = match res {
        Ok(done) => finish(args, &engine, &project, done).await,
        Err(e) => Err(e),
    };
    ctx.teardown().await;
    code
}

/// A signal stays a `SessionError` for `main`'s exit code.
fn unwrap_session(e: ProjectError) -> anyhow::Error {
    match e {
        ProjectError::Session(s) => s.into(),
        e => e.into(),
    }
}

fn select<'p>(project: &'p Project, names: &[String]) -> Result<Vec<&'p Service>, ComposeError> {
    if names.is_empty() {
        return Ok(project.services.iter().collect());
    }
    let lines = compose::lines::Lines::new(&project.text);
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
async fn check_images(
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
    let lines = compose::lines::Lines::new(&project.text);
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
    args: &ProfileArgs,
    ctx: &mut Context,
    run: &mut ProjectRun<'_>,
    selected: &[&Service],
) -> anyhow::Result<Vec<Profiled>> {
    let how = if args.verify {
        Loop::Verify
    } else {
        Loop::None
    };
    let mut done = Vec::new();
    for svc in selected {
        eprintln!("roprof: services.{}: profiling {}", svc.name, svc.image);
        let round = profile_one(args, ctx, run, svc, how).await;
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
    args: &ProfileArgs,
    ctx: &mut Context,
    run: &mut ProjectRun<'_>,
    svc: &Service,
    how: Loop,
) -> anyhow::Result<Profiled> {
    let (opts, env, extras) = run.options(svc, args.reveal_env).map_err(unwrap_session)?;
    super::warn_unset(&env);
    run.start_dependencies(svc).await.map_err(unwrap_session)?;
    let mut observe = args.observe.observe();
    if let Some(grace) = svc.stop_grace_secs {
        observe.stop_timeout = grace;
    }
    let cfg = RunConfig {
        quiet: args.quiet,
        ringbuf_bytes: args.ringbuf_bytes,
        extras,
        ..observe.config(
            svc.image.clone(),
            opts,
            env,
            roprof::model::RunMode::Profile,
        )
    };
    let settings = Settings {
        max_mounts: args.max_mounts,
        ..Settings::default()
    };
    let p = flow::profile(
        ctx,
        &cfg,
        settings,
        how,
        roprof::request::max_runs(how, args.max_runs),
    )
    .await?;
    let mut report = p.report;
    report.stats.peak_rss_kib = super::render::peak_rss_kib().unwrap_or(0);
    super::withhold_env(&mut report, &cfg.env, args.reveal_env);
    if let Some(ok) = p.verdict {
        super::verify::print_rounds(&report, ok);
    }
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

fn summary(p: &Profiled) {
    let mounts: Vec<String> = p
        .report
        .plan
        .mounts
        .iter()
        .map(|m| {
            let kind = match m.kind {
                MountKind::Tmpfs => "tmpfs",
                MountKind::SeededVolume => "anonymous volume",
                MountKind::PersistentVolume => "named volume",
            };
            format!("{kind} {}", m.target.display())
        })
        .collect();
    eprintln!(
        "roprof: services.{}: {} mount(s){}{}",
        p.name,
        mounts.len(),
        if mounts.is_empty() { "" } else { ": " },
        mounts.join(", ")
    );
}

async fn finish(
    args: &ProfileArgs,
    engine: &Engine,
    project: &Project,
    done: Vec<Profiled>,
) -> anyhow::Result<i32> {
    for p in &done {
        summary(p);
        for w in roprof::render::unrepresentable(&p.report) {
            eprintln!("roprof: warning: services.{}: {w}", p.name);
        }
        if !p.report.losses.is_clean() && !args.allow_loss {
            eprintln!(
                "roprof: services.{}: the profile is INCOMPLETE: {:?}",
                p.name, p.report.losses
            );
        }
    }
    if let Some(p) = done.iter().find(|p| p.report.run.incomplete) {
        eprintln!(
            "roprof: services.{}: not writing a hardened file from a partial profile",
            p.name
        );
        return Ok(super::exit_code(
            "profile",
            &p.report,
            p.verdict,
            args.allow_loss,
        ));
    }
    // The worst outcome of the services.
    let mut code = done
        .iter()
        .map(|p| outcome(&p.report, p.verdict, args.allow_loss))
        .min()
        .unwrap_or(Outcome::Success)
        .code();
    let mut taken = BTreeSet::new();
    let hardenings: Vec<Hardening> = done.iter().map(|p| hardening(p, &mut taken)).collect();
    let (text, lost) = compose::harden(project, &hardenings)?;
    if let Some(why) = lost {
        eprintln!(
            "roprof: warning: the hardened file was re-serialised, so its comments, quoting and \
             anchors were not kept ({why})"
        );
    }
    let out = args.output_dir.clone();
    let file = match &out {
        Some(path) => path.clone(),
        None => std::env::temp_dir().join(format!("roprof-compose-{}.yaml", std::process::id())),
    };
    if out.is_some() || args.verify {
        std::fs::write(&file, &text).with_context(|| format!("writing {}", file.display()))?;
    }
    if out.is_some() {
        eprintln!(
            "roprof: wrote the hardened compose file to {}",
            file.display()
        );
    } else {
        print!("{text}");
    }
    if args.verify && code == 0 {
        code = compose_verify(args, engine, project, &done, &file).await;
    }
    if out.is_none() {
        let _ = std::fs::remove_file(&file);
    }
    Ok(code)
}

async fn compose_verify(
    args: &ProfileArgs,
    engine: &Engine,
    project: &Project,
    done: &[Profiled],
    file: &Path,
) -> i32 {
    let expect: Vec<Expect> = done
        .iter()
        .map(|p| Expect {
            service: p.name.clone(),
            exits: (p.report.run.ended == Some(Ended::Exited))
                .then_some(p.report.run.exit_code.unwrap_or(0)),
        })
        .collect();
    let limit = args.observe.duration * 3;
    match verify::run(engine, project, file, &expect, limit).await {
        Ok(verdicts) => {
            let mut ok = true;
            for v in verdicts {
                eprintln!(
                    "roprof: --verify: services.{}: {} ({})",
                    v.service,
                    if v.ok { "ok" } else { "DIFFERS" },
                    v.what
                );
                ok &= v.ok;
            }
            if ok { 0 } else { EXIT_VERIFY_FAILED }
        }
        Err(e) => {
            eprintln!("roprof: {e}");
            EXIT_VERIFY_FAILED
        }
    }
}
