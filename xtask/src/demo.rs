//! `cargo xtask demo`: profile the nginx fixture, then run it with
//! `--read-only` and the mounts roprof proposes, and show that it serves.
//!
//! All traffic stays on 127.0.0.1.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build_roprof, cmd,
    images::{self, image_name},
    setup,
};

const PROFILE_PORT: u16 = 18080;
const RUN_PORT: u16 = 18081;
const PROBE_ATTEMPTS: u32 = 30;
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

pub fn demo() -> Result<()> {
    // Only what the demo runs: the build, the Docker engine and the nginx
    // fixture (with its debian base), not the test tools, Podman or the
    // other fixtures.
    setup::build_and_engine()?;
    images::build(&["nginx".to_owned()], false)?;
    let roprof = build_roprof()?;
    let image = image_name("nginx");
    let publish = format!("127.0.0.1:{PROFILE_PORT}:80");
    let probe = format!("http://127.0.0.1:{PROFILE_PORT}/");
    let profile = |format: Option<&str>| {
        let mut c = Command::new(&roprof);
        c.args([
            "profile",
            "--duration",
            "10s",
            "-p",
            &publish,
            "--probe",
            &probe,
        ]);
        if let Some(f) = format {
            c.args(["--format", f]);
        }
        c.arg(&image);
        c
    };

    eprintln!("xtask: profiling {image} (table) ...");
    cmd::run(&mut profile(None)).context("roprof profile (table output)")?;

    eprintln!("xtask: profiling {image} (docker line) ...");
    let line =
        cmd::stdout(&mut profile(Some("docker"))).context("roprof profile --format docker")?;
    println!("{line}");
    let words = docker_run_words(&line)?;

    let name = format!("roprof-demo-{}", std::process::id());
    let args = detached_run_args(&words, &name, &format!("127.0.0.1:{RUN_PORT}:80"));
    let _guard = RemoveOnDrop {
        container: name.clone(),
        volumes: named_volumes(&args),
    };
    eprintln!("xtask: running nginx read-only with the proposed mounts ...");
    cmd::run(&mut cmd::docker(&args)).context("running the proposed docker line")?;

    let addr = SocketAddr::from(([127, 0, 0, 1], RUN_PORT));
    let status = probe_with_retries(addr).inspect_err(|_| show_logs(&name))?;
    println!("GET http://{addr}/ -> HTTP {status}");
    if !(200..300).contains(&status) {
        show_logs(&name);
        bail!("nginx answered HTTP {status} under the proposed read-only configuration");
    }
    eprintln!("xtask: demo ok: nginx serves with a read-only root");
    Ok(())
}

/// The words of the `docker run …` command in roprof's `--format docker`
/// output (backslash-newline continuations joined).
pub(crate) fn docker_run_words(output: &str) -> Result<Vec<String>> {
    let joined = output.replace("\\\r\n", " ").replace("\\\n", " ");
    let line = joined
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("docker run ") || l.starts_with("docker container run "))
        .with_context(|| format!("no `docker run` line in roprof's output:\n{output}"))?;
    let words = shlex::split(line)
        .with_context(|| format!("cannot split the docker line (unbalanced quotes?): {line}"))?;
    Ok(words)
}

/// `run -d --name NAME -p PUBLISH` followed by the options and image of the
/// proposed command. Interactive flags are dropped (the demo has no
/// terminal), and so is a `--name` of its own (the demo removes the container
/// by its name).
pub(crate) fn detached_run_args(words: &[String], name: &str, publish: &str) -> Vec<String> {
    let skip = if words.get(1).is_some_and(|w| w == "container") {
        3
    } else {
        2
    };
    let mut args: Vec<String> = ["run", "-d", "--name", name, "-p", publish]
        .into_iter()
        .map(String::from)
        .collect();
    let mut rest = words.iter().skip(skip);
    while let Some(w) = rest.next() {
        match w.as_str() {
            "-it" | "-ti" | "-i" | "-t" | "--interactive" | "--tty" => {}
            "--name" => {
                rest.next();
            }
            w if w.starts_with("--name=") => {}
            _ => args.push(w.clone()),
        }
    }
    args
}

