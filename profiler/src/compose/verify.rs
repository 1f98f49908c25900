//! `--verify` with `--compose`: the hardened file run as users run it, with
//! `docker-compose up -d` (Debian's 1.29), and each profiled service
//! compared with its profile: a service that ran until roprof stopped it
//! must be running (and healthy, when it has a healthcheck); one that
//! exited must exit with the same code. `down -v` removes everything after,
//! also when the comparison fails or a signal arrives.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::process::Command;

use super::Project;
use crate::{
    runtime::{Engine, Health},
    session::interrupt,
};

/// What a service did while it was profiled.
#[derive(Clone, Debug)]
pub struct Expect {
    /// Service.
    pub service: String,
    /// `Some(code)` when it exited on its own.
    pub exits: Option<i64>,
}

/// One service's verdict: what it did under the hardened file.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Service.
    pub service: String,
    /// Matched the profile.
    pub ok: bool,
    /// What happened.
    pub what: String,
}

/// Errors running docker-compose.
#[derive(Debug, thiserror::Error)]
#[error("--verify: {0}")]
pub struct VerifyError(String);

fn compose(project: &str, dir: &Path, file: &Path) -> Command {
    let mut c = Command::new("docker-compose");
    c.arg("-p")
        .arg(project)
        .arg("--project-directory")
        .arg(dir)
        .arg("-f")
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .kill_on_drop(true);
    c
}

async fn container_of(name: &str, p: &Project, file: &Path, service: &str) -> Option<String> {
    let out = compose(name, &p.dir, file)
        .args(["ps", "-q", service])
        .stdout(Stdio::piped())
        .output()
        .await
        .ok()?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!id.is_empty()).then_some(id)
}

/// Runs `cmd`: its output goes to stderr, or with `quiet` is kept and
/// shown only when it fails. The exit status, and the kept stderr.
async fn run_quietly(
    mut cmd: Command,
    quiet: bool,
) -> std::io::Result<(std::process::ExitStatus, String)> {
    if !quiet {
        return cmd.status().await.map(|s| (s, String::new()));
    }
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await?;
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Ok((out.status, err))
}

/// Runs `file` (the hardened project) and compares each of `expect` within
/// `limit`. With `quiet`, docker-compose's own lines are shown only when it
/// fails.
pub async fn run(
    engine: &Engine,
    p: &Project,
    file: &Path,
    expect: &[Expect],
    limit: Duration,
    quiet: bool,
) -> Result<Vec<Verdict>, VerifyError> {
    let name = format!("{}-roprof{}v", p.name, std::process::id());
    if !quiet {
        eprintln!("roprof: --verify: docker-compose -p {name} up -d (the hardened file)");
    }
    let mut up = compose(&name, &p.dir, file);
    up.args(["up", "-d", "--no-build"])
        .args(expect.iter().map(|e| e.service.as_str()));
    let res = match run_quietly(up, quiet).await {
        Err(e) => Err(VerifyError(format!(
            "cannot run docker-compose ({e}); install it (Debian: apt-get install docker-compose)"
        ))),
        Ok((s, err)) if !s.success() => Err(VerifyError(format!(
            "`docker-compose up` refused the hardened file ({s}){}",
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        ))),
        Ok(_) => Ok(compare(engine, &name, p, file, expect, limit).await),
    };
    let mut down = compose(&name, &p.dir, file);
    down.args(["down", "-v", "--remove-orphans", "--timeout", "5"]);
    let down = run_quietly(down, quiet).await;
    if let Ok((s, err)) = &down
        && !s.success()
        && !err.is_empty()
    {
        eprintln!("{err}");
    }
    if !down.is_ok_and(|(s, _)| s.success()) {
        eprintln!(
            "roprof: warning: `docker-compose -p {name} down -v` failed; remove the project by hand"
        );
    }
    res
}

async fn compare(
    engine: &Engine,
    name: &str,
    p: &Project,
    file: &Path,
    expect: &[Expect],
    limit: Duration,
) -> Vec<Verdict> {
    let start = Instant::now();
    let deadline = start + limit;
    let mut out = Vec::new();
    for e in expect {
        let verdict = |ok: bool, what: String| Verdict {
            service: e.service.clone(),
            ok,
            what,
        };
        let Some(id) = container_of(name, p, file, &e.service).await else {
            out.push(verdict(false, "no container was created".into()));
            continue;
        };
        out.push(loop {
            let state = engine.state(&id).await.unwrap_or_default();
            let health = engine.health(&id).await.unwrap_or(Health::None);
            let late = Instant::now() > deadline || interrupt::interrupted();
            // A service without healthcheck counts once it stayed up a while.
            let settled = late || start.elapsed() > Duration::from_secs(5);
            match (e.exits, state.running, health) {
                (Some(want), false, _) => {
                    let got = state.exit_code.unwrap_or(-1);
                    break verdict(got == want, format!("exited with code {got} (profiled: {want})"));
                }
                (None, false, _) => {
                    let got = state.exit_code.unwrap_or(-1);
                    let logs = engine.logs_tail(&id, 5).await.join("\n    ");
                    break verdict(false, format!("exited with code {got}, but it ran until stopped when profiled; its last log lines:\n    {logs}"));
                }
                (None, true, Health::Healthy) => break verdict(true, "running, healthy".into()),
                (None, true, Health::Unhealthy) => break verdict(false, "running, UNHEALTHY".into()),
                (None, true, Health::None) if settled => break verdict(true, "running".into()),
                (None, true, Health::Starting) if late => {
                    break verdict(false, "running, but never healthy".into());
                }
                (Some(want), true, _) if late => {
                    break verdict(false, format!("still running (profiled: exited with code {want})"));
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        });
    }
    out
}
