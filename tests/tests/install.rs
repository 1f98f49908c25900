//! What `cargo xtask dist` ships (the FROM-scratch image `roprof:latest`
//! with the static binary, completions, man pages), used the way the README's
//! Install section says: roprof profiles from inside its container and gets
//! the same answer as the host binary; the flags the README calls necessary
//! are necessary.

use std::path::{Path, PathBuf};

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, TEST_LABEL, WRITER_IMAGE, docker, docker_ok, owner, owner_label,
    path_entry, profile_json, require_privileged, roprof_containers, run_detached, unique_name,
};

/// The image under test (`ROPROF_IMAGE`, else what `cargo xtask dist` tags).
fn image() -> String {
    std::env::var("ROPROF_IMAGE").unwrap_or_else(|_| "roprof:latest".into())
}

/// Fails, saying how to build it, unless the image exists.
fn require_image() -> String {
    let image = image();
    let out = docker(["image", "inspect", "--format", "{{.Id}}", &image]);
    assert!(
        out.status.success(),
        "expected the image {image} to exist: build it with `cargo xtask dist` \
         (`cargo xtask test` does so before these tests)"
    );
    image
}

/// `target/dist` of this workspace (or of `CARGO_TARGET_DIR`).
fn dist_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("dist")
}

/// What the README says `profile` needs in a container, besides the image
/// and its arguments: the engine's socket, and BPF rights. `--cap-add
/// SYS_ADMIN` rather than `--privileged`: engine 20.10 knows no `CAP_BPF`,
/// and where dockerd itself lacks capabilities (as on this project's CI
/// machine) `--privileged` cannot start at all. No `--pid=host`: the kernel
/// reports host pids and `profile` never looks one up in /proc.
const CONTAINER_FLAGS: &[&str] = &[
    "--cap-add",
    "SYS_ADMIN",
    "-v",
    "/var/run/docker.sock:/var/run/docker.sock",
];