fn probe_with_retries(addr: SocketAddr) -> Result<u16> {
    let mut last = None;
    for _ in 0..PROBE_ATTEMPTS {
        match http_status(addr) {
            Ok(status) => return Ok(status),
            Err(e) => last = Some(e),
        }
        thread::sleep(PROBE_INTERVAL);
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
        .with_context(|| format!("no HTTP answer from {addr} after {PROBE_ATTEMPTS} attempts"))
}

/// One `GET /` over a plain TCP connection; returns the status code.
pub(crate) fn http_status(addr: SocketAddr) -> Result<u16> {
    let timeout = Duration::from_secs(2);
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    write!(
        conn,
        "GET / HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: roprof-xtask\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut buf = [0; 512];
    while !head.contains(&b'\n') {
        let n = conn
            .read(&mut buf)
            .with_context(|| format!("reading from {addr}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&String::from_utf8_lossy(&head))
        .with_context(|| format!("not an HTTP response from {addr}"))
}

fn parse_status_line(response: &str) -> Option<u16> {
    let line = response.lines().next()?;
    let mut words = line.split_whitespace();
    words.next()?.strip_prefix("HTTP/")?;
    words.next()?.parse().ok()
}

fn show_logs(name: &str) {
    eprintln!("xtask: docker logs {name}:");
    let _ = cmd::docker(["logs", "--tail", "50", name])
        .stdin(Stdio::null())
        .status();
}

/// The named volumes a `docker run` argument list mounts with `-v NAME:…`
/// (docker creates them, seeded from the image, when the container starts).
pub(crate) fn named_volumes(args: &[String]) -> Vec<String> {
    let mut volumes = Vec::new();
    let mut words = args.iter();
    while let Some(w) = words.next() {
        let spec = match w.as_str() {
            "-v" | "--volume" => words.next().map(String::as_str),
            _ => w.strip_prefix("--volume="),
        };
        if let Some((source, _)) = spec.and_then(|s| s.split_once(':'))
            && !source.is_empty()
            && !source.starts_with(['/', '.', '~'])
        {
            volumes.push(source.to_owned());
        }
    }
    volumes
}

/// Removes the demo container, and the named volumes its run created,
/// however the demo ends.
struct RemoveOnDrop {
    container: String,
    volumes: Vec<String>,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // -v: the anonymous volumes of the plan's volatile seeded mounts.
        let _ = cmd::output(&mut cmd::docker([
            "rm",
            "-f",
            "-v",
            self.container.as_str(),
        ]));
        if !self.volumes.is_empty() {
            let _ = cmd::output(cmd::docker(["volume", "rm"]).args(&self.volumes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_docker_line_and_splits_it() {
        let out = "# proposed\ndocker run --read-only \\\n  --tmpfs /run \\\n  --mount 'type=volume,dst=/var/lib/nginx' \\\n  roprof-fixture/nginx\n";
        let words = docker_run_words(out).expect("a docker line is there");
        assert_eq!(
            words,
            [
                "docker",
                "run",
                "--read-only",
                "--tmpfs",
                "/run",
                "--mount",
                "type=volume,dst=/var/lib/nginx",
                "roprof-fixture/nginx"
            ]
        );
        assert!(
            docker_run_words("no command here").is_err(),
            "missing line must be an error"
        );
    }

    #[test]
    fn detaches_names_publishes_and_drops_tty_flags() {
        let words: Vec<String> = [
            "docker",
            "run",
            "--rm",
            "-it",
            "--name",
            "x",
            "--read-only",
            "img",
            "arg",
        ]
        .map(String::from)
        .to_vec();
        let args = detached_run_args(&words, "demo", "127.0.0.1:18081:80");
        assert_eq!(
            args,
            [
                "run",
                "-d",
                "--name",
                "demo",
                "-p",
                "127.0.0.1:18081:80",
                "--rm",
                "--read-only",
                "img",
                "arg"
            ]
        );
    }

    #[test]
    fn finds_named_volumes_but_not_bind_mounts() {
        let args: Vec<String> = [
            "run",
            "-v",
            "logs:/var/log/nginx",
            "--volume=data:/data:ro",
            "-v",
            "/host:/x",
            "--tmpfs",
            "/run:rw",
            "img",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(named_volumes(&args), ["logs", "data"]);
    }

    #[test]
    fn parses_status_lines() {
        assert_eq!(
            parse_status_line("HTTP/1.1 200 OK\r\nServer: nginx\r\n"),
            Some(200)
        );
        assert_eq!(parse_status_line("HTTP/1.0 404 Not Found\r\n"), Some(404));
        assert_eq!(parse_status_line("SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(""), None);
    }
}
