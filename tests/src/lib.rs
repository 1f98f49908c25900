//! Helpers for roprof's privileged integration tests (BPF + Docker), which
//! live in `tests/tests/*.rs` and run through `cargo xtask test`.
//!
//! `cargo xtask test` builds the release `roprof`, builds the fixture images
//! (`roprof-fixture/*:latest`, see `tests/fixtures/README.md`), and runs these
//! tests one at a time as root with `ROPROF_BIN` and
//! `ROPROF_PRIVILEGED_TESTS=1` set. Each test starts with
//! [`require_privileged`], which fails the test loudly when that environment
//! is missing: a privileged test never passes by skipping.

pub mod agent;
pub mod chart;
pub mod containerd;
pub mod guard;
pub mod health;
pub mod kubelet;
pub mod node;
pub mod pasted;
pub mod podman;
pub mod proxy;

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// The label every container a test starts should carry, so that
/// [`ContainerGuard`] can remove them.
pub const TEST_LABEL: &str = "roprof.test=1";

/// Closed-loop trap scenarios (see `tests/fixtures/traps`).
pub const TRAPS_IMAGE: &str = "roprof-fixture/traps:latest";
/// An entrypoint failing on four paths one after another, and an HTTP
/// server whose two CGI scripts write two directories (see
/// `tests/fixtures/steps`).
pub const STEPS_IMAGE: &str = "roprof-fixture/steps:latest";
/// The fixture image that runs `opsuite` (see `tests/fixtures/writer`).
pub const WRITER_IMAGE: &str = "roprof-fixture/writer:latest";
/// A supervisor restarting a worker that appends to a shipped queue file
/// and reads it back (see `tests/fixtures/supervised`).
pub const SUPERVISED_IMAGE: &str = "roprof-fixture/supervised:latest";
/// The busybox base fixture.
pub const BUSYBOX_IMAGE: &str = "roprof-fixture/busybox:latest";
/// Debian's nginx on the debootstrap fixture (listens on port 80).
pub const NGINX_IMAGE: &str = "roprof-fixture/nginx:latest";
/// The plain debootstrap fixture.
pub const DEBIAN_IMAGE: &str = "roprof-fixture/debian:latest";
/// nginx as www-data rendering its config beside image content (port 8080).
pub const CONFGEN_IMAGE: &str = "roprof-fixture/confgen:latest";
/// Debian's redis-server as user redis (port 6379).
pub const REDIS_IMAGE: &str = "roprof-fixture/redis:latest";
/// Debian's `PostgreSQL` 15 as user postgres, with its cluster.
pub const POSTGRESQL_IMAGE: &str = "roprof-fixture/postgresql:latest";
/// Debian's apache2 (port 80).
pub const APACHE2_IMAGE: &str = "roprof-fixture/apache2:latest";
/// Debian's memcached (port 11211).
pub const MEMCACHED_IMAGE: &str = "roprof-fixture/memcached:latest";

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// The `roprof` binary under test: `$ROPROF_BIN` (set by `cargo xtask
/// test`), else `target/release/roprof` of this workspace.
#[must_use]
pub fn roprof_bin() -> PathBuf {
    std::env::var_os("ROPROF_BIN").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("tests/ lives one level below the workspace root")
                .join("target/release/roprof")
        },
        PathBuf::from,
    )
}

/// Panics, saying what is missing and how to run the test properly, unless
/// this is a privileged run: root, a Docker socket, `ROPROF_BIN` pointing at
/// a file, and `ROPROF_PRIVILEGED_TESTS=1` (all set up by `cargo xtask test`).
pub fn require_privileged() {
    let mut missing = Vec::new();
    if std::env::var_os("ROPROF_PRIVILEGED_TESTS").is_none_or(|v| v != "1") {
        missing.push("ROPROF_PRIVILEGED_TESTS=1 is not set".to_owned());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("not running as root (BPF programs need it)".to_owned());
    }
    let docker_host = std::env::var_os("DOCKER_HOST");
    if docker_host.is_none() && !Path::new(DOCKER_SOCKET).exists() {
        missing.push(format!("no Docker socket at {DOCKER_SOCKET}"));
    }
    match std::env::var_os("ROPROF_BIN") {
        None => missing.push("ROPROF_BIN is not set".to_owned()),
        Some(bin) if !Path::new(&bin).is_file() => {
            missing.push(format!(
                "ROPROF_BIN={} is not a file",
                Path::new(&bin).display()
            ));
        }
        Some(_) => {}
    }
    assert!(
        missing.is_empty(),
        "privileged test cannot run: {}. Run the privileged tests with \
         `cargo xtask test` (as root), which builds roprof, starts Docker and \
         builds the fixture images first.",
        missing.join("; ")
    );
}

