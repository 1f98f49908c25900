//! Time and container runs to a working answer for the nginx fixture:
//! - roprof: `roprof profile --verify` (one traced run, one read-only
//!   verification run), plain `roprof profile` (one traced run), and
//!   `roprof profile --mode iterate` (read-only runs until clean);
//! - the floor: `docker run` until nginx answers, then `docker stop`;
//! - trial and error, automated naively: start read-only, read `docker logs`
//!   for `"PATH" failed (30: Read-only file system)`, add a `--tmpfs` at each
//!   such path's parent, start again, until it serves HTTP 200 or 10 rounds;
//! - `docker diff`: run it writable, exercise it, put a tmpfs at the parent
//!   of every changed, added or deleted leaf, then one read-only check.
//!
//! "Works" always means: under `--read-only` with the answer's mounts, nginx
//! answers `GET /` on a 127.0.0.1-published port with HTTP 200. For roprof
//! that is checked by one extra run of its proposed `docker run` line, which
//! is not counted in its time or runs.

use std::{
    net::SocketAddr,
    path::Path,
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    cmd,
    docker::{self, image_name},
    roprof_report::RoprofReport,
    schema::{
        self, Answer, AttemptExtra, DiffAttempt, Method, MethodResult, NaiveRound, RoprofAttempt,
        RunStopAttempt, Sizes, TrialAndErrorAttempt,
    },
    util,
};

const MAX_ROUNDS: usize = 10;
/// How long a started nginx gets to answer before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// roprof's longest observation window (the README's and the demo's); the
/// default settle window ends it earlier.
const ROPROF_DURATION: &str = "10s";
/// Loopback ports, one per role, away from the demo's 18080/18081.
const PORT_ROPROF: u16 = 18190;
const PORT_CHECK: u16 = 18191;
const PORT_NAIVE: u16 = 18192;
const PORT_DIFF: u16 = 18193;
const PORT_RUN_STOP: u16 = 18194;

use schema::Attempt;

pub fn run(roprof: &Path, sizes: &Sizes, work: &Path) -> Result<Answer> {
    let mut results: Vec<(Method, Vec<Attempt>)> =
        Method::ALL.iter().map(|&m| (m, vec![])).collect();
    for rep in 0..sizes.answer_reps {
        for i in 0..Method::ALL.len() {
            let idx = (rep + i) % Method::ALL.len();
            let method = Method::ALL[idx];
            eprintln!(
                "roprof-bench: answer rep {}/{}: {}",
                rep + 1,
                sizes.answer_reps,
                method.key()
            );
            let attempt = match method {
                Method::Roprof | Method::RoprofProfile | Method::RoprofIterate => {
                    with_roprof(roprof, method, work)
                }
                Method::RunStop => run_and_stop(),
                Method::Naive => trial_and_error(),
                Method::Diff => docker_diff(),
            }
            .with_context(|| format!("time-to-answer benchmark, {}", method.key()))?;
            eprintln!(
                "roprof-bench:   {:.1} s, {} runs, works: {}",
                attempt.wall_secs, attempt.runs, attempt.works
            );
            results[idx].1.push(attempt);
        }
    }
    let methods = results
        .into_iter()
        .map(|(method, attempts)| {
            let walls: Vec<f64> = attempts.iter().map(|a| a.wall_secs).collect();
            let result = MethodResult {
                wall_secs: util::summary(&walls),
                runs: attempts.iter().map(|a| a.runs).collect(),
                works: attempts.iter().map(|a| a.works).collect(),
                attempts,
            };
            (method, result)
        })
        .collect();
    Ok(Answer {
        image: image_name("nginx"),
        reps: sizes.answer_reps,
        max_rounds: MAX_ROUNDS,
        start_timeout_secs: START_TIMEOUT.as_secs(),
        roprof_duration: ROPROF_DURATION.into(),
        methods,
        servers: Vec::new(),
    })
}

fn container_name(what: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "roprof-bench-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn publish(port: u16) -> String {
    format!("127.0.0.1:{port}:80")
}

