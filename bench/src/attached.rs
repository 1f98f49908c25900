//! The overhead benchmark's reference rows: the same untraced container loop
//! while something else is attached to the host.
//!
//! - the **floor** ([`crate::floor`]): empty programs on the raw tracepoints
//!   roprof hooks, held by the bench itself; what the loop loses is the cost
//!   of the mechanism itself, the limit roprof's own overhead is read against;
//! - the **neighbour**: roprof profiles a different, idle container; the
//!   loop runs in another container, untraced, and pays only for roprof's
//!   hooks rejecting its syscalls;
//! - **hook kinds**: bpftrace with the same trivial filter (a hash-map
//!   lookup on the pid, as roprof's first check) either on every syscall
//!   (`tracepoint:raw_syscalls:*`) or only on the syscalls roprof hooks
//!   (`tracepoint:syscalls:sys_{enter,exit}_*`): what an untraced neighbour
//!   would save with per-syscall tracepoints. bpftrace 0.17 (Debian 12) has
//!   no `rawtracepoint:` probe, so both sides are perf tracepoints.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, docker::image_name};

/// The trivial filter both bpftrace scripts use: a lookup in a hash map
/// keyed by pid that holds only pid 0, so nothing passes (roprof's hooks
/// look the caller up in `TRACED` first).
const FILTER: &str = "/@traced[pid]/";

/// bpftrace on every syscall, like roprof's raw `sys_enter`/`sys_exit`.
pub fn all_syscalls_script() -> String {
    format!(
        "BEGIN {{ @traced[0] = 1; }}\n\
         tracepoint:raw_syscalls:sys_enter {FILTER} {{ @hits = count(); }}\n\
         tracepoint:raw_syscalls:sys_exit {FILTER} {{ @hits = count(); }}"
    )
}

/// The tracepoint names (`sys_enter_NAME`) of the syscalls roprof hooks
/// ([`roprof::trace::specs::hooks`], the list its kernel side is given)
/// that this kernel has. The kernel names a tracepoint after the syscall's
/// `SYSCALL_DEFINE`, which for a few is not the name of its number
/// (`sendfile` is `sendfile64`): `NAME64` is taken when `NAME` is missing.
pub fn hooked_tracepoints(available: impl Fn(&str) -> bool) -> Vec<String> {
    roprof::trace::specs::hooks()
        .iter()
        .filter_map(|h| {
            [h.name.to_owned(), format!("{}64", h.name)]
                .into_iter()
                .find(|t| available(t))
        })
        .collect()
}

/// bpftrace on entry and exit of the given syscall tracepoints only (the
/// count is returned too).
pub fn hooked_syscalls_script(present: &[String]) -> (String, usize) {
    let probes = |dir: &str| {
        present
            .iter()
            .map(|s| format!("tracepoint:syscalls:sys_{dir}_{s}"))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    (
        format!(
            "BEGIN {{ @traced[0] = 1; }}\n{} {FILTER} {{ @hits = count(); }}\n{} {FILTER} {{ @hits = count(); }}",
            probes("enter"),
            probes("exit")
        ),
        present.len(),
    )
}

/// `sh -c SCRIPT ARGS…` in a private mount namespace with tracefs mounted
/// there (never on the host: a fresh host has none, and roprof must not
/// depend on one left behind).
fn with_private_tracefs(script: &str, args: &[&str]) -> Command {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing; \
             {script}"
        ))
        .args(args);
    c
}

/// Which syscall tracepoints this kernel has, read from tracefs in a private
/// mount namespace.
pub fn syscall_tracepoints() -> Result<Vec<String>> {
    let out = cmd::stdout(&mut with_private_tracefs(
        "ls /sys/kernel/tracing/events/syscalls",
        &[],
    ))?;
    Ok(out
        .lines()
        .filter_map(|l| l.strip_prefix("sys_enter_"))
        .map(str::to_owned)
        .collect())
}

/// A process whose stderr is watched for a readiness line; SIGINT on drop
/// (and waited for), so nothing stays attached however the bench ends.
pub struct Attached {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<thread::JoinHandle<()>>,
    /// The line that said it was ready.
    ready_line: String,
}