/// Runs `docker ARGS` to completion and returns its output (whatever the
/// exit status; see [`docker_ok`] for the checked variant).
pub fn docker<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("docker");
    cmd.args(args).stdin(Stdio::null());
    let line = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("expected to run {line}, but it could not start: {e}"))
}

/// Like [`docker`], but panics with docker's stderr unless it exits 0;
/// returns stdout as a string.
pub fn docker_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = docker(&args);
    assert!(
        out.status.success(),
        "expected `docker {}` to succeed, it failed ({}): {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name no other test run on this machine uses: `PREFIX-PID-MILLIS-N`,
/// valid as a container, volume or directory name.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "{prefix}-{}-{millis}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes every container labelled [`TEST_LABEL`] when dropped, so a test
/// that panics half-way leaves nothing running. Create one at the start of
/// each test: `let _guard = ContainerGuard::new();`. Since the tests run one
/// at a time, it also clears leftovers of an earlier, interrupted run.
#[must_use = "the containers are removed when the guard is dropped"]
pub struct ContainerGuard(());

impl ContainerGuard {
    pub fn new() -> Self {
        remove_test_containers();
        Self(())
    }
}

impl Default for ContainerGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        remove_test_containers();
    }
}

fn pid_alive(pid: &str) -> bool {
    std::path::Path::new("/proc").join(pid).exists()
}

/// This test process's owner mark (its pid), put on the containers its
/// roprof runs create (`ROPROF_TEST_LABEL`) and on those it starts itself.
#[must_use]
pub fn owner() -> String {
    std::process::id().to_string()
}

/// `--label` of the owner mark, for `docker run` in tests.
#[must_use]
pub fn owner_label() -> String {
    format!("roprof.test.owner={}", owner())
}

/// `docker rm -f` of every container labelled [`TEST_LABEL`] that this
/// process started or that no process claims (leftovers of an earlier,
/// interrupted run); another test process's containers are left alone, so
/// suites can run side by side. Best effort.
pub fn remove_test_containers() {
    let Ok(out) = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={TEST_LABEL}"),
            "--format",
            "{{.ID}} {{.Label \"roprof.test.owner\"}}",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return;
    };
    let me = owner();
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let id = w.next()?;
            let mine = w.next().is_none_or(|o| o == me || !pid_alive(o));
            mine.then(|| id.to_owned())
        })
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Parses opsuite's `STEP <name> <result>` lines into (name, result) pairs,
/// in order; other lines are ignored.
#[must_use]
pub fn opsuite_steps(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("STEP ")?.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// The step names opsuite prints, in order (see `tests/fixtures/writer/opsuite.c`).
pub const OPSUITE_STEPS: &[&str] = &[
    "open_abs",
    "open_rel",
    "open_dirfd",
    "open_symlinked",
    "open_dotdot",
    "creat",
    "openat2",
    "mkdir_abs",
    "mkdirat_dirfd",
    "mknod_fifo",
    "rename",
    "renameat2_dirfd",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "unlink",
    "unlinkat",
    "rmdir",
    "unlinkat_rmdir",
    "truncate",
    "ftruncate",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "utimes",
    "utimensat",
    "futimens",
    "setxattr",
    "removexattr",
    "bind_unix",
    "access_w",
    "pid_via_symlink",
    "odd_name",
    "owned_write",
    "tmp_write",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_opsuite_output() {
        let out = "STEP open_abs ok\nnoise\nSTEP mkdir_abs EROFS\nLOOP done\n";
        assert_eq!(
            opsuite_steps(out),
            [
                ("open_abs".to_owned(), "ok".to_owned()),
                ("mkdir_abs".to_owned(), "EROFS".to_owned())
            ]
        );
    }

    #[test]
    fn opsuite_source_prints_every_listed_step_in_order() {
        let src = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/writer/opsuite.c"),
        )
        .expect("opsuite.c is readable");
        let in_source: Vec<&str> = src
            .split("report(\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        assert_eq!(
            in_source, OPSUITE_STEPS,
            "opsuite.c and OPSUITE_STEPS disagree"
        );
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(
            unique_name("t"),
            unique_name("t"),
            "two calls must give two names"
        );
    }
}

