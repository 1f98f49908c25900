//! `roprof profile --compose FILE [--service NAME]...`: profiles each
//! selected service of a Compose project with its dependencies running,
//! then prints the file hardened (`read_only: true` and the plans' mounts)
//! on stdout, or writes it to `-o FILE`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use roprof::{
    compose::{
        self, Project,
        project::ProjectError,
        verify::{self, Expect},
        workflow::{self, ComposeRequest, Profiled, WorkflowError},
    },
    model::{Ended, MountKind},
    request::{EXIT_VERIFY_FAILED, Outcome, outcome},
    runtime::Engine,
    session::Context,
};

use super::profile::ProfileArgs;

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

/// Runs `profile --compose`.
pub async fn run(args: &ProfileArgs, file: &Path) -> anyhow::Result<i32> {
    if args.mode == super::profile::Mode::Iterate {
        anyhow::bail!("--compose profiles in --mode observe only");
    }
    let project = compose::load(file)?;
    for w in &project.ignored {
        eprintln!("roprof: warning: {w}");
    }
    // Bad input is refused before anything is loaded or created.
    let selected = workflow::select(&project, &args.compose.service)?;
    roprof::doctor::preflight(args.ringbuf_bytes)?;
    let engine = Engine::connect().await?;
    let req = ComposeRequest {
        observe: args.observe.observe(),
        verify: args.verify,
        max_mounts: args.max_mounts,
        max_runs: args.max_runs,
        quiet: args.quiet,
        reveal_env: args.reveal_env,
        ringbuf_bytes: args.ringbuf_bytes,
    };
    let mut ctx = Context::new(engine.clone(), args.ringbuf_bytes);
    let res = Box::pin(workflow::profile(&req, &mut ctx, &project, &selected)).await;
    let code = match res {
        Ok(done) => finish(args, &engine, &project, done).await,
        Err(e) => Err(lift(e)),
    };
    ctx.teardown().await;
    code
}

/// The step's own error, so that `main` sees a signal (exit 130) and the
/// doctor's remedy.
fn lift(e: WorkflowError) -> anyhow::Error {
    match e {
        WorkflowError::Compose(e) => e.into(),
        WorkflowError::Project(ProjectError::Session(s)) | WorkflowError::Session(s) => s.into(),
        WorkflowError::Project(e) => e.into(),
        WorkflowError::Runtime(e) => e.into(),
        WorkflowError::Host(e) => e.into(),
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
        if let Some(ok) = p.verdict {
            super::verify::print_verdict(&p.report, ok);
        }
        summary(p);
        for w in roprof::render::unrepresentable(&p.report) {
            eprintln!("roprof: warning: services.{}: {w}", p.name);
        }
        if !p.report.losses.is_clean() && !args.allow_loss {
            eprintln!(
                "roprof: services.{}: the profile is INCOMPLETE: {}",
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
    let (text, lost) = workflow::hardened(project, &done)?;
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
    match verify::run(engine, project, file, &expect, limit, args.quiet).await {
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
