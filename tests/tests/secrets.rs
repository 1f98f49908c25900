//! Secrets given to the profiled container (issue 23): values passed with
//! `-e NAME=value`, with `-e NAME` from roprof's environment, and in an
//! `--env-file` never reach stdout, stderr or any file under `-o`; the
//! rendered docker line and compose file still start the image healthy and
//! read-only once the variables are exported; `--reveal-env` writes the
//! values into 0600 files; reports saved before the change still render.
//!
//! The test image checks its environment: it is given the SHA-256 of each
//! expected value as arguments and exits 3 unless every variable holds
//! exactly that value, so "healthy" proves the values reached it.
//!
//! Containers are recognised by their image ([`ImageGuard`]), not by the
//! shared test label, so these tests neither remove nor are disturbed by the
//! containers of other suites running on the same engine.
//!
//! Privileged: real BPF, a real Docker engine, `docker-compose`; run with
//! `cargo xtask test`.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use roprof_tests::{
    BUSYBOX_IMAGE, build_image, docker, docker_ok, require_privileged, roprof_bin, unique_name,
};

/// The environment-checking image (see the module docs).
const IMAGE: &str = "roprof-test/envcheck:latest";

/// Its entrypoint: `NAME=sha256` arguments, then an HTTP server on a tmpfs
/// the plan has to propose (`/run`), checked by the image's HEALTHCHECK.
const CHECK_SCRIPT: &str = r#"for want in "$@"; do
  name="${want%%=*}"; hash="${want#*=}"
  got="$(eval "printf %s \"\${$name-}\"" | sha256sum)"
  if [ "${got%% *}" != "$hash" ]; then
    echo "envcheck: $name does not hold the expected value" >&2
    exit 3
  fi
done
mkdir -p /run/envcheck
echo ok > /run/envcheck/index.html
exec httpd -f -p 127.0.0.1:8080 -h /run/envcheck"#;

fn build_envcheck_image() {
    let entrypoint =
        serde_json::to_string(&["sh", "-c", CHECK_SCRIPT, "envcheck"]).expect("entrypoint as JSON");
    build_image(
        IMAGE,
        &format!(
            "FROM {BUSYBOX_IMAGE}\n\
             ENTRYPOINT {entrypoint}\n\
             STOPSIGNAL SIGKILL\n\
             HEALTHCHECK --interval=1s --timeout=3s --retries=3 \
             CMD [\"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/\"]\n"
        ),
    );
}

/// Removes every container of [`IMAGE`] (and the volumes it mounted) when
/// created and when dropped, so a failed test leaves nothing running.
#[must_use = "the containers are removed when the guard is dropped"]
struct ImageGuard(());

impl ImageGuard {
    fn new() -> Self {
        remove_image_containers();
        Self(())
    }
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        remove_image_containers();
    }
}

fn remove_image_containers() {
    let ids = docker(["ps", "-aq", "--filter", &format!("ancestor={IMAGE}")]);
    for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
        remove_with_volumes(id);
    }
}

/// The three secrets, each passed a different way, and where they live.
struct Setup {
    dir: PathBuf,
    /// `-e DB_PASSWORD=…`
    db: String,
    /// `-e PASSED_TOKEN`, from roprof's environment.
    passed: String,
    /// `FILE_SECRET=…` in `app.env`.
    file: String,
}

impl Setup {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("roprof-secrets"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let id = unique_name("v");
        let s = Setup {
            db: format!("db-hunter2-{id}"),
            passed: format!("passed-tok-{id}"),
            file: format!("file-s3cret-{id}"),
            dir,
        };
        let env_file = s.dir.join("app.env");
        std::fs::write(
            &env_file,
            format!(
                "# read as docker run --env-file does\nFILE_SECRET={}\n",
                s.file
            ),
        )
        .expect("env file");
        std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod env file");
        s
    }

