//! Command-line interface: one file per subcommand.

pub mod attach;
pub mod check;
pub mod completions;
pub mod compose;
pub mod doctor;
pub mod guard;
#[cfg(test)]
mod guard_deploy_tests;
pub mod manifest;
pub mod merge;
pub mod patch;
pub mod profile;
pub mod render;
pub mod verify;
pub mod watch;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use roprof::request::{Observe, Outcome, RunRequest};

pub use roprof::request::{DEFAULT_MAX_RUNS, EXIT_INTERRUPTED};

/// roprof: find the paths a container writes, then run it with a read-only root.
#[derive(Debug, Parser)]
#[command(
    name = "roprof",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success; 1 error (the message names the thing at fault, \
and `roprof doctor` checks the host); \
2 bad command line; 3 events lost or paths truncated (see --allow-loss); \
4 verification failed; 5 the run was cut short (Docker engine lost, container \
OOM-killed): the report is printed, marked incomplete; 6 `check`: the baseline's \
plan no longer holds (a failure; with --strict, any finding); 7 verified with \
exceptions: the read-only run matched but for writes the plan leaves to fail on purpose \
(below application code; --writable-code mounts there instead); 130 interrupted \
(SIGINT/SIGTERM): containers and BPF programs removed, report marked incomplete."
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap derive"
)]
pub enum Command {
    /// Run IMAGE under tracing and propose the writable mounts it needs.
    Profile(profile::ProfileArgs),
    /// Profile an already running container from now on.
    Attach(attach::AttachArgs),
    /// Re-run IMAGE read-only with a report's mounts and compare.
    Verify(verify::VerifyArgs),
    /// CI gate: profile a new version of the image as the baseline report
    /// was made and check the baseline's plan against it (exit 6 when it
    /// no longer holds).
    Check(check::CheckArgs),
    /// Re-render a saved report.json in another format.
    Render(render::RenderArgs),
    /// One plan from several reports of the same image and run options
    /// (different exercises, a workload's replicas): the union of their
    /// observations, planned again; exit 1 naming the first difference.
    Merge(merge::MergeArgs),
    /// Patch Kubernetes manifests with a report's mounts.
    Patch(patch::PatchArgs),
    /// Node agent: profile every new container matching --label/--name
    /// until it exits (Docker, Podman or containerd), one report each and
    /// one merged plan per workload.
    Watch(watch::WatchArgs),
    /// Production mode: report every failed write (EROFS, and EACCES on
    /// its mounts) of the running read-only containers, as JSON lines with
    /// the mount that fixes it, until SIGINT/SIGTERM.
    Guard(guard::GuardArgs),
    /// Check whether this host can profile (kernel, BTF, cgroup v2,
    /// privileges, lockdown, a BPF smoke test, the engine, memory); exit 1
    /// naming the first blocker.
    Doctor(doctor::DoctorArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (or write all pages with --out-dir).
    Man(completions::ManArgs),
}

/// The `docker run` options that a compose service or a pod template
/// gives itself: refused beside `--compose` and `--manifest` (clap ids of
/// [`RunArgs`]' fields). `-p` is not among them: `--manifest` takes it
/// for `--probe`, and `--compose` refuses it with its own list.
pub const GIVEN_BY_THE_FILE: [&str; 11] = [
    "env",
    "env_file",
    "volume",
    "tmpfs",
    "user",
    "workdir",
    "entrypoint",
    "network",
    "cap_add",
    "security_opt",
    "memory",
];

/// How the observation window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WindowKind {
    /// When the application has settled (at most --duration).
    Settle,
    /// After the whole --duration.
    Fixed,
}

/// How a run is observed; shared by profile and verify.
#[derive(Debug, Args, Clone)]
pub struct ObserveArgs {
    /// Longest observation window; it ends earlier when the application
    /// settles (see --window) or the container exits.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// `settle`: end once no new write-type operation was seen and the
    /// container was idle for --settle, after --probe answered and
    /// --exercise finished. `fixed`: always the whole --duration (late
    /// writers, periodic jobs, anything that waits before writing).
    #[arg(long, value_enum, default_value = "settle")]
    pub window: WindowKind,
    /// Quiet period that counts as settled.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "D")]
    pub settle: Duration,
    /// Seconds to wait after the stop signal before SIGKILL.
    #[arg(long, default_value_t = 10)]
    pub stop_timeout: i32,
    /// Shell command run on the host during the window (load, tests).
    #[arg(long)]
    pub exercise: Option<String>,
    /// URL polled until it answers (publish the port on 127.0.0.1).
    #[arg(long)]
    pub probe: Option<String>,
}

impl ObserveArgs {
    /// The library's observation request for these options.
    #[must_use]
    pub fn observe(&self) -> Observe {
        Observe {
            duration: self.duration,
            window: match self.window {
                WindowKind::Settle => roprof::session::Window::Settle(self.settle),
                WindowKind::Fixed => roprof::session::Window::Fixed,
            },
            stop_timeout: self.stop_timeout,
            exercise: self.exercise.clone(),
            probe: self.probe.clone(),
        }
    }
}

