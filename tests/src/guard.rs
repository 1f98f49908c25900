//! Helpers of the `roprof guard` tests (`tests/tests/guard.rs`,
//! `tests/tests/guard_kubernetes.rs`): the writer image, containers
//! labelled for a test's guard, a guard started and stopped as an
//! [`Agent`], and the checks of its JSON lines.

use std::time::{Duration, SystemTime};

use crate::{
    BUSYBOX_IMAGE, Finished, TEST_LABEL, agent::Agent, build_image, docker_ok, owner_label,
};

/// busybox with the directories the writers use (a write to a missing
/// directory fails with ENOENT, not EROFS), and `/locked`, which only uid
/// 1000 may enter (root without `CAP_DAC_OVERRIDE` gets `EACCES` there:
/// the image's own permissions).
pub const GUARD_IMAGE: &str = "roprof-test/guard:latest";

/// Builds [`GUARD_IMAGE`].
pub fn image() {
    build_image(
        GUARD_IMAGE,
        &format!(
            "FROM {BUSYBOX_IMAGE}\nRUN mkdir -p /srv /data && mkdir -m 700 /locked && chown 1000 /locked\n"
        ),
    );
}

/// A shell loop writing `path` every 0.2 s, its failures silenced.
#[must_use]
pub fn writes(path: &str) -> String {
    format!("while true; do echo x > {path} 2>/dev/null; sleep 0.2; done")
}

/// `docker run -d [--read-only] IMAGE sh -c SCRIPT`, labelled for cleanup
/// and for this test's guard filter; its id.
#[must_use]
pub fn run(name: &str, read_only: bool, script: &str) -> String {
    let ro: &[&str] = if read_only { &["--read-only"] } else { &[] };
    run_with(name, ro, script)
}

/// `docker run -d FLAGS IMAGE sh -c SCRIPT` (`FLAGS` may hold `--rm` in
/// place of `-d`'s detaching: then it waits), labelled as [`run`]'s; its
/// output.
#[expect(
    clippy::must_use_candidate,
    reason = "a `--rm` run is waited for its effect"
)]
pub fn run_with(name: &str, flags: &[&str], script: &str) -> String {
    let owner = owner_label();
    let detach = if flags.contains(&"--rm") {
        None
    } else {
        Some("-d")
    };
    let mut args = vec!["run"];
    args.extend(detach);
    args.extend(["--label", TEST_LABEL, "--label", &owner, "--name", name]);
    args.extend_from_slice(flags);
    args.extend([GUARD_IMAGE, "sh", "-c", script]);
    docker_ok(args).trim().to_owned()
}

/// A guard of this test's Docker containers (`--label` owner), ready; and
/// when it became so.
#[must_use]
pub fn start_guard(extra: &[&str]) -> (Agent, SystemTime) {
    let owner = owner_label();
    let mut args = vec!["guard", "--label", owner.as_str()];
    args.extend_from_slice(extra);
    start_guard_with(&args, &[])
}

/// `roprof ARGS` (a guard), ready; and when it became so.
#[must_use]
pub fn start_guard_with(args: &[&str], env: &[(&str, &str)]) -> (Agent, SystemTime) {
    let g = Agent::start(args, env, "roprof: guard: watching", 1);
    (g, SystemTime::now())
}

/// SIGINT, exit 0, programs unloaded, and the JSON lines it wrote.
#[must_use]
pub fn stop_guard(g: Agent) -> (Vec<serde_json::Value>, Finished) {
    stop_guard_with(g, libc::SIGINT)
}

/// `sig`, exit 0, programs unloaded, and the JSON lines it wrote.
#[must_use]
pub fn stop_guard_with(g: Agent, sig: i32) -> (Vec<serde_json::Value>, Finished) {
    let f = g.stop(sig, Duration::from_mins(1));
    let lines = f
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("expected a JSON line on stdout ({e}): {l}"))
        })
        .collect();
    (lines, f)
}

/// The lines of `kind` (`finding`, `count`) about `path` of container `id`.
#[must_use]
pub fn of<'a>(
    lines: &'a [serde_json::Value],
    kind: &str,
    id: &str,
    path: &str,
) -> Vec<&'a serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["kind"] == kind && l["container"]["id"] == id && l["path"] == path)
        .collect()
}

/// The one `finding` of `path` in container `id`: a create failing with
/// `EROFS` by `sh` of `image`, fixed by a tmpfs over `dir` (docker flag,
/// and a Kubernetes volume with its volumeMount).
#[expect(
    clippy::must_use_candidate,
    reason = "an assertion first; the finding is there for more checks"
)]
pub fn assert_finding<'a>(
    lines: &'a [serde_json::Value],
    id: &str,
    path: &str,
    (dir, image): (&str, &str),
    stderr: &str,
) -> &'a serde_json::Value {
    let found = of(lines, "finding", id, path);
    assert_eq!(
        found.len(),
        1,
        "expected one finding for {path} of container {id}; lines: {lines:#?}\nstderr:\n{stderr}"
    );
    let f = found[0];
    assert_eq!(f["schema_version"], 1, "{f}");
    assert_eq!(f["operation"], "create", "echo > FILE creates: {f}");
    assert_eq!(f["errno"], "EROFS", "{f}");
    assert_eq!(f["process"]["comm"], "sh", "{f}");
    assert!(f["process"]["pid"].as_u64().is_some_and(|p| p > 0), "{f}");
    assert_eq!(f["count"], 1, "{f}");
    assert_eq!(f["container"]["image"], image, "{f}");
    let docker = f["fix"]["docker"].as_str().unwrap_or_else(|| {
        panic!("expected a docker flag in the fix: {f}");
    });
    assert!(
        docker.starts_with("--tmpfs") && docker.contains(&format!("{dir}:")),
        "expected a --tmpfs over {dir}: {docker}"
    );
    let vm = &f["fix"]["kubernetes"]["volumeMount"];
    assert_eq!(vm["mountPath"], dir, "the volumeMount covers {dir}: {f}");
    assert_eq!(
        f["fix"]["kubernetes"]["volume"]["name"], vm["name"],
        "the volume is the volumeMount's: {f}"
    );
    f
}