/// `roprof profile` as `method` says (`--verify`, plain, or `--mode
/// iterate`), then its proposed `docker run` line, checked once more.
fn with_roprof(roprof: &Path, method: Method, work: &Path) -> Result<Attempt> {
    let out_dir = work.join(format!("answer-{}", method.key()));
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)
            .with_context(|| format!("removing {}", out_dir.display()))?;
    }
    let start = Instant::now();
    let mut c = Command::new(roprof);
    c.arg("profile");
    match method {
        Method::Roprof => {
            c.args(["--verify", "--probe"])
                .arg(format!("http://{}/", loopback(PORT_ROPROF)));
        }
        Method::RoprofIterate => {
            c.args(["--mode", "iterate", "--max-runs", "10"]);
        }
        _ => {}
    }
    c.args(["--format", "docker", "--duration", ROPROF_DURATION])
        .args(["-p", &publish(PORT_ROPROF), "-o"])
        .arg(&out_dir)
        .arg(image_name("nginx"));
    eprintln!("  $ {}", cmd::display(&c));
    let (out, progress) = with_progress(&mut c)?;
    let wall_secs = start.elapsed().as_secs_f64();
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !matches!(code, 0 | 4) {
        let lines: Vec<&str> = progress.iter().map(|(_, l)| l.as_str()).collect();
        bail!(
            "roprof exited {code}: {}",
            util::tail(&lines.join("\n"), 20)
        );
    }
    let report = RoprofReport::from_dir(&out_dir);
    let rounds = report
        .as_ref()
        .and_then(|r| r.rounds.as_ref())
        .map_or(0, Vec::len);
    // Container runs: the observed run plus each closed-loop round; in
    // iterate mode the first round is the first run.
    let runs = match method {
        Method::RoprofIterate => rounds.max(1),
        _ => 1 + rounds,
    };
    let words = docker::docker_run_words(&stdout)?;

    // The independent check: roprof's own line, detached, on another port.
    let name = container_name("check");
    let args = docker::detached_run_args(&words, &name, &publish(PORT_CHECK));
    let mut cleanup = util::Cleanup {
        containers: vec![name.clone()],
        volumes: docker::named_volumes(&args),
    };
    let started = cmd::succeeds(&mut cmd::docker(&args));
    let status = if started {
        wait_http(&name, loopback(PORT_CHECK))
    } else {
        None
    };
    drop(std::mem::take(&mut cleanup));
    #[expect(clippy::cast_precision_loss, reason = "a handful of rounds")]
    let secs_per_run = wall_secs / runs as f64;
    Ok(Attempt {
        wall_secs,
        runs,
        works: status == Some(200),
        answer: words,
        extra: AttemptExtra::Roprof(Box::new(RoprofAttempt {
            roprof_exit_code: code,
            verified: code == 0,
            check_status: status,
            check_runs_not_counted: 1,
            secs_per_run,
            ended: report.as_ref().and_then(|r| r.run.ended.clone()),
            phases: report.as_ref().map(|r| r.stats.phases.clone()),
            bpf_load_secs: report.as_ref().and_then(|r| r.stats.bpf_load_secs),
            rounds: report.and_then(|r| r.rounds),
            progress,
        })),
    })
}

