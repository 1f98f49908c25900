//! §3's other servers (issue 29): `roprof profile IMAGE` with its defaults
//! (the settle window, at most 10 s) for an idle server (memcached, asleep
//! until a client comes) and a ticking one (redis, whose `serverCron` wakes
//! ten times a second), each against `docker run -d` until the server
//! answers, then `docker stop`, of the same image: whether roprof's answer
//! costs at most 4 s more than running the container at all. The two
//! methods alternate which goes first from one repetition to the next.

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
    schema::{AnswerServer, Method, ServerAnswer, ServerAttempt, Sizes},
    util,
};

/// How long a started server gets to answer its probe.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The container port, a loopback port of its own (beside §3's nginx
/// ports), the probe's request and the reply it starts with.
fn probe(server: AnswerServer) -> (u16, u16, &'static [u8], &'static str) {
    match server {
        AnswerServer::Memcached => (11211, 18195, b"version\r\n", "VERSION "),
        AnswerServer::Redis => (6379, 18196, b"PING\r\n", "+PONG"),
    }
}

/// Every server's rows, `sizes.answer_reps` repetitions of each method.
pub fn run(roprof: &Path, sizes: &Sizes, work: &Path) -> Result<Vec<ServerAnswer>> {
    AnswerServer::ALL
        .iter()
        .map(|&s| run_server(s, roprof, sizes.answer_reps, work))
        .collect()
}

fn run_server(
    server: AnswerServer,
    roprof: &Path,
    reps: usize,
    work: &Path,
) -> Result<ServerAnswer> {
    let image = image_name(server.key());
    let mut attempts = Vec::new();
    for rep in 0..reps {
        let order = if rep % 2 == 0 {
            [Method::RoprofProfile, Method::RunStop]
        } else {
            [Method::RunStop, Method::RoprofProfile]
        };
        for m in order {
            eprintln!(
                "roprof-bench: {} ({}) rep {}/{reps}: {}",
                server.key(),
                server.behaviour().key(),
                rep + 1,
                m.key()
            );
            let a = if m == Method::RunStop {
                run_and_stop(server, &image)
            } else {
                profile(roprof, &image, work)
            }
            .with_context(|| format!("{} default profile, {}", server.key(), m.key()))?;
            eprintln!("roprof-bench:   {:.1} s", a.wall_secs);
            attempts.push(a);
        }
    }
    let secs = |m: Method| {
        let xs: Vec<f64> = attempts
            .iter()
            .filter(|a| a.method == m)
            .map(|a| a.wall_secs)
            .collect();
        util::summary(&xs)
    };
    let (_, port, request, expect) = probe(server);
    Ok(ServerAnswer {
        server,
        behaviour: server.behaviour(),
        probe: format!(
            "`{}` on 127.0.0.1:{port} answers `{}…`",
            String::from_utf8_lossy(request).trim_end(),
            expect.trim_end()
        ),
        profile_secs: secs(Method::RoprofProfile),
        run_stop_secs: secs(Method::RunStop),
        image,
        attempts,
    })
}

/// `roprof profile -o DIR IMAGE`: its defaults, the directory only so
/// that the report says why the window ended.
fn profile(roprof: &Path, image: &str, work: &Path) -> Result<ServerAttempt> {
    let dir = work.join("default-profile");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let mut c = Command::new(roprof);
    c.args(["profile", "-o"]).arg(&dir).arg(image);
    let start = Instant::now();
    let out = cmd::output(&mut c)?;
    let wall_secs = start.elapsed().as_secs_f64();
    let code = out.status.code().unwrap_or(-1);
    if !matches!(code, 0 | 3) {
        bail!(
            "`{}` exited {code}: {}",
            cmd::display(&c),
            util::tail(&String::from_utf8_lossy(&out.stderr), 20)
        );
    }
    let report = RoprofReport::from_dir(&dir);
    Ok(ServerAttempt {
        method: Method::RoprofProfile,
        wall_secs,
        exit_code: Some(code),
        ended: report.as_ref().and_then(|r| r.run.ended.clone()),
        observed_secs: report.and_then(|r| r.run.observed_secs),
        answered: None,
    })
}

/// `docker run -d -p 127.0.0.1:PORT:…` until the server answers its probe,
/// then `docker stop` (its STOPSIGNAL, graceful) and removal.
fn run_and_stop(server: AnswerServer, image: &str) -> Result<ServerAttempt> {
    let (container_port, port, request, expect) = probe(server);
    let name = format!(
        "roprof-bench-default-{}-{}",
        server.key(),
        std::process::id()
    );
    let _cleanup = util::Cleanup {
        containers: vec![name.clone()],
        volumes: vec![],
    };
    let start = Instant::now();
    cmd::stdout(&mut cmd::docker([
        "run",
        "-d",
        "--name",
        &name,
        "-p",
        &format!("127.0.0.1:{port}:{container_port}"),
        image,
    ]))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_TIMEOUT;
    let mut answered = docker::answers(addr, request, expect);
    while !answered && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        answered = docker::answers(addr, request, expect);
    }
    cmd::stdout(&mut cmd::docker(["stop", &name]))?;
    let wall_secs = start.elapsed().as_secs_f64();
    Ok(ServerAttempt {
        method: Method::RunStop,
        wall_secs,
        exit_code: None,
        ended: None,
        observed_secs: None,
        answered: Some(answered),
    })
}