    fn values(&self) -> [(&'static str, &str); 3] {
        [
            ("DB_PASSWORD", &self.db),
            ("PASSED_TOKEN", &self.passed),
            ("FILE_SECRET", &self.file),
        ]
    }

    /// `-e … --env-file … IMAGE NAME=sha256…`: the env file relative to the
    /// working directory, as a user would give it.
    fn run_args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "--stop-timeout",
            "1",
            "-e",
            &format!("DB_PASSWORD={}", self.db),
            "-e",
            "PASSED_TOKEN",
            "--env-file",
            "app.env",
            IMAGE,
        ]
        .map(str::to_owned)
        .to_vec();
        a.extend(
            self.values()
                .iter()
                .map(|(n, v)| format!("{n}={}", sha256(v))),
        );
        a
    }

    /// Panics naming `what` when `text` holds any of the values.
    fn assert_clean(&self, what: &str, text: &str) {
        for (name, value) in self.values() {
            assert!(
                !text.contains(value),
                "expected the value of {name} nowhere in {what}, found it:\n{text}"
            );
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sha256(s: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(s.as_bytes())
        .expect("written");
    let out = child.wait_with_output().expect("sha256sum finishes");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a hash")
        .to_owned()
}

/// `roprof ARGS` in `dir`, with `PASSED_TOKEN` in its environment; returns
/// (exit code, stdout, stderr).
fn roprof_in(dir: &Path, s: &Setup, args: &[String]) -> (i32, String, String) {
    let out = Command::new(roprof_bin())
        .args(args)
        .current_dir(dir)
        .env("PASSED_TOKEN", &s.passed)
        .env_remove("DB_PASSWORD")
        .env_remove("FILE_SECRET")
        .stdin(Stdio::null())
        .output()
        .expect("roprof runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// Every file under `dir`, with its content and mode.
fn files_under(dir: &Path) -> Vec<(PathBuf, String, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("output dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            let bytes = std::fs::read(&p).expect("readable");
            let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
            out.push((p, String::from_utf8_lossy(&bytes).into_owned(), mode));
        }
    }
    out
}

/// The `docker run` line of a docker.sh, with `extra` words after `run`.
fn docker_line(script: &str, extra: &str) -> String {
    let line = script
        .lines()
        .find(|l| l.starts_with("docker run "))
        .unwrap_or_else(|| panic!("expected a docker run line in:\n{script}"));
    line.replacen("docker run ", &format!("docker run {extra} "), 1)
}

/// Runs `line` with `bash -c`, with exactly `exported` added to a clean
/// environment (PATH kept); returns its output.
fn bash(line: &str, exported: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", line])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in exported {
        cmd.env(k, v);
    }
    cmd.output().expect("bash runs")
}

/// Removes a container and the named volumes it mounted.
fn remove_with_volumes(container: &str) {
    let vols = docker([
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}",
        container,
    ]);
    let _ = docker(["rm", "-f", "-v", container]);
    for v in String::from_utf8_lossy(&vols.stdout).split_whitespace() {
        let _ = docker(["volume", "rm", "-f", v]);
    }
}

/// Waits up to 30 s for `container` to be healthy; then asserts it runs with
/// a read-only root. Panics with its state and logs otherwise.
fn assert_healthy_read_only(what: &str, container: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut state = String::new();
    while Instant::now() < deadline {
        docker_ok([
            "inspect",
            "-f",
            "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.ExitCode}}",
            container,
        ])
        .trim()
        .clone_into(&mut state);
        if state.starts_with("running healthy") || state.starts_with("exited") {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let logs = docker(["logs", container]);
    assert!(
        state.starts_with("running healthy"),
        "expected {what} to start healthy; state `{state}`, logs:\n{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
    let ro = docker_ok(["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", container]);
    assert_eq!(ro.trim(), "true", "{what} runs with a read-only root");
}

/// Runs the docker line of `script` detached, with `exported`, and checks
/// it starts healthy and read-only.
fn docker_line_runs_healthy(what: &str, script: &str, exported: &[(&str, &str)]) {
    let name = unique_name("envcheck");
    let line = docker_line(script, &format!("-d --name {name}"));
    let out = bash(&line, exported);
    assert!(
        out.status.success(),
        "expected `{line}` to start a container: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = std::panic::catch_unwind(|| assert_healthy_read_only(what, &name));
    remove_with_volumes(&name);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// `docker-compose -p PROJECT -f FILE ARGS` with `exported`.
fn compose(project: &str, file: &Path, args: &[&str], exported: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("docker-compose");
    cmd.args(["--no-ansi", "-p", project, "-f"])
        .arg(file)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in exported {
        cmd.env(k, v);
    }
    let line = format!("{cmd:?}");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("expected {line} to run (apt-get install docker-compose): {e}"));
    assert!(
        out.status.success(),
        "expected {line} to succeed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Brings the compose file up with `exported`, checks the service starts
/// healthy and read-only, and takes it down (volumes included).
fn compose_runs_healthy(file: &Path, exported: &[(&str, &str)]) {
    let project = unique_name("roprofsecrets").replace('-', "");
    compose(&project, file, &["up", "-d"], exported);
    let result = std::panic::catch_unwind(|| {
        let id = compose(&project, file, &["ps", "-q", "app"], exported);
        assert_healthy_read_only("the compose service", id.trim());
    });
    let _ = std::panic::catch_unwind(|| {
        compose(&project, file, &["down", "-v", "-t", "1"], exported);
    });
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn env_values_reach_the_container_but_no_output() {
    require_privileged();
    let _g = ImageGuard::new();
    build_envcheck_image();
    let s = Setup::new();
    let out_dir = s.dir.join("out");

    // One run with everything: -o, JSON on stdout, and --verify, whose
    // read-only run fails (exit 3 in the image) unless it gets the values.
    let mut args = strings(&[
        "profile",
        "--quiet",
        "--duration",
        "4s",
        "--verify",
        "-o",
        "out",
        "--format",
        "json",
    ]);
    args.extend(s.run_args());
    let (code, stdout, stderr) = roprof_in(&s.dir, &s, &args);
    assert_eq!(
        code, 0,
        "expected profile --verify to pass (the verification run needs the values); stderr:\n{stderr}"
    );
    s.assert_clean("stdout (json)", &stdout);
    s.assert_clean("stderr", &stderr);
    let files = files_under(&out_dir);
    assert_every_format_written(&files);
    for (path, text, _) in &files {
        s.assert_clean(&path.display().to_string(), text);
    }
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON report");
    check_names_only_report(&report, &s);

    // The docker line and the compose file, run as their comment says:
    // with the variables exported.
    let exported = [
        ("DB_PASSWORD", s.db.as_str()),
        ("PASSED_TOKEN", s.passed.as_str()),
    ];
    check_docker_line(&s, &out_dir, &exported);
    compose_runs_healthy(&out_dir.join("compose.yaml"), &exported);

    // verify of the names-only report takes the values from the environment.
    let mut verify = strings(&["verify", "--quiet", "--duration", "4s", "--report"]);
    verify.push(out_dir.join("report.json").display().to_string());
    let out = Command::new(roprof_bin())
        .args(&verify)
        .env("DB_PASSWORD", &s.db)
        .env("PASSED_TOKEN", &s.passed)
        .stdin(Stdio::null())
        .output()
        .expect("roprof verify runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "verify with the variables exported must pass:\n{err}"
    );
    s.assert_clean("verify's stderr", &err);

    check_every_other_format(&s);
}

/// `run_options` of a default report: names, the marker, the env file; and
/// a plan that covers `/run`.
fn check_names_only_report(report: &serde_json::Value, s: &Setup) {
    let opts = &report["run_options"];
    assert_eq!(report["schema_version"], 2);
    assert_eq!(
        opts["env"],
        serde_json::json!([{ "name": "DB_PASSWORD" }, { "name": "PASSED_TOKEN" }]),
        "names only"
    );
    assert_eq!(opts["env_values"], "withheld");
    assert_eq!(
        opts["env_files"],
        serde_json::json!([s.dir.join("app.env").to_str().expect("UTF-8 temp path")]),
        "the env file by its absolute path"
    );
    assert!(
        report["plan"]["mounts"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["target"] == "/run")),
        "the plan covers /run: {}",
        report["plan"]
    );
}

/// docker.sh: pass-through form and one comment line; it runs healthy with
/// the variables exported, and the image refuses to start without them.
fn check_docker_line(s: &Setup, out_dir: &Path, exported: &[(&str, &str)]) {
    let script = std::fs::read_to_string(out_dir.join("docker.sh")).expect("docker.sh");
    assert!(
        script.contains("\n# roprof: export DB_PASSWORD PASSED_TOKEN before running this")
            && script.contains(" -e DB_PASSWORD -e PASSED_TOKEN ")
            && script.contains(&format!("--env-file {}", s.dir.join("app.env").display())),
        "pass-through form and one comment line:\n{script}"
    );
    docker_line_runs_healthy("the docker line", &script, exported);

    // Without the export the image refuses to start: the line carries no value.
    let name = unique_name("envcheck-noexport");
    let out = bash(&docker_line(&script, &format!("--name {name}")), &[]);
    remove_with_volumes(&name);
    assert_eq!(
        out.status.code(),
        Some(3),
        "without the exported variables the image must exit 3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `profile --format F` for every format but JSON (checked above): nothing
/// on stdout or stderr holds a value; the names are there.
fn check_every_other_format(s: &Setup) {
    for format in ["table", "docker", "compose", "k8s", "kustomize", "markdown"] {
        let mut args = strings(&["profile", "--quiet", "--duration", "2s", "--format", format]);
        args.extend(s.run_args());
        let (code, stdout, stderr) = roprof_in(&s.dir, s, &args);
        assert_eq!(code, 0, "profile --format {format}; stderr:\n{stderr}");
        s.assert_clean(&format!("stdout of --format {format}"), &stdout);
        s.assert_clean(&format!("stderr of --format {format}"), &stderr);
        assert!(
            stdout.contains("DB_PASSWORD") && stdout.contains("PASSED_TOKEN"),
            "--format {format} keeps the names:\n{stdout}"
        );
    }
}

#[test]
fn reveal_env_writes_values_into_0600_files() {
    require_privileged();
    let _g = ImageGuard::new();
    build_envcheck_image();
    let s = Setup::new();
    let out_dir = s.dir.join("out");
    // A file from an earlier run, world-readable: it must not stay so.
    std::fs::create_dir_all(&out_dir).expect("out dir");
    std::fs::write(out_dir.join("docker.sh"), "#!/bin/sh\n").expect("old docker.sh");
    std::fs::set_permissions(
        out_dir.join("docker.sh"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");

    let mut args = strings(&[
        "profile",
        "--quiet",
        "--duration",
        "3s",
        "--reveal-env",
        "-o",
        "out",
        "--format",
        "docker",
    ]);
    args.extend(s.run_args());
    let (code, stdout, stderr) = roprof_in(&s.dir, &s, &args);
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("-e 'DB_PASSWORD={}'", s.db))
            || stdout.contains(&format!("-e DB_PASSWORD={}", s.db)),
        "the revealed docker line carries the value:\n{stdout}"
    );
    let files = files_under(&out_dir);
    assert_every_format_written(&files);
    for (path, text, mode) in &files {
        assert_eq!(
            *mode,
            0o600,
            "expected {} to be 0600 with --reveal-env, it is {mode:o}",
            path.display()
        );
        assert!(
            !text.contains(&s.passed) && !text.contains(&s.file),
            "a passed-through value and the env file's content are never copied: {}",
            path.display()
        );
    }
    for f in [
        "docker.sh",
        "compose.yaml",
        "report.json",
        "table.txt",
        "report.md",
    ] {
        let (_, text, _) = files
            .iter()
            .find(|(p, _, _)| p.ends_with(f))
            .unwrap_or_else(|| panic!("{f} written"));
        assert!(text.contains(&s.db), "{f} holds the revealed value");
    }
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("report.json")).expect("report"),
    )
    .expect("JSON");
    assert_eq!(report["run_options"]["env_values"], "revealed");

    // The complete line needs only the passed-through variable exported.
    let script = std::fs::read_to_string(out_dir.join("docker.sh")).expect("docker.sh");
    assert!(
        script.contains("# roprof: export PASSED_TOKEN before running this"),
        "{script}"
    );
    docker_line_runs_healthy(
        "the revealed docker line",
        &script,
        &[("PASSED_TOKEN", s.passed.as_str())],
    );
}

#[test]
fn reports_saved_before_the_change_still_render_without_their_values() {
    // Frozen copies of the reports checked in before schema 2 (reports/
    // itself is regenerated with every change of the format).
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1-reports");
    let bin = roprof_bin();
    assert!(
        bin.is_file(),
        "expected the roprof binary at {} (cargo build --release -p profiler, or set ROPROF_BIN)",
        bin.display()
    );
    let dir = std::env::temp_dir().join(unique_name("roprof-v1"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let secret = format!("v1-secret-{}", unique_name("x"));
    for name in ["nginx", "redis"] {
        let text = std::fs::read_to_string(reports.join(format!("{name}.json")))
            .expect("frozen schema 1 report");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["schema_version"], 1, "{name}: saved before schema 2");
        v["run_options"]["env"] = serde_json::json!([format!("DB_PASSWORD={secret}")]);
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, v.to_string()).expect("written");
        for format in [
            "table",
            "docker",
            "compose",
            "k8s",
            "kustomize",
            "json",
            "markdown",
        ] {
            for reveal in [false, true] {
                let mut cmd = Command::new(&bin);
                cmd.args(["render", "--format", format]).arg(&path);
                if reveal {
                    cmd.arg("--reveal-env");
                }
                let out = cmd.output().expect("roprof render runs");
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "render {name} --format {format}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(stdout.contains("DB_PASSWORD"), "{format} keeps the name");
                let shown = stdout.contains(&secret);
                let k8s = format == "k8s" || format == "kustomize";
                assert_eq!(
                    shown,
                    reveal && !k8s,
                    "render {name} --format {format} (reveal: {reveal}) shows the value: {shown}\n{stdout}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The files `-o` writes, one per format.
const OUTPUT_FILES: &[&str] = &[
    "compose.yaml",
    "docker.sh",
    "helm-values.yaml",
    "k8s-restricted.yaml",
    "k8s.yaml",
    "kustomize.yaml",
    "report.json",
    "report.md",
    "table.txt",
];

fn assert_every_format_written(files: &[(PathBuf, String, u32)]) {
    let mut names: Vec<&str> = files
        .iter()
        .filter_map(|(p, _, _)| p.file_name()?.to_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, OUTPUT_FILES, "every format written under -o");
}