/// `docker run --rm` of the image with `flags` and roprof `args`, labelled
/// as this test process's and passing that mark on to the containers
/// roprof creates (so [`ContainerGuard`] removes them); returns (exit code,
/// stdout, stderr).
fn run_image(flags: &[&str], args: &[&str]) -> (i32, String, String) {
    let name = unique_name("roprof-in-docker");
    let (label, mark) = (owner_label(), format!("ROPROF_TEST_LABEL={}", owner()));
    let mut all: Vec<&str> = vec![
        "run", "--rm", "--name", &name, "--label", TEST_LABEL, "--label", &label, "-e", &mark,
    ];
    all.extend_from_slice(flags);
    let image = require_image();
    all.push(&image);
    all.extend_from_slice(args);
    let out = docker(&all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The plan without what legitimately differs between two runs (sizes are
/// a peak plus headroom; evidence lists processes and counts).
fn plan_of(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["plan"]["mounts"]
        .as_array()
        .unwrap_or_else(|| panic!("expected plan.mounts in the report: {report}"))
        .iter()
        .map(|m| {
            let mut options = m["options"].clone();
            if let Some(o) = options.as_object_mut() {
                o.remove("size_bytes");
            }
            serde_json::json!({
                "target": m["target"],
                "kind": m["kind"],
                "options": options,
                "rule": m["evidence"]["rule"],
            })
        })
        .collect()
}

/// The observed paths, sorted.
fn paths_of(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["paths"]
        .as_array()
        .unwrap_or_else(|| panic!("expected paths in the report: {report}"))
        .iter()
        .map(|p| p["path"].to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn the_image_is_the_static_binary_alone() {
    require_privileged();
    let image = require_image();
    let layers = docker_ok([
        "image",
        "inspect",
        "--format",
        "{{len .RootFS.Layers}} {{.Size}} {{json .Config.Entrypoint}}",
        &image,
    ]);
    let mut words = layers.split_whitespace();
    assert_eq!(
        words.next(),
        Some("1"),
        "one layer (FROM scratch + the binary): {layers}"
    );
    let size: u64 = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    assert!(
        size > 1_000_000 && size < 40_000_000,
        "expected a few MiB (the binary alone), got {size} bytes"
    );
    assert_eq!(words.next(), Some(r#"["/roprof"]"#), "{layers}");
    let (code, out, err) = run_image(&[], &["--version"]);
    assert_eq!(code, 0, "roprof --version in the image: {err}");
    assert!(out.starts_with("roprof "), "{out}");

    let dist = dist_dir();
    let bin = dist.join("roprof");
    let file = std::process::Command::new("file")
        .arg(&bin)
        .output()
        .unwrap_or_else(|e| panic!("expected `file` to run on {}: {e}", bin.display()));
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "expected {} to be static: {file}",
        bin.display()
    );
    assert!(
        file.contains("stripped") && !file.contains("not stripped"),
        "{file}"
    );
    for f in [
        "completions/roprof.bash",
        "completions/_roprof",
        "completions/roprof.fish",
        "man/roprof.1",
        "man/roprof-doctor.1",
    ] {
        assert!(
            dist.join(f).is_file(),
            "expected {} from cargo xtask dist",
            dist.join(f).display()
        );
    }
    let bash = std::process::Command::new("bash")
        .arg("-n")
        .arg(dist.join("completions/roprof.bash"))
        .status()
        .expect("bash runs");
    assert!(bash.success(), "the bash completion script parses");
}

#[test]
fn doctor_passes_in_the_container_and_names_what_is_missing() {
    require_privileged();
    let _g = ContainerGuard::new();
    let (code, out, err) = run_image(CONTAINER_FLAGS, &["doctor"]);
    assert_eq!(
        code, 0,
        "expected doctor to pass with {CONTAINER_FLAGS:?}; stdout:\n{out}\nstderr:\n{err}"
    );

    // Without the capability: Docker's defaults lack CAP_BPF, CAP_PERFMON
    // and CAP_SYS_ADMIN (and its seccomp profile blocks bpf()).
    let (code, out, _) = run_image(
        &["-v", "/var/run/docker.sock:/var/run/docker.sock"],
        &["doctor"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.ends_with("first blocker: privileges\n"),
        "expected privileges to be the blocker without --cap-add SYS_ADMIN:\n{out}"
    );

    // Without the socket: the engine.
    let (code, out, _) = run_image(&["--cap-add", "SYS_ADMIN"], &["doctor"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.ends_with("first blocker: Docker engine\n"),
        "expected the engine to be the blocker without the socket:\n{out}"
    );
}

#[test]
fn the_image_profiles_like_the_host_binary() {
    require_privileged();
    let _g = ContainerGuard::new();
    let host = profile_json(&["--duration", "5s", WRITER_IMAGE]);

    let out_dir = std::env::temp_dir().join(unique_name("roprof-image-out"));
    std::fs::create_dir_all(&out_dir).expect("temp dir");
    let bind = format!("{}:/out", out_dir.display());
    let mut flags = CONTAINER_FLAGS.to_vec();
    flags.extend_from_slice(&["-v", &bind]);
    let (code, stdout, stderr) = run_image(
        &flags,
        &[
            "profile",
            "--quiet",
            "--format",
            "json",
            "-o",
            "/out",
            "--duration",
            "5s",
            WRITER_IMAGE,
        ],
    );
    assert_eq!(
        code, 0,
        "expected the containerised profile to exit 0; stderr:\n{stderr}"
    );
    let inside: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("expected a JSON report on stdout ({e}):\n{stdout}"));
    let written = std::fs::read_to_string(out_dir.join("report.json"))
        .unwrap_or_else(|e| panic!("expected -o /out to land in {} ({e})", out_dir.display()));
    let written: serde_json::Value = serde_json::from_str(&written).expect("report.json parses");
    let _ = std::fs::remove_dir_all(&out_dir);

    assert!(
        !plan_of(&host).is_empty(),
        "the writer needs mounts: {host}"
    );
    assert_eq!(
        plan_of(&inside),
        plan_of(&host),
        "the image's plan differs from the host binary's"
    );
    assert_eq!(paths_of(&inside), paths_of(&host), "observed paths differ");
    assert_eq!(
        plan_of(&written),
        plan_of(&inside),
        "-o report.json matches stdout"
    );
    assert_eq!(roprof_containers(), 0, "no container left behind");
}

#[test]
fn attach_in_the_container_needs_the_host_pids_and_cgroups() {
    require_privileged();
    let _g = ContainerGuard::new();
    let target = unique_name("attach-target");
    run_detached(
        &target,
        BUSYBOX_IMAGE,
        "mkdir -p /srv/spool; while true; do echo x > /srv/spool/tick; sleep 0.2; done",
    );
    // attach looks up the container's host pid in /proc (--pid=host) and
    // its cgroup in the host's hierarchy (the bind of /sys/fs/cgroup; on a
    // cgroup v2 host also --cgroupns=host).
    let mut flags = CONTAINER_FLAGS.to_vec();
    flags.extend_from_slice(&["--pid=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro"]);
    let args = [
        "attach",
        "--quiet",
        "--format",
        "json",
        "--duration",
        "3s",
        &target,
    ];
    let (code, stdout, stderr) = run_image(&flags, &args);
    assert_eq!(
        code, 0,
        "expected attach in the container to exit 0; stderr:\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("expected a JSON report on stdout ({e}):\n{stdout}"));
    assert!(
        path_entry(&report, "/srv/spool/tick").is_some(),
        "expected the running container's writes from the attach on: {}",
        report["paths"]
    );

    let (code, _, stderr) = run_image(CONTAINER_FLAGS, &args);
    assert_eq!(
        code, 1,
        "without --pid=host attach cannot find the container's process"
    );
    assert!(
        stderr.contains(&format!("cannot find the cgroup of container {target}")),
        "names the container: {stderr}"
    );
}
