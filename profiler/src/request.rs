//! What a user asks for, whichever way it was asked (command line, a
//! compose service, a pod template): the container's run options, how
//! the run is observed, and how the result maps to an exit code.
//!
//! Every workflow builds its [`RunConfig`] through [`Observe::config`] and
//! its run options through [`RunRequest::resolve`], so the environment is
//! resolved, and secrets withheld, in one place; and every workflow picks
//! its exit code with [`outcome`], so they agree on what wins when a run
//! both lost events and failed verification.

use std::time::Duration;

use crate::{
    environment::{self, ContainerEnv, EnvError},
    model::{EnvValues, ObserveOptions, Report, RunMode, RunOptions},
    runtime::ServiceExtras,
    session::{RunConfig, Window, closed::flow::Loop, interrupt},
};

/// Exit code: the profile lost events or truncated paths (see `--allow-loss`).
pub const EXIT_LOSS: i32 = 3;
/// Exit code: verification failed.
pub const EXIT_VERIFY_FAILED: i32 = 4;
/// Exit code: the run was cut short without a signal (the Docker engine was
/// lost, or the container was OOM-killed); the report is marked incomplete.
pub const EXIT_INCOMPLETE: i32 = 5;
/// Exit code: `roprof check` found that the baseline's plan no longer
/// holds for the new run (a failure, or with `--strict` any finding).
pub const EXIT_CHECK_FAILED: i32 = 6;
/// Exit code: verified with exceptions: the read-only run matched but for
/// writes the plan leaves to fail on purpose (below application code).
pub const EXIT_VERIFIED_WITH_EXCEPTIONS: i32 = 7;
/// Exit code: interrupted by SIGINT/SIGTERM.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Container runs a verify/repair loop may spend unless told
/// (`profile --max-runs`, `verify --max-runs`).
pub const DEFAULT_MAX_RUNS: usize = 4;

/// Container runs `--mode iterate` may spend unless told: it goes on while
/// each round adds mounts for new EROFS paths, and a real entrypoint fails
/// on one path after another (an nginx that renders its config, then opens
/// its logs, its cache and its pid file takes 5 runs).
pub const ITERATE_MAX_RUNS: usize = 10;

/// The run budget of closed loop `how`: `given` (`--max-runs`) when set,
/// else [`ITERATE_MAX_RUNS`] for iterate and [`DEFAULT_MAX_RUNS`] for the
/// others.
#[must_use]
pub fn max_runs(how: Loop, given: Option<usize>) -> usize {
    given.unwrap_or(if how == Loop::Iterate {
        ITERATE_MAX_RUNS
    } else {
        DEFAULT_MAX_RUNS
    })
}