impl Attached {
    /// Starts `c` with the chosen stream piped and waits (at most `within`)
    /// for a line starting with `ready`.
    fn start(mut c: Command, stdout: bool, ready: &str, within: Duration) -> Result<Self> {
        c.stdin(Stdio::null());
        if stdout {
            c.stdout(Stdio::piped()).stderr(Stdio::null());
        } else {
            c.stdout(Stdio::null()).stderr(Stdio::piped());
        }
        let line = cmd::display(&c);
        let mut child = c
            .spawn()
            .with_context(|| format!("could not start `{line}`"))?;
        let pipe: Box<dyn std::io::Read + Send> = if stdout {
            Box::new(child.stdout.take().context("no stdout pipe")?)
        } else {
            Box::new(child.stderr.take().context("no stderr pipe")?)
        };
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut me = Attached {
            child,
            lines: rx,
            reader: Some(reader),
            ready_line: String::new(),
        };
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match me.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(ready) => {
                    me.ready_line = l;
                    return Ok(me);
                }
                Ok(_) => {}
                Err(_) => bail!("`{line}` did not print `{ready}…` within {within:?}"),
            }
        }
    }

    /// Waits (at most `within`) for a line starting with `prefix`, printed
    /// since it was ready.
    pub fn wait_for(&mut self, prefix: &str, within: Duration) -> Result<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Ok(l),
                Ok(_) => {}
                Err(_) => bail!("no line `{prefix}…` within {within:?}"),
            }
        }
    }

    /// SIGINT, wait, and the lines printed since it was ready.
    pub fn stop(mut self) -> Result<Vec<String>> {
        self.interrupt()?;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        Ok(self.lines.try_iter().collect())
    }

    fn interrupt(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            let pid = i32::try_from(self.child.id()).context("pid out of range")?;
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        self.child.wait().context("waiting for the attached tool")?;
        Ok(())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = self.interrupt();
    }
}

