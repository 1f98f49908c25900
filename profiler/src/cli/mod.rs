//! Command-line interface: one file per subcommand.

pub mod attach;
pub mod check;
pub mod completions;
pub mod compose;
pub mod doctor;
pub mod manifest;
pub mod patch;
pub mod profile;
pub mod render;
pub mod verify;
pub mod watch;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use roprof::{
    environment::{self, ContainerEnv},
    request::{Observe, Outcome, RunRequest},
};

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
plan no longer holds (a failure; with --strict, any finding); 130 interrupted \
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
    /// Patch Kubernetes manifests with a report's mounts.
    Patch(patch::PatchArgs),
    /// Node agent: profile every new container matching --label/--name
    /// until it exits (Docker, Podman or containerd), one report each and
    /// one merged plan per workload.
    Watch(watch::WatchArgs),
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

/// Says on stderr which `-e NAME` variables were not set, so the container
/// runs without them (as `docker run -e NAME` does).
pub fn warn_unset(env: &ContainerEnv) {
    for name in env.unset_names() {
        eprintln!(
            "roprof: warning: -e {}: not set in roprof's environment, so the container runs \
             without it (export it first; under sudo: sudo --preserve-env={0} …)",
            roprof::render::escape_bytes(name.as_bytes())
        );
    }
}

/// Applies the output policy (see [`environment::apply_policy`]) and
/// warns about values that are part of observed paths.
pub fn withhold_env(report: &mut roprof::model::Report, env: &ContainerEnv, reveal: bool) {
    for name in environment::apply_policy(report, env, reveal) {
        eprintln!(
            "roprof: warning: the value of {} is part of an observed path; paths are evidence \
             and are written as observed",
            roprof::render::escape_bytes(name.as_bytes())
        );
    }
}

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
        eprintln!("roprof: the profile is INCOMPLETE: {:?}", report.losses);
    }
    outcome.code()
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
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap().as_secs(), 10);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert_eq!(parse_duration("3").unwrap().as_secs(), 3);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