/// The floor any method pays: `docker run -d` until nginx answers, then
/// `docker stop` (its STOPSIGNAL, graceful) and removal.
fn run_and_stop() -> Result<Attempt> {
    let start = Instant::now();
    let name = container_name("run-stop");
    let cleanup = util::Cleanup {
        containers: vec![name.clone()],
        volumes: vec![],
    };
    cmd::stdout(&mut cmd::docker([
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &publish(PORT_RUN_STOP),
        &image_name("nginx"),
    ]))?;
    let status = wait_http(&name, loopback(PORT_RUN_STOP));
    cmd::stdout(&mut cmd::docker(["stop", &name]))?;
    let wall_secs = start.elapsed().as_secs_f64();
    drop(cleanup);
    Ok(Attempt {
        wall_secs,
        runs: 1,
        works: status == Some(200),
        answer: vec![],
        extra: AttemptExtra::RunStop(RunStopAttempt { status }),
    })
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "the same signature as the other methods; a failed start is a result here"
)]
fn trial_and_error() -> Result<Attempt> {
    let start = Instant::now();
    let mut mounts: Vec<String> = Vec::new();
    let mut rounds = Vec::new();
    let mut works = false;
    for _ in 0..MAX_ROUNDS {
        let name = container_name("naive");
        let _cleanup = util::Cleanup {
            containers: vec![name.clone()],
            volumes: vec![],
        };
        let args = read_only_args(&name, &mounts, PORT_NAIVE);
        let status = if cmd::succeeds(&mut cmd::docker(&args)) {
            wait_http(&name, loopback(PORT_NAIVE))
        } else {
            None
        };
        let logs = docker_logs(&name);
        let found = erofs_paths(&logs);
        rounds.push(NaiveRound {
            mounts: mounts.clone(),
            status,
            erofs: found.clone(),
        });
        if status == Some(200) {
            works = true;
            break;
        }
        let mut learnt = false;
        for path in &found {
            if let Some(parent) = Path::new(path).parent().and_then(Path::to_str) {
                learnt |= add_mount(&mut mounts, parent);
            }
        }
        if !learnt {
            // Nothing new in the logs: a person would be stuck here too.
            break;
        }
    }
    Ok(Attempt {
        wall_secs: start.elapsed().as_secs_f64(),
        runs: rounds.len(),
        works,
        answer: tmpfs_flags(&mounts),
        extra: AttemptExtra::TrialAndError(TrialAndErrorAttempt { rounds }),
    })
}

fn docker_diff() -> Result<Attempt> {
    let start = Instant::now();
    let name = container_name("diff");
    let cleanup = util::Cleanup {
        containers: vec![name.clone()],
        volumes: vec![],
    };
    cmd::stdout(&mut cmd::docker([
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &publish(PORT_DIFF),
        &image_name("nginx"),
    ]))?;
    let first = wait_http(&name, loopback(PORT_DIFF));
    // Exercise it a little more, as one would before trusting the diff.
    for _ in 0..5 {
        let _ = docker::http_status(loopback(PORT_DIFF));
    }
    let diff = cmd::stdout(&mut cmd::docker(["diff", &name]))?;
    drop(cleanup);
    let mounts = diff_mounts(&diff);

    let check = container_name("diff-check");
    let _cleanup = util::Cleanup {
        containers: vec![check.clone()],
        volumes: vec![],
    };
    let args = read_only_args(&check, &mounts, PORT_DIFF);
    let status = if cmd::succeeds(&mut cmd::docker(&args)) {
        wait_http(&check, loopback(PORT_DIFF))
    } else {
        None
    };
    Ok(Attempt {
        wall_secs: start.elapsed().as_secs_f64(),
        runs: 2,
        works: status == Some(200),
        answer: tmpfs_flags(&mounts),
        extra: AttemptExtra::Diff(DiffAttempt {
            writable_status: first,
            diff: diff.lines().map(str::to_owned).collect(),
            check_status: status,
        }),
    })
}