/// bpftrace running `program` (tracefs mounted in a private mount namespace
/// for it alone; unshare and sh exec, so the pid stays bpftrace's and SIGINT
/// reaches it), once it printed `Attaching`.
pub fn bpftrace(program: &str) -> Result<Attached> {
    let c = with_private_tracefs("exec bpftrace -B line -e \"$0\"", &[program]);
    let me = Attached::start(c, true, "Attaching", Duration::from_mins(2))?;
    // bpftrace 0.17 prints `Attaching N probes...` before it loads and
    // attaches them one by one (seconds for a hundred probes on a loaded
    // machine): wait until it holds a perf event per probe.
    let probes: usize = me
        .ready_line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let fd_dir = format!("/proc/{}/fd", me.child.id());
    let deadline = Instant::now() + Duration::from_mins(2);
    loop {
        let perf_events = std::fs::read_dir(&fd_dir).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|t| t.to_string_lossy().contains("perf_event"))
                .count()
        });
        if perf_events >= probes {
            return Ok(me);
        }
        if Instant::now() > deadline {
            bail!("bpftrace attached {perf_events} of {probes} probes within 120 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The argument the neighbour's idle container sleeps for: distinctive, so
/// that the container can be recognised in `docker ps`.
const IDLE_SECS: &str = "3593";

/// roprof profiling an idle container (`opsuite sleep`), once that
/// container runs (roprof attaches its programs before it starts it).
pub fn neighbour(roprof: &Path) -> Result<Attached> {
    let needle = format!("sleep {IDLE_SECS}");
    let writer = image_name("writer");
    profiling(roprof, &[writer.as_str(), "sleep", IDLE_SECS], || {
        let ps = cmd::stdout(&mut cmd::docker([
            "ps",
            "--no-trunc",
            "--format",
            "{{.Command}}",
        ]))?;
        Ok(ps.contains(&needle).then(String::new))
    })
}

/// roprof profiling `image` (a server) for as long as it is held, once its
/// container runs: the tool and the container's id. The container is told
/// apart from any other roprof-managed one of the image by an environment
/// variable of its own (`-e ROPROF_BENCH_RUN=…`, nothing reads it).
pub fn profiled(roprof: &Path, image: &str) -> Result<(Attached, String)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let marker = format!(
        "ROPROF_BENCH_RUN={}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut id = String::new();
    let tool = profiling(roprof, &["-e", marker.as_str(), image], || {
        let ps = cmd::stdout(&mut cmd::docker([
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "label=io.roprof.managed",
            "--filter",
            &format!("ancestor={image}"),
        ]))?;
        Ok(ps
            .lines()
            .find(|id| has_env(id, &marker))
            .map(str::to_owned))
    })?;
    if let Some(found) = tool.ready_line.strip_prefix("container ") {
        found.clone_into(&mut id);
    }
    Ok((tool, id))
}

/// Whether container `id` was started with `NAME=VALUE` in its environment.
fn has_env(id: &str, var: &str) -> bool {
    cmd::stdout(&mut cmd::docker([
        "inspect",
        "--format",
        "{{range .Config.Env}}{{println .}}{{end}}",
        id,
    ]))
    .is_ok_and(|env| env.lines().any(|l| l == var))
}

/// `roprof watch -o DIR --label KEY=VALUE` on the host, once it watches:
/// it profiles the containers created from then on with that label.
pub fn watch(roprof: &Path, label: &str, out_dir: &Path) -> Result<Attached> {
    let mut c = Command::new(roprof);
    c.args(["watch", "--label", label, "-o"]).arg(out_dir);
    Attached::start(c, false, "roprof: watching", Duration::from_mins(1))
}

/// `roprof profile --window fixed --duration 3600s ARGS`, once `started`
/// finds its container running (its `Some` is kept as the ready line,
/// prefixed `container `).
fn profiling(
    roprof: &Path,
    args: &[&str],
    started: impl Fn() -> Result<Option<String>>,
) -> Result<Attached> {
    let mut c = Command::new(roprof);
    c.args([
        "profile",
        "--quiet",
        "--format",
        "docker",
        "--window",
        "fixed",
        "--duration",
        "3600s",
    ])
    .args(args);
    let line = cmd::display(&c);
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let (_tx, rx) = mpsc::channel();
    let mut me = Attached {
        child,
        lines: rx,
        reader: None,
        ready_line: String::new(),
    };
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        if let Some(status) = me.child.try_wait()? {
            bail!("`{line}` exited ({status}) before its container started");
        }
        if let Some(found) = started()? {
            // Started: its hooks have been attached since before the start.
            me.ready_line = format!("container {found}");
            return Ok(me);
        }
        if Instant::now() > deadline {
            bail!("`{line}` did not start its container within 60 s");
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// `roprof guard` on the host (every read-only container), once it watches.
pub fn guard(roprof: &Path) -> Result<Attached> {
    let mut c = Command::new(roprof);
    c.arg("guard");
    Attached::start(c, false, "roprof: guard: watching", Duration::from_mins(1))
}

/// The `@hits` count in bpftrace's map dump (0 if absent).
pub fn hits(lines: &[String]) -> u64 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("@hits: ")?.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooked_tracepoints_come_from_roprofs_list() {
        let all = hooked_tracepoints(|_| true);
        assert_eq!(
            all.len(),
            roprof::trace::specs::hooks().len(),
            "every hook has a tracepoint on a kernel that has them all"
        );
        assert!(all.iter().any(|t| t == "openat"), "{all:?}");
        let some = hooked_tracepoints(|t| t == "openat" || t == "sendfile64");
        assert_eq!(some, ["openat", "sendfile64"], "sendfile is sendfile64");
        assert!(hooked_tracepoints(|t| t == "notasyscall").is_empty());
    }

    #[test]
    fn hooked_script_names_only_the_given_tracepoints() {
        let (s, n) = hooked_syscalls_script(&["openat".to_owned(), "write".to_owned()]);
        assert_eq!(n, 2);
        assert!(s.contains("tracepoint:syscalls:sys_enter_openat,\ntracepoint:syscalls:sys_enter_write /@traced[pid]/"), "{s}");
        assert!(
            s.contains("tracepoint:syscalls:sys_exit_write /@traced[pid]/"),
            "{s}"
        );
        assert!(!s.contains("mkdir"), "{s}");
    }

    #[test]
    fn reads_the_hit_count() {
        let lines: Vec<String> = ["", "@hits: 12", "@traced[0]: 1"]
            .map(String::from)
            .to_vec();
        assert_eq!(hits(&lines), 12);
        assert_eq!(hits(&[]), 0);
    }
}