/// Runs `roprof ARGS` with the test label set on the containers it creates;
/// returns (exit code, stdout, stderr).
pub fn roprof<I, S>(args: I) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    roprof_env(args, &[])
}

/// [`roprof`] with extra environment variables.
pub fn roprof_env<I, S>(args: I, env: &[(&str, &str)]) -> (i32, String, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(roprof_bin());
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .env("ROPROF_TEST_LABEL", owner());
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("expected to run {line}, but it could not start: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `roprof profile --format json ARGS`, asserts exit 0 and returns the
/// parsed report.
#[must_use]
pub fn profile_json(args: &[&str]) -> serde_json::Value {
    profile_json_env(args, &[])
}

/// [`profile_json`] with extra environment variables for roprof.
#[must_use]
pub fn profile_json_env(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec!["profile", "--quiet", "--format", "json"];
    all.extend_from_slice(args);
    let (code, out, err) = roprof_env(&all, env);
    assert_eq!(
        code,
        0,
        "expected `roprof {}` to exit 0; stderr:\n{err}",
        all.join(" ")
    );
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("expected JSON on stdout ({e}); got:\n{out}"))
}

/// The observed path entry for `path` in a report, if any.
#[must_use]
pub fn path_entry<'a>(report: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    report["paths"]
        .as_array()?
        .iter()
        .find(|p| p["path"].as_str() == Some(path))
}

