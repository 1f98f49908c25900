//! Podman for the privileged tests: roprof pointed at Podman's API socket
//! (`DOCKER_HOST`), the `podman` CLI, and cleanup of what the tests left
//! there. `cargo xtask setup` installs podman, starts its API service and
//! loads the fixture images into its store.

use std::{
    ffi::OsStr,
    process::{Command, Output, Stdio},
};

use crate::{TEST_LABEL, owner, roprof_bin};

/// Podman's rootful API socket, as `DOCKER_HOST`.
pub const PODMAN_HOST: &str = "unix:///run/podman/podman.sock";

/// Which engine a roprof run talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// dockerd on its default socket.
    Docker,
    /// Podman's API service at [`PODMAN_HOST`].
    Podman,
}

/// Runs `podman ARGS` to completion (whatever the exit status).
pub fn podman<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("expected to run podman, but it could not start: {e}"))
}

/// Panics unless podman is installed and its API service answers (both
/// are set up by `cargo xtask setup`): a Podman test never passes by
/// skipping.
pub fn require_podman() {
    crate::require_privileged();
    let answers = Command::new("podman")
        .args(["--remote", "--url", PODMAN_HOST, "version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        answers,
        "Podman test cannot run: no Podman API service answers at {PODMAN_HOST} (or podman \
         is not installed). `cargo xtask setup` installs podman and starts \
         `podman system service --time=0 {PODMAN_HOST}`."
    );
}

/// Runs `roprof ARGS` against `engine`, with the test label set on the
/// containers it creates; returns (exit code, stdout, stderr).
pub fn roprof_on<S: AsRef<OsStr>>(engine: Engine, args: &[S]) -> (i32, String, String) {
    let mut cmd = Command::new(roprof_bin());
    cmd.args(args)
        .stdin(Stdio::null())
        .env("ROPROF_TEST_LABEL", owner());
    match engine {
        Engine::Docker => cmd.env_remove("DOCKER_HOST"),
        Engine::Podman => cmd.env("DOCKER_HOST", PODMAN_HOST),
    };
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

/// Removes, when dropped (and when made), the Podman containers and
/// volumes labelled [`TEST_LABEL`] that this process made or that no
/// living process claims, as [`crate::ContainerGuard`] does for Docker.
#[must_use = "the containers are removed when the guard is dropped"]
pub struct PodmanGuard(());

impl PodmanGuard {
    pub fn new() -> Self {
        remove_podman_test_objects();
        Self(())
    }
}

impl Default for PodmanGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PodmanGuard {
    fn drop(&mut self) {
        remove_podman_test_objects();
    }
}

/// The ids of `podman KIND ls` rows labelled [`TEST_LABEL`] owned by this
/// process or by no living one.
fn mine(kind: &str, id_field: &str) -> Vec<String> {
    let mut args = vec![kind.to_owned(), "ls".to_owned()];
    if kind == "container" {
        args.push("-a".into());
    }
    args.extend([
        "--filter".to_owned(),
        format!("label={TEST_LABEL}"),
        "--format".to_owned(),
        format!("{{{{{id_field}}}}} {{{{index .Labels \"roprof.test.owner\"}}}}"),
    ]);
    let out = podman(&args);
    let me = owner();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let id = w.next()?;
            let mine = w.next().is_none_or(|o| {
                o == me || o == "<no" || !std::path::Path::new("/proc").join(o).exists()
            });
            mine.then(|| id.to_owned())
        })
        .collect()
}

fn remove_podman_test_objects() {
    let containers = mine("container", ".ID");
    if !containers.is_empty() {
        let mut args = vec!["rm".to_owned(), "-f".to_owned(), "-v".to_owned()];
        args.extend(containers);
        let _ = podman(&args);
    }
    let volumes = mine("volume", ".Name");
    if !volumes.is_empty() {
        let mut args = vec!["volume".to_owned(), "rm".to_owned(), "-f".to_owned()];
        args.extend(volumes);
        let _ = podman(&args);
    }
}
