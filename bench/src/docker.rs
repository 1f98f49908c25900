//! Docker-side helpers of the time-to-answer benchmark: the fixture
//! images' names, reading roprof's proposed `docker run` line, and probing
//! nginx over HTTP. (The same helpers as xtask's demo, which cannot share a
//! crate with the bench: xtask must build before the eBPF toolchain is
//! installed, and the bench depends on roprof.)

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use anyhow::{Context as _, Result};

/// A fixture image built by `cargo xtask images`.
pub fn image_name(fixture: &str) -> String {
    format!("roprof-fixture/{fixture}:latest")
}

/// The words of the `docker run …` command in roprof's `--format docker`
/// output (backslash-newline continuations joined).
pub fn docker_run_words(output: &str) -> Result<Vec<String>> {
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
pub fn detached_run_args(words: &[String], name: &str, publish: &str) -> Vec<String> {
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

/// One `GET /` over a plain TCP connection; returns the status code.
pub fn http_status(addr: SocketAddr) -> Result<u16> {
    let timeout = Duration::from_secs(2);
    let mut conn = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    write!(
        conn,
        "GET / HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: roprof-bench\r\nConnection: close\r\n\r\n"
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

/// Whether a server on `addr` answers `request` with a reply starting with
/// `expect` (redis `PING` → `+PONG`, memcached `version` → `VERSION`).
/// docker-proxy accepts connections before the server listens, so a
/// connection alone says nothing.
pub fn answers(addr: SocketAddr, request: &[u8], expect: &str) -> bool {
    let timeout = Duration::from_secs(2);
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    if conn.set_read_timeout(Some(timeout)).is_err() || conn.write_all(request).is_err() {
        return false;
    }
    let mut reply = Vec::new();
    let mut buf = [0; 256];
    while reply.len() < expect.len() {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
        }
    }
    reply.starts_with(expect.as_bytes())
}

fn parse_status_line(response: &str) -> Option<u16> {
    let line = response.lines().next()?;
    let mut words = line.split_whitespace();
    words.next()?.strip_prefix("HTTP/")?;
    words.next()?.parse().ok()
}

/// The named volumes a `docker run` argument list mounts with `-v NAME:…`
/// (docker creates them, seeded from the image, when the container starts).
pub fn named_volumes(args: &[String]) -> Vec<String> {
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