/// `(ok, errors)` of `op` on `path`: panics with the observed ops if absent.
#[must_use]
pub fn op_result(report: &serde_json::Value, path: &str, op: &str) -> (u64, Vec<String>) {
    let Some(p) = path_entry(report, path) else {
        let seen: Vec<_> = report["paths"]
            .as_array()
            .map(|a| a.iter().map(|p| p["path"].to_string()).collect())
            .unwrap_or_default();
        panic!("expected {path} among the observed paths; saw {seen:?}");
    };
    let o = &p["ops"][op];
    assert!(
        !o.is_null(),
        "expected op `{op}` on {path}; saw {}",
        p["ops"]
    );
    let errs = o["errors"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    (o["ok"].as_u64().unwrap_or(0), errs)
}

/// Number of BPF programs currently loaded whose name starts with one of
/// roprof's program names (via `bpftool prog list`).
#[must_use]
pub fn roprof_bpf_programs() -> usize {
    let out = Command::new("bpftool")
        .args(["prog", "list"])
        .output()
        .unwrap_or_else(|e| panic!("expected bpftool to run (apt-get install bpftool): {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| {
            [
                "timer_start",
                "sys_exit",
                "sched_exec",
                "sched_fork",
                "sched_exit",
                "cgroup_mkdir",
                "walk_prog",
                "walk_btf",
                " emit ",
            ]
            .iter()
            .any(|n| l.contains(&format!(" name {}", n.trim())))
        })
        .count()
}

/// [`roprof_bpf_programs`] once the programs of roprof processes that have
/// just exited are gone (the count to compare a test's end against): roprof
/// closes its programs as it exits, after printing its answer, and the
/// kernel releases them a moment later, possibly after the next test began.
#[must_use]
pub fn quiescent_bpf_programs() -> usize {
    settled(&0, roprof_bpf_programs)
}

/// `probe()` once it equals `want`, polling for up to 5 s; else its last
/// value. The kernel releases a closed process's BPF programs
/// asynchronously (after an RCU grace period), so right after roprof exits
/// `bpftool` may still list them for a moment; a real leak stays.
pub fn settled<T: PartialEq>(want: &T, probe: impl Fn() -> T) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let v = probe();
        if &v == want || std::time::Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Number of containers a roprof started by these tests created.
#[must_use]
pub fn roprof_containers() -> usize {
    roprof_container_ids("-aq").len()
}

/// Ids of the running containers a roprof started by these tests created.
#[must_use]
pub fn running_roprof_containers() -> Vec<String> {
    roprof_container_ids("-q")
}

fn roprof_container_ids(ps_flags: &str) -> Vec<String> {
    // Both labels: roprof's own, and the test marker roprof adds under
    // ROPROF_TEST_LABEL, so containers of other roprof runs are not counted.
    docker_ok([
        "ps",
        ps_flags,
        "--filter",
        "label=io.roprof.managed",
        "--filter",
        format!("label={}", owner_label()).as_str(),
    ])
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(str::to_owned)
    .collect()
}

/// Starts `IMAGE sh -c SCRIPT` in the background as container `name`,
/// labelled [`TEST_LABEL`] so that [`ContainerGuard`] removes it.
pub fn run_detached(name: &str, image: &str, script: &str) {
    let owner = owner_label();
    docker_ok([
        "run",
        "-d",
        "--label",
        TEST_LABEL,
        "--label",
        owner.as_str(),
        "--name",
        name,
        image,
        "sh",
        "-c",
        script,
    ]);
}

/// Number of BPF links on the machine (`bpftool link list`); roprof's
/// tracepoint attachments are links, so a run must leave this unchanged.
#[must_use]
pub fn bpf_links() -> usize {
    let out = Command::new("bpftool")
        .args(["-j", "link", "list"])
        .output()
        .unwrap_or_else(|e| panic!("expected bpftool to run (apt-get install bpftool): {e}"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "expected JSON from `bpftool -j link list` ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    v.as_array().map_or(0, Vec::len)
}

/// Names of every Docker volume (anonymous ones included).
#[must_use]
pub fn volume_names() -> std::collections::BTreeSet<String> {
    docker_ok(["volume", "ls", "-q"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What a finished `roprof` run left: exit status and output. (Its peak
/// memory is in the report's `stats.peak_rss_kib`: `ru_maxrss` from wait4
/// would include the forking test process's own memory, recorded at exec.)
#[derive(Debug)]
pub struct Finished {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Finished {
    /// The JSON report on stdout; panics with the output when it is not one.
    #[must_use]
    pub fn report(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "expected a JSON report on stdout ({e}); stdout:\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A free port on 127.0.0.1 (bound and released: the race with other
/// binders on this host is accepted for a test).
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or_else(
            |e| panic!("expected a free port on 127.0.0.1: {e}"),
            |a| a.port(),
        )
}

/// A `roprof` running in the background, its stderr readable line by line.
pub struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
    stderr_rest: std::thread::JoinHandle<()>,
}

/// Starts `roprof ARGS` (test label set, plus `env`) in the background.
#[must_use]
pub fn spawn_roprof(args: &[&str], env: &[(&str, &str)]) -> Running {
    use std::io::{BufRead as _, Read as _};
    let mut cmd = Command::new(roprof_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("ROPROF_TEST_LABEL", owner());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let line = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("expected to run {line}, but it could not start: {e}"));
    let mut out = child.stdout.take().expect("stdout is piped");
    let err = child.stderr.take().expect("stderr is piped");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let (tx, lines) = std::sync::mpsc::channel();
    let stderr_rest = std::thread::spawn(move || {
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    Running {
        child,
        lines,
        stderr_seen: Vec::new(),
        stdout,
        stderr_rest,
    }
}

impl Running {
    /// Process id.
    #[must_use]
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits in i32")
    }

    /// Waits (up to `timeout`) for a stderr line containing `needle`;
    /// panics with what was printed when it never comes.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.stderr_seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(e) => panic!(
                    "expected roprof to print `{needle}` on stderr within {timeout:?} ({e}); it printed:\n{}",
                    self.stderr_seen.join("\n")
                ),
            }
        }
    }

    /// Sends `sig` to roprof.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Waits for roprof to exit (panics after `timeout`, killing it) and
    /// returns its status and output.
    #[must_use]
    pub fn finish(mut self, timeout: std::time::Duration) -> Finished {
        let deadline = std::time::Instant::now() + timeout;
        let pid = self.pid();
        let mut status = 0;
        // SAFETY: rusage is plain data; zeroed is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4 on our own child; status and usage are valid
            // pointers for the duration of the call.
            let r = unsafe { libc::wait4(pid, &raw mut status, libc::WNOHANG, &raw mut usage) };
            if r == pid {
                break;
            }
            assert!(
                r == 0,
                "wait4({pid}) failed: {}",
                std::io::Error::last_os_error()
            );
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "roprof did not exit within {timeout:?}; stderr so far:\n{}",
                    self.stderr_seen.join("\n")
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let stdout = self.stdout.join().unwrap_or_default();
        let _ = self.stderr_rest.join();
        self.stderr_seen.extend(self.lines.try_iter());
        Finished {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            stdout,
            stderr: self.stderr_seen.join("\n"),
        }
    }
}

/// The pid of the running dockerd (from its pid file).
#[must_use]
pub fn dockerd_pid() -> Option<i32> {
    let pid: i32 = std::fs::read_to_string("/var/run/docker.pid")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (!process_gone(pid)).then_some(pid)
}

/// True once `pid` has exited: no such process, or a zombie (a dockerd
/// started by `cargo xtask test` stays a zombie child of xtask until xtask
/// exits).
#[must_use]
pub fn process_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        // The state follows the parenthesised command name.
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Restarts dockerd when dropped if it does not answer, so a test that
/// stops the engine and then fails does not take the rest of the suite
/// down with it.
#[must_use = "dockerd is restarted when the guard is dropped"]
pub struct DockerdGuard(());

impl DockerdGuard {
    pub fn new() -> Self {
        Self(())
    }
}

impl Default for DockerdGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for DockerdGuard {
    fn drop(&mut self) {
        if !docker_answers() {
            start_dockerd();
        }
    }
}

/// True when `docker version` gets an answer from the engine.
#[must_use]
pub fn docker_answers() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts dockerd the way `cargo xtask setup` does (own session, log in
/// /var/log/roprof-dockerd.log) and waits up to 60 s until it answers.
#[expect(
    clippy::zombie_processes,
    reason = "dockerd outlives the test on purpose, as when xtask starts it"
)]
pub fn start_dockerd() {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open("/var/log/roprof-dockerd.log")
        .expect("can open the dockerd log");
    let log_err = log.try_clone().expect("can duplicate the log handle");
    let _child = Command::new("setsid")
        .arg("dockerd")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .expect("can start `setsid dockerd`");
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    while !docker_answers() {
        assert!(
            std::time::Instant::now() < deadline,
            "dockerd did not answer within 60 s after a restart; see /var/log/roprof-dockerd.log"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Builds `tag` from a Dockerfile given as text (no context files), quietly.
pub fn build_image(tag: &str, dockerfile: &str) {
    use std::io::Write as _;
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker build starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(dockerfile.as_bytes())
        .expect("Dockerfile written to docker build");
    let out = child.wait_with_output().expect("docker build finishes");
    assert!(
        out.status.success(),
        "expected `docker build -t {tag}` to succeed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory removed when dropped, whatever the test's outcome.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh, empty directory under the temp dir, named from `prefix`
    /// and this test process.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        let d = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&d)
            .unwrap_or_else(|e| panic!("expected to create {}: {e}", d.display()));
        TempDir(d)
    }

    /// Writes `text` to `name` inside; its path.
    #[expect(
        clippy::must_use_candidate,
        reason = "called for its effect; the path is a convenience"
    )]
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }

    /// The text of `name` inside.
    #[must_use]
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.0.join(name))
            .unwrap_or_else(|e| panic!("expected {name} in {}: {e}", self.0.display()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Ids of the BPF programs process `pid` holds open (its fds' `prog_id`).
/// Other engineers' and suites' roprof processes load programs of the
/// same names on this host, so the leak check follows these ids rather
/// than a count by name.
#[must_use]
pub fn prog_ids(pid: i32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return Vec::new();
    };
    let mut ids: Vec<u32> = rd
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("prog_id:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// True while BPF program `id` is loaded (`bpftool prog show id ID`).
#[must_use]
pub fn prog_loaded(id: u32) -> bool {
    Command::new("bpftool")
        .args(["prog", "show", "id", &id.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("expected bpftool to run (apt-get install bpftool): {e}"))
        .success()
}
