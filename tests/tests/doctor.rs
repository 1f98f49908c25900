//! `roprof doctor` on this host: it passes here, and when one thing is
//! taken away (the engine socket, the BTF file, the cgroup v2 mount, the
//! capabilities) it fails naming that check and its remedy — the same
//! remedy `roprof profile` prints when it meets the same problem, before it
//! creates anything.

use std::process::{Command, Stdio};

use roprof_tests::{
    ContainerGuard, WRITER_IMAGE, owner, require_privileged, roprof, roprof_bin, roprof_containers,
};

/// Every check `roprof doctor` prints on a host that can profile (Podman
/// and containerd only appear where their sockets exist).
const CHECKS: &[&str] = &[
    "kernel",
    "kernel BTF",
    "cgroup v2",
    "privileges",
    "lockdown",
    "BPF smoke test",
    "Docker engine",
    "memory",
];

/// (exit code, stdout, stderr) of `sh -c SCRIPT` with `$ROPROF` set to the
/// binary under test, in a private mount namespace (`unshare -m`: mounts
/// made there vanish with it and are never seen by the host).
fn in_private_mounts(script: &str) -> (i32, String, String) {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("ROPROF", roprof_bin())
        .env("ROPROF_TEST_LABEL", owner())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("expected `unshare` (util-linux) to run: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The checklist line of `title` (`✓ kernel BTF …`), panicking with the
/// whole output when it is absent.
fn line<'a>(stdout: &'a str, title: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| {
            l.get(l.find(' ').map_or(0, |i| i + 1)..)
                .is_some_and(|rest| rest.starts_with(&format!("{title:<15} ")))
        })
        .unwrap_or_else(|| panic!("expected a `{title}` line in the doctor's output:\n{stdout}"))
}

/// The `  remedy: …` line right after the line of `title`.
fn remedy_after<'a>(stdout: &'a str, title: &str) -> &'a str {
    let l = line(stdout, title);
    let mut lines = stdout.lines().skip_while(|x| *x != l);
    lines.next();
    lines
        .next()
        .filter(|r| r.starts_with("  remedy: "))
        .unwrap_or_else(|| panic!("expected a remedy under `{l}`:\n{stdout}"))
}

/// Asserts the doctor failed on `title` first, with a remedy; returns the
/// remedy line.
fn assert_blocker(code: i32, stdout: &str, stderr: &str, title: &str) -> String {
    assert_eq!(
        code, 1,
        "expected roprof doctor to exit 1 naming {title}; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        line(stdout, title).starts_with("✗ "),
        "expected the {title} check to fail:\n{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!("roprof cannot profile on this host; first blocker: {title}"),
        "expected {title} to be named as the first blocker:\n{stdout}"
    );
    remedy_after(stdout, title).to_owned()
}

#[test]
fn doctor_passes_on_this_host() {
    require_privileged();
    let (code, out, err) = roprof(["doctor"]);
    assert_eq!(
        code, 0,
        "expected doctor to pass here; stdout:\n{out}\nstderr:\n{err}"
    );
    for title in CHECKS {
        let l = line(&out, title);
        assert!(
            l.starts_with("✓ ") || l.starts_with("! "),
            "expected `{title}` to pass (or warn), got: {l}\n{out}"
        );
    }
    assert!(
        line(&out, "BPF smoke test").contains("attached it to the raw tracepoint sys_exit"),
        "the smoke test really attaches:\n{out}"
    );
    assert!(
        line(&out, "Docker engine").contains("API 1."),
        "the engine line names the API version:\n{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some("roprof can profile on this host"),
        "{out}"
    );
    assert!(!out.contains('✗'), "no check fails here:\n{out}");
}