/// docker-run-like options of the container, as given (`-e` values
/// included: [`RunRequest::resolve`] decides what a report may keep).
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// `-e NAME[=VALUE]`.
    pub env: Vec<String>,
    /// `--env-file FILE`.
    pub env_file: Vec<String>,
    /// `-v SRC:DST[:OPTS]`.
    pub volume: Vec<String>,
    /// `--tmpfs DST[:OPTS]`.
    pub tmpfs: Vec<String>,
    /// `-p [IP:][HOSTPORT:]PORT[/PROTO]`.
    pub publish: Vec<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--memory`.
    pub memory: Option<String>,
}

impl RunRequest {
    /// The run options as a report records them (`-e` values kept only
    /// when `reveal`), and the container's environment with its values
    /// (env files read, pass-through names looked up in roprof's own
    /// environment).
    pub fn resolve(
        &self,
        command: &[String],
        reveal: bool,
    ) -> Result<(RunOptions, ContainerEnv), EnvError> {
        let env = environment::parse_env_args(&self.env)?;
        let env_files = environment::absolute_env_files(&self.env_file)?;
        let values = ContainerEnv::resolve(&env, &env_files, environment::from_process)?;
        let mut opts = RunOptions {
            env,
            env_files,
            env_values: EnvValues::Revealed,
            volumes: self.volume.clone(),
            tmpfs: self.tmpfs.clone(),
            publish: self.publish.clone(),
            user: self.user.clone(),
            workdir: self.workdir.clone(),
            entrypoint: self.entrypoint.clone(),
            network: self.network.clone(),
            cap_add: self.cap_add.clone(),
            security_opt: self.security_opt.clone(),
            memory: self.memory.clone(),
            group_add: Vec::new(),
            command: command.to_vec(),
        };
        if !reveal {
            opts.withhold_env_values();
        }
        Ok((opts, values))
    }
}

/// How a run is observed: its window, stop and the load put on it.
#[derive(Clone, Debug)]
pub struct Observe {
    /// Longest observation window.
    pub duration: Duration,
    /// How the window ends before `duration`.
    pub window: Window,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_timeout: i32,
    /// Shell command run on the host during the window.
    pub exercise: Option<String>,
    /// URL polled until it answers.
    pub probe: Option<String>,
}

impl Default for Observe {
    /// The command line's defaults: `--duration 10s --window settle
    /// --settle 2s --stop-timeout 10`, no exercise, no probe.
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(10),
            window: Window::Settle(Duration::from_secs(2)),
            stop_timeout: 10,
            exercise: None,
            probe: None,
        }
    }
}

impl From<&ObserveOptions> for Observe {
    /// The observation a report recorded (`roprof check` observes a new
    /// image version as its baseline was).
    fn from(o: &ObserveOptions) -> Self {
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(10));
        Self {
            duration: secs(o.duration_secs),
            window: o
                .settle_secs
                .map_or(Window::Fixed, |s| Window::Settle(secs(s))),
            stop_timeout: o.stop_timeout,
            exercise: o.exercise.clone(),
            probe: o.probe.clone(),
        }
    }
}

impl Observe {
    /// The configuration of one run of `image` observed this way: a
    /// writable root, no plan mounts, the container removed afterwards,
    /// progress shown. Callers change what their workflow needs
    /// (`RunConfig { read_only: true, ..observe.config(…) }`).
    #[must_use]
    pub fn config(
        &self,
        image: String,
        run: RunOptions,
        env: ContainerEnv,
        mode: RunMode,
    ) -> RunConfig {
        RunConfig {
            image,
            run,
            env,
            duration: self.duration,
            window: self.window,
            stop_timeout: self.stop_timeout,
            exercise: self.exercise.clone(),
            probe: self.probe.clone(),
            keep: false,
            quiet: false,
            read_only: false,
            extra_tmpfs: vec![],
            extra_binds: vec![],
            mode,
            ringbuf_bytes: None,
            extras: ServiceExtras::default(),
            label: None,
        }
    }
}

/// How a workflow ended, for its exit code. When several apply, the
/// first listed here wins over the later ones (an incomplete run says
/// nothing about verification, and a failed verification matters more
/// than lost events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// A signal cut the run short.
    Interrupted,
    /// The run was cut short without a signal (engine lost, OOM).
    Incomplete,
    /// `roprof check`: the baseline's plan no longer holds.
    CheckFailed,
    /// The read-only run differed and was not repaired.
    VerifyFailed,
    /// The read-only run matched but for the writes the plan leaves to fail
    /// on purpose (`plan.unmounted`): `verified_with_exceptions`.
    VerifiedWithExceptions,
    /// Events were lost or paths truncated (and `--allow-loss` not given).
    Loss,
    /// Everything asked for was done.
    Success,
}

impl Outcome {
    /// The process exit code (documented in `roprof --help`).
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            Outcome::Interrupted => EXIT_INTERRUPTED,
            Outcome::Incomplete => EXIT_INCOMPLETE,
            Outcome::CheckFailed => EXIT_CHECK_FAILED,
            Outcome::VerifyFailed => EXIT_VERIFY_FAILED,
            Outcome::VerifiedWithExceptions => EXIT_VERIFIED_WITH_EXCEPTIONS,
            Outcome::Loss => EXIT_LOSS,
            Outcome::Success => 0,
        }
    }
}