/// Runs `c` with its stdout collected and its stderr (roprof's progress
/// lines, plain when not on a terminal) read line by line with the seconds
/// since the start, which show where the time goes.
fn with_progress(c: &mut Command) -> Result<(std::process::Output, Vec<(f64, String)>)> {
    use std::io::BufRead as _;
    let start = Instant::now();
    let mut child = c
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{}`", cmd::display(c)))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let reader = thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .map(|l| ((start.elapsed().as_secs_f64() * 100.0).round() / 100.0, l))
            .collect::<Vec<_>>()
    });
    let out = child.wait_with_output().context("waiting for roprof")?;
    let progress = reader.join().unwrap_or_default();
    Ok((out, progress))
}

/// `docker run -d --name NAME --read-only --tmpfs M… -p … nginx`.
fn read_only_args(name: &str, mounts: &[String], port: u16) -> Vec<String> {
    let mut args: Vec<String> = ["run", "-d", "--name", name, "--read-only"]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(tmpfs_flags(mounts));
    args.extend(["-p".into(), publish(port), image_name("nginx")]);
    args
}

fn tmpfs_flags(mounts: &[String]) -> Vec<String> {
    mounts
        .iter()
        .flat_map(|m| ["--tmpfs".to_owned(), m.clone()])
        .collect()
}

/// Polls `addr` until it answers or the container stops running (or
/// [`START_TIMEOUT`]); the HTTP status, if any.
fn wait_http(name: &str, addr: SocketAddr) -> Option<u16> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(status) = docker::http_status(addr) {
            return Some(status);
        }
        let running = cmd::stdout(&mut cmd::docker([
            "inspect",
            "-f",
            "{{.State.Running}}",
            name,
        ]));
        if !running.is_ok_and(|r| r == "true") {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
    None
}

fn docker_logs(name: &str) -> String {
    cmd::output(&mut cmd::docker(["logs", name])).map_or_else(
        |_| String::new(),
        |o| String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// The paths in nginx's `… "PATH" failed (30: Read-only file system)` lines,
/// in order, without repeats.
fn erofs_paths(logs: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in logs.lines() {
        let Some(i) = line.find("\" failed (30: Read-only file system)") else {
            continue;
        };
        let head = &line[..i];
        if let Some(q) = head.rfind('"') {
            let path = &head[q + 1..];
            if path.starts_with('/') && !found.iter().any(|p| p == path) {
                found.push(path.to_owned());
            }
        }
    }
    found
}

fn is_under(path: &str, dir: &str) -> bool {
    path == dir || dir == "/" || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Adds a tmpfs at `dir` unless one already covers it; drops the mounts it
/// covers. Never `/`. Whether the set changed.
fn add_mount(mounts: &mut Vec<String>, dir: &str) -> bool {
    if dir == "/" || mounts.iter().any(|m| is_under(dir, m)) {
        return false;
    }
    mounts.retain(|m| !is_under(m, dir));
    mounts.push(dir.to_owned());
    mounts.sort();
    true
}

/// The mounts the `docker diff` method proposes: a tmpfs at the parent of
/// every leaf entry (one with no entry below it), nested ones merged.
fn diff_mounts(diff: &str) -> Vec<String> {
    let entries: Vec<&str> = diff
        .lines()
        .filter_map(|l| {
            let (kind, path) = l.trim().split_once(' ')?;
            matches!(kind, "A" | "C" | "D").then_some(path)
        })
        .collect();
    let mut mounts = Vec::new();
    for &e in &entries {
        let is_leaf = !entries.iter().any(|&o| o != e && is_under(o, e));
        if is_leaf && let Some(parent) = Path::new(e).parent().and_then(Path::to_str) {
            add_mount(&mut mounts, parent);
        }
    }
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_erofs_paths_in_nginx_logs() {
        let logs = "2026/11/28 20:17:01 [emerg] 1#1: mkdir() \"/var/lib/nginx/body\" failed (30: Read-only file system)\n\
                    nginx: [alert] could not open error log file: open() \"/var/log/nginx/error.log\" failed (30: Read-only file system)\n\
                    2026/11/28 [emerg] open() \"/run/nginx.pid\" failed (13: Permission denied)\n\
                    mkdir() \"/var/lib/nginx/body\" failed (30: Read-only file system)\n";
        assert_eq!(
            erofs_paths(logs),
            ["/var/lib/nginx/body", "/var/log/nginx/error.log"]
        );
    }

    #[test]
    fn mounts_merge_nested_directories() {
        let mut m = vec![];
        assert!(add_mount(&mut m, "/var/lib/nginx"));
        assert!(!add_mount(&mut m, "/var/lib/nginx/body"), "already covered");
        assert!(add_mount(&mut m, "/run"));
        assert!(add_mount(&mut m, "/var/lib"), "covers /var/lib/nginx");
        assert!(!add_mount(&mut m, "/"), "never the root");
        assert_eq!(m, ["/run", "/var/lib"]);
        assert!(!is_under("/var/libx", "/var/lib"), "prefix is not parent");
    }

    #[test]
    fn diff_leaves_give_parent_mounts() {
        let diff = "C /run\nA /run/nginx.pid\nC /var\nC /var/lib\nC /var/lib/nginx\n\
                    A /var/lib/nginx/body\nA /var/lib/nginx/proxy\nC /var/log\nC /var/log/nginx\n\
                    C /var/log/nginx/access.log\n";
        assert_eq!(
            diff_mounts(diff),
            ["/run", "/var/lib/nginx", "/var/log/nginx"]
        );
    }
}