/// docker-run-like options shared by profile and verify.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Set an environment variable (NAME=VALUE), or pass NAME through from
    /// roprof's environment. Outputs keep the name only (see --reveal-env).
    #[arg(short = 'e', long = "env", value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Read variables from FILE (`docker run --env-file` format). Outputs
    /// refer to the file by its absolute path and never copy its content.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Bind mount or named volume (SRC:DST[:OPTS]).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Your own tmpfs mounts (DST[:OPTS]); never proposed again.
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Publish a port ([IP:][HOSTPORT:]PORT[/PROTO]); use 127.0.0.1 with --probe.
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// User (NAME|UID[:GID]).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Override the image's entrypoint.
    #[arg(long = "entrypoint")]
    pub entrypoint: Option<String>,
    /// Network mode.
    #[arg(long = "network")]
    pub network: Option<String>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Security options, as `docker run --security-opt` (seccomp, apparmor,
    /// no-new-privileges); repeated in the docker and compose output.
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Memory limit (bytes, or with a k/m/g suffix); swap is not added.
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
}

impl RunArgs {
    /// The library's request for these options.
    #[must_use]
    pub fn request(&self) -> RunRequest {
        RunRequest {
            env: self.env.clone(),
            env_file: self.env_file.clone(),
            volume: self.volume.clone(),
            tmpfs: self.tmpfs.clone(),
            publish: self.publish.clone(),
            user: self.user.clone(),
            workdir: self.workdir.clone(),
            entrypoint: self.entrypoint.clone(),
            network: self.network.clone(),
            cap_add: self.cap_add.clone(),
            security_opt: self.security_opt.clone(),
            memory: self.memory.clone(),
        }
    }
}

pub use roprof::request::{warn_unset, withhold_env};

/// Says on stderr what the outcome means (why the run is incomplete, what
/// was lost) and returns the exit code: one rule for every workflow (see
/// [`roprof::request::outcome`]). `what` is `profile` or `verification`.
#[must_use]
pub fn exit_code(
    what: &str,
    report: &roprof::model::Report,
    verdict: Option<bool>,
    allow_loss: bool,
) -> i32 {
    let outcome = roprof::request::outcome(report, verdict, allow_loss);
    match outcome {
        Outcome::Interrupted | Outcome::Incomplete => eprintln!(
            "roprof: the {what} is INCOMPLETE: {}",
            report
                .run
                .incomplete_reason
                .as_deref()
                .unwrap_or("the run was cut short")
        ),
        _ => {}
    }
    if !report.losses.is_clean() {
        eprintln!("roprof: the profile is INCOMPLETE: {}", report.losses);
    }
    outcome.code()
}

/// `--ringbuf-bytes`: a power of two of at least a page (the kernel's
/// rule for a BPF ring buffer), refused before anything runs.
pub fn parse_ringbuf_bytes(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of bytes"))?;
    if n.is_power_of_two() && n >= 4096 {
        Ok(n)
    } else {
        Err(format!(
            "{n} is not a power of two of at least 4096 (a BPF ring buffer's size is a \
             power-of-two multiple of the page size; e.g. 4194304 for 4 MiB)"
        ))
    }
}

/// `-o DIR`: refused before anything runs when it exists and is not a
/// directory (the outputs are files inside it).
pub fn check_output_dir(dir: &std::path::Path) -> Result<(), clap::Error> {
    use clap::CommandFactory as _;
    if dir.exists() && !dir.is_dir() {
        return Err(Cli::command().error(
            clap::error::ErrorKind::ValueValidation,
            format!(
                "-o {}: exists and is not a directory (-o names the directory every format \
                 is written into)",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Options of `profile` that, given after IMAGE, became the container's
/// command: `--formt docker` is most likely a typo of `--format`.
#[must_use]
pub fn misplaced_option_hint(command: &[String]) -> Option<String> {
    use clap::CommandFactory as _;
    let cmd = Cli::command();
    let profile = cmd.find_subcommand("profile")?;
    let longs: Vec<String> = profile
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    command.iter().find_map(|word| {
        let flag = word.strip_prefix("--")?.split('=').next()?;
        let close = longs
            .iter()
            .find(|l| *l == flag || edit_distance(l, flag) <= 2)?;
        Some(format!(
            "`{word}` comes after IMAGE, so it is passed to the container as part of its \
             command; if it is roprof's --{close}, put it before IMAGE"
        ))
    })
}

/// Levenshtein distance (short option names only).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Parses `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{s}` (use ms, s, m or h)"
            ));
        }
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn ring_buffer_sizes_are_checked_up_front() {
        assert_eq!(super::parse_ringbuf_bytes("4194304"), Ok(4_194_304));
        assert!(super::parse_ringbuf_bytes("1000").is_err());
        assert!(super::parse_ringbuf_bytes("2048").is_err());
        assert!(super::parse_ringbuf_bytes("4m").is_err());
    }

    #[test]
    fn an_option_after_the_image_gets_a_hint() {
        let hint = super::misplaced_option_hint(&["--formt".into(), "docker".into()]);
        assert!(
            hint.as_deref().is_some_and(|h| h.contains("--format")),
            "{hint:?}"
        );
        assert_eq!(
            super::misplaced_option_hint(&["redis-server".into(), "--port".into()]),
            None,
            "a container's own option is not roprof's"
        );
        assert_eq!(super::edit_distance("format", "formt"), 1);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap().as_secs(), 10);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("3").unwrap().as_secs(), 3);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
