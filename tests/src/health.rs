//! Is a server up and doing its work: the checks the pasted-output tests
//! (`tests/tests/rendered.rs`, `tests/tests/helm.rs`) run against a fixture
//! started from rendered output.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    thread,
    time::{Duration, Instant},
};

use crate::docker;

/// How a server is reached and what proves it works.
#[derive(Clone, Copy)]
pub enum Check {
    /// HTTP GET / on the published port answers 200.
    Http,
    /// redis: PING, SET, GET, SAVE on the published port.
    Redis,
    /// memcached: set and get on the published port.
    Memcached,
    /// `PostgreSQL`: `pg_isready`, then a table written and checkpointed
    /// through `docker exec … psql`.
    Postgres,
}

fn exchange(port: u16, request: &[u8]) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(request).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// One attempt of the subject's check against `container` (and its port).
pub fn check_once(check: Check, container: &str, port: Option<u16>) -> Result<(), String> {
    let port = || port.ok_or_else(|| "no published port".to_owned());
    match check {
        Check::Http => {
            let r = exchange(port()?, b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .ok_or("no HTTP answer")?;
            let status = r.lines().next().unwrap_or_default().to_owned();
            if status.contains(" 200 ") {
                Ok(())
            } else {
                Err(format!("HTTP status line {status:?}"))
            }
        }
        Check::Redis => {
            let r = exchange(
                port()?,
                b"PING\r\nSET roprof rendered\r\nGET roprof\r\nSAVE\r\nQUIT\r\n",
            )
            .ok_or("no redis answer")?;
            // PONG, OK (SET), the value, OK (SAVE: the snapshot was written).
            if r.contains("+PONG") && r.contains("rendered") && r.matches("+OK").count() >= 3 {
                Ok(())
            } else {
                Err(format!("redis answered {r:?}"))
            }
        }
        Check::Memcached => {
            let r = exchange(
                port()?,
                b"set roprof 0 0 8\r\nrendered\r\nget roprof\r\nquit\r\n",
            )
            .ok_or("no memcached answer")?;
            if r.contains("STORED") && r.contains("rendered") {
                Ok(())
            } else {
                Err(format!("memcached answered {r:?}"))
            }
        }
        Check::Postgres => {
            let ready = docker(["exec", container, "pg_isready", "-q"]);
            if !ready.status.success() {
                return Err("pg_isready: not ready".into());
            }
            let out = docker([
                "exec",
                container,
                "psql",
                "-v",
                "ON_ERROR_STOP=1",
                "-tAc",
                "CREATE TABLE IF NOT EXISTS rendered (v text); INSERT INTO rendered VALUES \
                 ('ok'); CHECKPOINT; SELECT count(*) FROM rendered;",
            ]);
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "psql failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        }
    }
}

/// Polls the check for up to 30 s; on failure, the container's state and
/// logs are part of the message.
pub fn healthy(check: Check, container: &str, port: Option<u16>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last;
    loop {
        match check_once(check, container, port) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            let state = docker([
                "inspect",
                "--format",
                "{{.State.Status}} exit={{.State.ExitCode}}",
                container,
            ]);
            let logs = docker(["logs", "--tail", "30", container]);
            return Err(format!(
                "{last}; container {}; logs:\n{}{}",
                String::from_utf8_lossy(&state.stdout).trim(),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            ));
        }
        thread::sleep(Duration::from_millis(500));
    }
}