#[test]
fn a_bad_docker_host_is_named_with_the_same_remedy_as_profile() {
    require_privileged();
    let _g = ContainerGuard::new();
    let out = Command::new(roprof_bin())
        .arg("doctor")
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .stdin(Stdio::null())
        .output()
        .expect("roprof runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let remedy = assert_blocker(
        out.status.code().unwrap_or(-1),
        &stdout,
        &stderr,
        "Docker engine",
    );
    assert!(
        line(&stdout, "Docker engine").contains("unix:///nonexistent.sock"),
        "the engine line names the socket tried:\n{stdout}"
    );
    assert!(remedy.contains("DOCKER_HOST"), "{remedy}");
    // Every check before the engine still passes: only the engine is named.
    for title in &CHECKS[..6] {
        assert!(!line(&stdout, title).starts_with("✗ "), "{stdout}");
    }

    let out = Command::new(roprof_bin())
        .args(["profile", "--quiet", "--duration", "2s", WRITER_IMAGE])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .env("ROPROF_TEST_LABEL", owner())
        .stdin(Stdio::null())
        .output()
        .expect("roprof runs");
    let perr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "profile fails: {perr}");
    assert!(
        perr.lines().any(|l| l == remedy),
        "expected profile to print the doctor's remedy `{remedy}`; stderr:\n{perr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");

    let out = Command::new(roprof_bin())
        .args(["attach", "--quiet", "--duration", "2s", "some-container"])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .stdin(Stdio::null())
        .output()
        .expect("roprof runs");
    let aerr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "attach fails: {aerr}");
    assert!(
        aerr.lines().any(|l| l == remedy),
        "expected attach to print the doctor's remedy `{remedy}`; stderr:\n{aerr}"
    );
}

#[test]
fn hidden_btf_is_named_and_profile_stops_before_creating_anything() {
    require_privileged();
    let _g = ContainerGuard::new();
    let (code, out, err) =
        in_private_mounts("mount -t tmpfs none /sys/kernel/btf && exec \"$ROPROF\" doctor");
    let remedy = assert_blocker(code, &out, &err, "kernel BTF");
    assert!(
        line(&out, "kernel BTF").contains("/sys/kernel/btf/vmlinux"),
        "names the file:\n{out}"
    );
    assert!(remedy.contains("CONFIG_DEBUG_INFO_BTF"), "{remedy}");

    let before = roprof_containers();
    let (code, pout, perr) = in_private_mounts(&format!(
        "mount -t tmpfs none /sys/kernel/btf && exec \"$ROPROF\" profile --quiet --duration 2s {WRITER_IMAGE}"
    ));
    assert_eq!(code, 1, "profile fails; stderr:\n{perr}");
    assert!(pout.is_empty(), "nothing on stdout: {pout}");
    assert!(
        perr.contains("kernel BTF: cannot read /sys/kernel/btf/vmlinux"),
        "profile names the check and the file; stderr:\n{perr}"
    );
    assert!(
        perr.lines().any(|l| l == remedy),
        "expected profile to print the doctor's remedy `{remedy}`; stderr:\n{perr}"
    );
    assert_eq!(
        roprof_containers(),
        before,
        "profile stops before creating a container"
    );
}

#[test]
fn hidden_cgroup_v2_is_named() {
    require_privileged();
    // The shell first joins the root v2 cgroup (a no-op where it already is,
    // as on this project's CI), so the doctor cannot fall back on being in
    // a container's v2 cgroup; then the hierarchy is hidden.
    let (code, out, err) = in_private_mounts(
        "for d in /sys/fs/cgroup/unified /sys/fs/cgroup; do \
           [ -f $d/cgroup.procs ] && echo $$ > $d/cgroup.procs 2>/dev/null && break; \
         done; \
         mount -t tmpfs none /sys/fs/cgroup && exec \"$ROPROF\" doctor",
    );
    let remedy = assert_blocker(code, &out, &err, "cgroup v2");
    assert!(
        line(&out, "cgroup v2").contains("/sys/fs/cgroup"),
        "names the mount:\n{out}"
    );
    assert!(remedy.contains("cgroup2"), "{remedy}");
    assert!(
        line(&out, "kernel BTF").starts_with("✓ "),
        "only cgroup is named:\n{out}"
    );
}

#[test]
fn root_without_capabilities_is_named() {
    require_privileged();
    // An empty bounding set: root keeps uid 0 but gets no capability at exec.
    let out = Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all"])
        .arg(roprof_bin())
        .arg("doctor")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("expected `setpriv` (util-linux) to run: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let remedy = assert_blocker(
        out.status.code().unwrap_or(-1),
        &stdout,
        &stderr,
        "privileges",
    );
    assert!(
        line(&stdout, "privileges").contains("root without CAP_BPF, CAP_PERFMON"),
        "{stdout}"
    );
    assert!(remedy.contains("CAP_BPF"), "{remedy}");
    assert!(
        line(&stdout, "BPF smoke test").starts_with("✗ "),
        "the real load is refused too:\n{stdout}"
    );
}