/// The outcome of a workflow that produced `report`, with `verdict` from
/// its closed loop when it ran one (`Some(false)`: verification failed).
#[must_use]
pub fn outcome(report: &Report, verdict: Option<bool>, allow_loss: bool) -> Outcome {
    if report.run.incomplete {
        if interrupt::interrupted() {
            Outcome::Interrupted
        } else {
            Outcome::Incomplete
        }
    } else if verdict == Some(false) {
        Outcome::VerifyFailed
    } else if !report.losses.is_clean() && !allow_loss {
        Outcome::Loss
    } else if verdict == Some(true)
        && report.run.verification == Some(crate::model::Verification::VerifiedWithExceptions)
    {
        Outcome::VerifiedWithExceptions
    } else {
        Outcome::Success
    }
}

/// Says on stderr which `-e NAME` variables were not set, so the container
/// runs without them (as `docker run -e NAME` does).
pub fn warn_unset(env: &ContainerEnv) {
    for name in env.unset_names() {
        eprintln!(
            "roprof: warning: -e {}: not set in roprof's environment, so the container runs \
             without it (export it first; under sudo: sudo --preserve-env={0} …)",
            crate::render::escape_bytes(name.as_bytes())
        );
    }
}

/// Applies the output policy (see [`environment::apply_policy`]) and
/// warns about values that are part of observed paths.
pub fn withhold_env(report: &mut Report, env: &ContainerEnv, reveal: bool) {
    for name in environment::apply_policy(report, env, reveal) {
        eprintln!(
            "roprof: warning: the value of {} is part of an observed path; paths are evidence \
             and are written as observed",
            crate::render::escape_bytes(name.as_bytes())
        );
    }
}

/// The outcome of `roprof check`: an incomplete new run says nothing about
/// the baseline; a baseline that no longer holds (`failed`) wins over lost
/// events.
#[must_use]
pub fn check_outcome(report: &Report, failed: bool, allow_loss: bool) -> Outcome {
    match outcome(report, None, allow_loss) {
        o @ (Outcome::Interrupted | Outcome::Incomplete) => o,
        _ if failed => Outcome::CheckFailed,
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::{Outcome, check_outcome, outcome};
    use crate::model::{Losses, Report};

    #[test]
    fn an_incomplete_run_wins_over_verification_and_loss() {
        let mut r = Report::default();
        assert_eq!(outcome(&r, None, false), Outcome::Success);
        assert_eq!(outcome(&r, Some(true), false), Outcome::Success);
        r.losses = Losses {
            ringbuf_drops: 1,
            ..Losses::default()
        };
        assert_eq!(outcome(&r, None, false), Outcome::Loss);
        assert_eq!(outcome(&r, None, true), Outcome::Success);
        assert_eq!(outcome(&r, Some(false), false), Outcome::VerifyFailed);
        r.run.incomplete = true;
        assert_eq!(outcome(&r, Some(false), false), Outcome::Incomplete);
        assert_eq!(Outcome::Incomplete.code(), 5);
        assert_eq!(Outcome::Loss.code(), 3);
        assert_eq!(check_outcome(&r, true, false), Outcome::Incomplete);
        r.run.incomplete = false;
        assert_eq!(check_outcome(&r, true, false), Outcome::CheckFailed);
        assert_eq!(check_outcome(&r, false, false), Outcome::Loss);
        assert_eq!(check_outcome(&r, false, true), Outcome::Success);
        assert_eq!(Outcome::CheckFailed.code(), 6);
        r.run.incomplete = true;
        // The worst of several (compose services) is the smallest.
        assert_eq!(
            [Outcome::Success, Outcome::Loss, Outcome::VerifyFailed]
                .into_iter()
                .min(),
            Some(Outcome::VerifyFailed)
        );
    }
}
