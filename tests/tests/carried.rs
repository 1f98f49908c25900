//! Every output runs the run that was profiled, where it is pasted
//! (issue 30): the command survives YAML 1.1 readers (`--daemonize no`),
//! the Kubernetes outputs carry it, compose does not interpolate the
//! command's `$`, the kustomize patch targets the Deployment it is told to
//! (the README's steps, run as written), and a run interrupted before it
//! observed anything prints no plan in any format.
//!
//! The readers are the real ones: `docker-compose config` (`PyYAML`, YAML
//! 1.1, with compose's interpolation), `kubectl … --local -o json` (client
//! side, no apiserver: `label` shows the values' JSON types, `set image`
//! decodes them into the typed objects), `kubectl kustomize`, and the
//! kubelet emulation (`tests/KUBELET_EMULATION.md`) for what runs.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use proptest::prelude::*;
use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, REDIS_IMAGE, TempDir, docker, docker_ok, kubelet, pasted,
    require_privileged, roprof, roprof_bin, roprof_env, spawn_roprof,
};
use serde_json::Value as Json;

/// `roprof render REPORT --format F EXTRA…`, which must succeed.
fn render(report: &Path, format: &str, extra: &[&str]) -> String {
    let out = Command::new(roprof_bin())
        .args(["render", "--format", format])
        .args(extra)
        .arg(report)
        .output()
        .expect("roprof render runs");
    assert!(
        out.status.success(),
        "roprof render --format {format} {}: {}",
        report.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("expected {cmd:?} to run: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kubectl label --local -f FILE -o json`: kubectl's own YAML reading
/// (YAML 1.1), the values with the JSON types it gave them.
fn kubectl_json(file: &Path) -> Result<Json, String> {
    let (ok, out, err) = run(Command::new("kubectl")
        .args(["label", "--local", "-o", "json", "-f"])
        .arg(file)
        .arg("roprof-check=1"));
    if !ok {
        return Err(format!("kubectl label --local: {err}"));
    }
    serde_json::from_str(&out).map_err(|e| format!("kubectl printed no JSON ({e}): {out}"))
}

/// `kubectl set image --local`: decodes the file into the typed objects,
/// which refuses a boolean or a number where a string belongs.
fn kubectl_typed(file: &Path, container: &str) -> Result<(), String> {
    let (ok, _, err) = run(Command::new("kubectl")
        .args(["set", "image", "--local", "-o", "json", "-f"])
        .arg(file)
        .arg(format!("{container}={REDIS_IMAGE}")));
    if ok {
        Ok(())
    } else {
        Err(format!("kubectl set image --local: {err}"))
    }
}

/// `docker-compose -f FILE config`: the file as compose reads it
/// (interpolated), printed back as YAML and read by `PyYAML`, compose's
/// own YAML library (another reader would retype what it prints plain).
fn compose_config(file: &Path) -> Result<Json, String> {
    let (ok, out, err) = run(Command::new("docker-compose")
        .arg("-f")
        .arg(file)
        .arg("config")
        .env_remove("X"));
    if !ok {
        return Err(format!("docker-compose config refused the file: {err}"));
    }
    if err.contains("variable is not set") {
        return Err(format!("docker-compose interpolated the file: {err}"));
    }
    let yaml = TempFile(file.with_extension("config.yaml"));
    std::fs::write(&yaml.0, &out).map_err(|e| e.to_string())?;
    let (ok, json, err) = run(Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(&yaml.0));
    if !ok {
        return Err(format!(
            "PyYAML cannot read the config output: {err}\n{out}"
        ));
    }
    serde_json::from_str(&json).map_err(|e| format!("no JSON ({e}): {json}"))
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn strings_json(v: &Json, what: &str) -> Result<Option<Vec<String>>, String> {
    match v {
        Json::Null => Ok(None),
        Json::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what} holds {x}, not a string"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        other => Err(format!("{what} is {other}")),
    }
}

/// What Docker runs: `--entrypoint` (if any) and the words after the image.
#[derive(Clone, Debug, PartialEq)]
struct Profiled {
    entrypoint: Option<String>,
    command: Vec<String>,
    workdir: Option<String>,
}

impl Profiled {
    /// Kubernetes' `command` and `args` for it.
    fn k8s(&self) -> (Option<Vec<String>>, Option<Vec<String>>) {
        let words = (!self.command.is_empty()).then(|| self.command.clone());
        match &self.entrypoint {
            Some(e) => (Some(vec![e.clone()]), words),
            None => (None, words),
        }
    }
}

/// The kubelet reads `$$` in `command`/`args` as `$`.
fn kube_unescape(v: Option<Vec<String>>) -> Option<Vec<String>> {
    v.map(|w| w.into_iter().map(|s| s.replace("$$", "$")).collect())
}

/// Compose reads `$$` as `$` (and `config` prints it escaped again).
fn compose_unescape(v: Option<Vec<String>>) -> Option<Vec<String>> {
    v.map(|w| w.into_iter().map(|s| s.replace("$$", "$")).collect())
}

/// A report (the redis one kept under `reports/`) with `p` as its run.
fn report_with(dir: &TempDir, p: &Profiled) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/redis/report.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("expected the saved report {}: {e}", path.display()));
    let mut v: Json = serde_json::from_str(&text).expect("report.json is JSON");
    v["run_options"]["command"] = serde_json::json!(p.command);
    v["run_options"]["entrypoint"] = serde_json::json!(p.entrypoint);
    v["run_options"]["workdir"] = serde_json::json!(p.workdir);
    dir.write("report.json", &v.to_string())
}

/// Renders `p` in every YAML format and reads each back with its reader.
fn read_back(p: &Profiled) -> Result<(), String> {
    let dir = TempDir::new("carried");
    let report = report_with(&dir, p);
    let (want_cmd, want_args) = p.k8s();

    let compose = dir.write("compose.yaml", &render(&report, "compose", &[]));
    let c = compose_config(&compose)?;
    let svc = &c["services"]["app"];
    let got = (
        compose_unescape(strings_json(&svc["entrypoint"], "entrypoint")?),
        compose_unescape(strings_json(&svc["command"], "command")?),
        svc["working_dir"].as_str().map(|w| w.replace("$$", "$")),
    );
    let want = (
        p.entrypoint.clone().map(|e| vec![e]),
        (!p.command.is_empty()).then(|| p.command.clone()),
        p.workdir.clone(),
    );
    if got != want {
        return Err(format!(
            "compose reads {got:?}, profiled {want:?}:\n{}",
            dir.read("compose.yaml")
        ));
    }

    for format in ["k8s", "k8s-restricted"] {
        let file = dir.write(&format!("{format}.yaml"), &render(&report, format, &[]));
        kubectl_typed(&file, "redis")?;
        let d = kubectl_json(&file)?;
        let ctr = &d["spec"]["template"]["spec"]["containers"][0];
        let got = (
            kube_unescape(strings_json(&ctr["command"], "command")?),
            kube_unescape(strings_json(&ctr["args"], "args")?),
            ctr["workingDir"].as_str().map(str::to_owned),
        );
        let want = (want_cmd.clone(), want_args.clone(), p.workdir.clone());
        if got != want {
            return Err(format!(
                "kubectl reads {format} as {got:?}, profiled {want:?}"
            ));
        }
    }

    // The patch on a Deployment of the same names, built by kustomize.
    dir.write(
        "deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: redis\nspec:\n  \
             selector:\n    matchLabels: {{app: redis}}\n  template:\n    metadata:\n      \
             labels: {{app: redis}}\n    spec:\n      containers:\n      - name: redis\n        \
             image: {REDIS_IMAGE}\n"
        ),
    );
    dir.write("patch.yaml", &render(&report, "kustomize", &[]));
    dir.write(
        "kustomization.yaml",
        "resources:\n- deployment.yaml\npatches:\n- path: patch.yaml\n",
    );
    let (ok, built, err) = run(Command::new("kubectl").arg("kustomize").arg(&dir.0));
    if !ok {
        return Err(format!("kubectl kustomize: {err}"));
    }
    let built = dir.write("built.yaml", &built);
    kubectl_typed(&built, "redis")?;
    let d = kubectl_json(&built)?;
    let ctr = &d["spec"]["template"]["spec"]["containers"][0];
    let got = (
        kube_unescape(strings_json(&ctr["command"], "command")?),
        kube_unescape(strings_json(&ctr["args"], "args")?),
    );
    if got != (want_cmd, want_args) {
        return Err(format!("kustomize builds {got:?} for {p:?}"));
    }
    Ok(())
}

/// Words that trip YAML 1.1 readers, compose's interpolation and the
/// kubelet's `$(VAR)`, mixed with printable text.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "no",
            "yes",
            "on",
            "off",
            "y",
            "~",
            "null",
            "6380",
            "0755",
            "1e3",
            "2001-12-14",
            "12:30:00",
            "--daemonize",
            "$X",
            "$$",
            "${HOME}",
            "$(HOME)",
            "a: b",
            "#x",
            "'",
            "\"",
            "\\",
            " ",
            "*a",
            "&a",
            "!t",
            "%",
            "@",
            "|",
            ">",
            "ü",
            "-",
            "\n",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,8}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..3).prop_map(|w| w.concat())
}

fn profiled() -> impl Strategy<Value = Profiled> {
    (
        prop::collection::vec(text(), 0..5),
        prop::option::of(text()),
        prop::option::of("[a-z0-9/._$-]{1,12}"),
    )
        .prop_map(|(command, entrypoint, workdir)| Profiled {
            entrypoint,
            command,
            workdir: workdir.map(|w| format!("/{w}")),
        })
}

/// The issue's own case, then random runs: docker-compose, kubectl and
/// `kubectl kustomize` read every command back as it was profiled.
#[test]
fn docker_compose_and_kubectl_read_back_the_profiled_command() {
    require_privileged();
    let redis = Profiled {
        entrypoint: None,
        command: [
            "redis-server",
            "/etc/redis/redis.conf",
            "--daemonize",
            "no",
            "--port",
            "6380",
        ]
        .map(str::to_owned)
        .to_vec(),
        workdir: None,
    };
    read_back(&redis).unwrap_or_else(|e| panic!("{e}"));
    let dollars = Profiled {
        entrypoint: Some("sh".into()),
        command: vec!["-c".into(), "echo $DB_PASSWORD; mkdir -p /tmp/$X".into()],
        workdir: Some("/srv/$X".into()),
    };
    read_back(&dollars).unwrap_or_else(|e| panic!("{e}"));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&profiled(), |p| {
            read_back(&p).map_err(TestCaseError::fail)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// One redis round trip (PING, SET, GET) on the published port, retried
/// for up to 30 s; the container's logs on failure.
fn redis_answers(port: u16, container: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(mut s) =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        {
            let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
            let _ = s.write_all(b"PING\r\nSET roprof carried\r\nGET roprof\r\nQUIT\r\n");
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            last = String::from_utf8_lossy(&buf).into_owned();
            if last.contains("+PONG") && last.contains("carried") {
                return Ok(());
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    let logs = docker(["logs", "--tail", "20", container]);
    Err(format!(
        "redis on 127.0.0.1:{port} answered {last:?}; logs:\n{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    ))
}

/// The command a container runs (`Config.Cmd`), and its entrypoint.
fn runs(container: &str) -> (Json, Json) {
    let cmd = docker_ok(["inspect", "--format", "{{json .Config.Cmd}}", container]);
    let ep = docker_ok([
        "inspect",
        "--format",
        "{{json .Config.Entrypoint}}",
        container,
    ]);
    (
        serde_json::from_str(cmd.trim()).unwrap_or(Json::Null),
        serde_json::from_str(ep.trim()).unwrap_or(Json::Null),
    )
}

const REDIS_PORT: u16 = 18461;

fn redis_command() -> Vec<String> {
    [
        "redis-server",
        "/etc/redis/redis.conf",
        "--daemonize",
        "no",
        "--supervised",
        "no",
        "--bind",
        "0.0.0.0",
        "--protected-mode",
        "no",
        "--port",
        "6380",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The README's kustomize steps, run as written in `dir` (with this
/// roprof, and the build printed instead of applied).
fn readme_kustomize(dir: &TempDir, report: &Path) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme
        .find("```sh\nroprof render report.json --format kustomize")
        .expect("the README shows the kustomize steps");
    let block = &readme[start + "```sh\n".len()..];
    let block = &block[..block.find("```").expect("the block ends")];
    assert!(
        block.contains("kubectl kustomize overlay | kubectl apply -f -"),
        "the README's steps end with kubectl kustomize:\n{block}"
    );
    let script = block
        .replace(
            "roprof render report.json",
            &format!("\"$ROPROF\" render {}", report.display()),
        )
        .replace("| kubectl apply -f -", "> built.yaml");
    let (ok, _, err) = run(Command::new("sh")
        .args(["-ec", &script])
        .current_dir(&dir.0)
        .env("ROPROF", roprof_bin()));
    assert!(ok, "the README's kustomize steps fail: {err}\n{script}");
    dir.read("built.yaml")
}

/// Profiles redis on port 6380 (every format into `dir`); returns the
/// `-p` value.
fn profile_redis(dir: &TempDir) -> String {
    let exercise = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/redis/exercise.sh"
    ));
    let publish = format!("127.0.0.1:{REDIS_PORT}:6380");
    let mut args: Vec<String> = [
        "profile",
        "--quiet",
        "--format",
        "json",
        "--duration",
        "8s",
        "-p",
        &publish,
        "--exercise",
    ]
    .map(str::to_owned)
    .to_vec();
    args.push(format!("bash {} {REDIS_PORT}", exercise.display()));
    args.push("-o".into());
    args.push(dir.0.display().to_string());
    args.push(REDIS_IMAGE.into());
    args.extend(redis_command());
    let (code, _, err) = roprof(&args);
    assert_eq!(code, 0, "profiling redis on 6380 exits 0; stderr:\n{err}");
    publish
}

/// Issues 30.1, 30.2 and 30.6: redis profiled with `--daemonize no` on
/// another port. Compose, the Deployment, the README's kustomize build and
/// `roprof patch` all run that command (the image's own CMD listens on
/// 6379, so an output that dropped it would not answer on 6380).
#[test]
fn redis_with_daemonize_no_runs_the_profiled_command_from_every_output() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = TempDir::new("carried-redis");
    let publish = profile_redis(&dir);
    let want = serde_json::json!(redis_command());
    let mut failures = Vec::new();

    let compose = dir.read("compose.yaml");
    match pasted::compose_up(&compose) {
        Ok(p) => match p.container("app") {
            Ok(id) => {
                if runs(&id).0 != want {
                    failures.push(format!("compose runs {:?}, not {want}", runs(&id)));
                }
                if let Err(e) = redis_answers(REDIS_PORT, &id) {
                    failures.push(format!("compose:\n{compose}\n=> {e}"));
                }
            }
            Err(e) => failures.push(format!("compose: {e}")),
        },
        Err(e) => failures.push(format!("compose: {e}")),
    }
    if !compose.contains("- 'no'") {
        failures.push(format!("`no` is not quoted in compose:\n{compose}"));
    }

    let app_args = ["-p", publish.as_str()];
    let mut k8s = |what: &str, yaml: &str, container: &str| {
        let file = dir.write(&format!("{what}.check.yaml"), yaml);
        if let Err(e) = kubectl_typed(&file, container) {
            failures.push(format!("{what}: {e}\n{yaml}"));
        }
        match kubelet::run_deployment(yaml, &app_args) {
            Ok(pod) => {
                let (cmd, _) = runs(&pod.app);
                if cmd != want {
                    failures.push(format!("{what} runs {cmd}, not {want}:\n{yaml}"));
                }
                if let Err(e) = redis_answers(REDIS_PORT, &pod.app) {
                    failures.push(format!("{what}:\n{yaml}\n=> {e}"));
                }
            }
            Err(e) => failures.push(format!("{what}: {e}\n{yaml}")),
        }
    };
    let deployment = dir.read("k8s.yaml");
    k8s("k8s", &deployment, "redis");

    // The README's steps with --k8s-name cache --k8s-container server.
    let overlay = TempDir::new("carried-overlay");
    std::fs::create_dir_all(overlay.0.join("overlay")).expect("overlay dir");
    overlay.write(
        "overlay/deployment.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cache\nspec:\n  \
             selector:\n    matchLabels: {{app: cache}}\n  template:\n    metadata:\n      \
             labels: {{app: cache}}\n    spec:\n      containers:\n      - name: server\n        \
             image: {REDIS_IMAGE}\n"
        ),
    );
    let built = readme_kustomize(&overlay, &dir.0.join("report.json"));
    k8s("kustomize", &built, "server");

    // `roprof patch` of a manifest whose args are quoted in flow style.
    let manifest = dir.write(
        "web.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kv\nspec:\n  selector:\n    \
             matchLabels: {{app: kv}}\n  template:\n    metadata:\n      labels: {{app: kv}}\n    \
             spec:\n      containers:\n      - name: kv\n        image: {REDIS_IMAGE}\n        \
             args: {}\n",
            serde_json::to_string(&redis_command()).expect("JSON")
        ),
    );
    let (code, patched, err) = roprof([
        "patch".to_owned(),
        manifest.display().to_string(),
        "--report".into(),
        dir.0.join("report.json").display().to_string(),
    ]);
    assert_eq!(code, 0, "roprof patch: {err}");
    assert!(
        patched.contains("- 'no'"),
        "`no` is quoted in the patch:\n{patched}"
    );
    k8s("patch", &patched, "kv");

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Issue 30.3: a shell command with `$` runs as profiled from the compose
/// file (`$$`: compose leaves it to the container's shell) and from the
/// Deployment (`$$`: the kubelet leaves it too).
#[test]
fn a_command_with_dollars_runs_as_profiled_from_compose_and_kubernetes() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = TempDir::new("carried-dollar");
    let script = "X=made; echo \"pw=$DB_PASSWORD\"; mkdir -p /tmp/$X && ls /tmp && echo done=$X";
    let out_dir = dir.0.display().to_string();
    let (code, _, err) = roprof_env(
        [
            "profile",
            "--quiet",
            "--format",
            "json",
            "--duration",
            "3s",
            "-o",
            &out_dir,
            "-e",
            "DB_PASSWORD",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            script,
        ],
        &[("DB_PASSWORD", "s3cret")],
    );
    assert_eq!(code, 0, "profiling the script exits 0; stderr:\n{err}");
    let compose = dir.read("compose.yaml");
    let logs = |id: &str| {
        docker_ok(["wait", id]);
        let l = docker(["logs", id]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&l.stdout),
            String::from_utf8_lossy(&l.stderr)
        )
    };
    let p = pasted::compose_up_env(&compose, &[("DB_PASSWORD", "s3cret")])
        .unwrap_or_else(|e| panic!("compose: {e}"));
    let id = p.container("app").unwrap_or_else(|e| panic!("{e}"));
    let got = logs(&id);
    assert!(
        got.contains("pw=s3cret") && got.contains("made\n") && got.contains("done=made"),
        "the container's shell expands $DB_PASSWORD and $X, not compose:\n{got}\n{compose}"
    );
    assert!(
        compose.contains("mkdir -p /tmp/$$X") && compose.contains("$$DB_PASSWORD"),
        "every $ of the command doubled:\n{compose}"
    );
    drop(p);

    // The Kubernetes output, without the Secret the emulation does not
    // know: the report's variable taken out.
    let text = dir.read("report.json");
    let mut v: Json = serde_json::from_str(&text).expect("report.json");
    v["run_options"]["env"] = serde_json::json!([]);
    let report = dir.write("noenv.json", &v.to_string());
    let yaml = render(&report, "k8s", &[]);
    let pod = kubelet::run_deployment(&yaml, &[]).unwrap_or_else(|e| panic!("k8s: {e}\n{yaml}"));
    let got = logs(&pod.app);
    assert!(
        got.contains("made\n") && got.contains("done=made"),
        "the kubelet leaves $X to the shell:\n{got}\n{yaml}"
    );
}

/// Issue 30.4: interrupted during `listing`, nothing was observed; no
/// format prints a plan, and each says so in the same words.
#[test]
fn an_interrupt_during_listing_prints_no_plan_in_any_format() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = TempDir::new("carried-interrupt");
    let out_dir = dir.0.display().to_string();
    let mut r = spawn_roprof(
        &[
            "profile",
            "--quiet",
            "--format",
            "table",
            "--duration",
            "2s",
            "-o",
            &out_dir,
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            "touch /tmp/x",
        ],
        &[("ROPROF_HOLD_PHASE", "listing")],
    );
    r.wait_for_stderr("holding in phase listing", Duration::from_secs(90));
    r.signal(libc::SIGINT);
    let f = r.finish(Duration::from_secs(90));
    assert_eq!(
        f.code,
        Some(130),
        "interrupted: exit 130; stderr:\n{}",
        f.stderr
    );

    let table = f.stdout.clone();
    assert!(
        table.contains("NO PLAN") && table.contains("during listing"),
        "the table says there is no plan and why:\n{table}"
    );
    let md = dir.read("report.md");
    for (what, text) in [
        ("table", &table),
        ("table.txt", &dir.read("table.txt")),
        ("markdown", &md),
    ] {
        assert!(
            !text.contains("No writable mounts needed") && !text.contains("docker run"),
            "{what} shows no plan:\n{text}"
        );
        assert!(
            text.contains("NO PLAN: the run is incomplete"),
            "{what}:\n{text}"
        );
    }
    for file in [
        "docker.sh",
        "compose.yaml",
        "k8s.yaml",
        "k8s-restricted.yaml",
        "kustomize.yaml",
    ] {
        let text = dir.read(file);
        assert!(
            text.lines()
                .filter(|l| !l.starts_with("#!"))
                .all(|l| l.starts_with("# roprof: ")),
            "{file} is comments only:\n{text}"
        );
        assert!(
            text.contains("NO PLAN"),
            "{file} says there is no plan:\n{text}"
        );
    }
    let (ok, _, err) = run(Command::new("docker-compose")
        .arg("-f")
        .arg(dir.0.join("compose.yaml"))
        .arg("config"));
    assert!(!ok, "docker-compose refuses the no-plan file: {err}");
    for file in ["k8s.yaml", "kustomize.yaml"] {
        assert!(
            kubectl_json(&dir.0.join(file)).is_err(),
            "kubectl finds no object in {file}"
        );
    }
    let (ok, out, err) = run(Command::new("sh").arg(dir.0.join("docker.sh")));
    assert!(
        ok && out.is_empty(),
        "the docker script runs nothing: {out}{err}"
    );
    // Rendering the saved report again says the same.
    let report = dir.0.join("report.json");
    for format in ["table", "docker", "compose", "k8s", "kustomize", "markdown"] {
        assert!(
            render(&report, format, &[]).contains("NO PLAN"),
            "roprof render --format {format} of the report"
        );
    }
}

/// Issue 30.1 for `profile --manifest`: the patched manifest it prints
/// keeps `args: [..., "--daemonize", "no", ...]` strings for kubectl, and
/// runs that command.
#[test]
fn profile_manifest_keeps_quoted_args_and_runs_them() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = TempDir::new("carried-manifest");
    let manifest = dir.write(
        "kv.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: kv\nspec:\n  selector:\n    \
             matchLabels: {{app: kv}}\n  template:\n    metadata:\n      labels: {{app: kv}}\n    \
             spec:\n      containers:\n      - name: kv\n        image: {REDIS_IMAGE}\n        \
             args: {}\n",
            serde_json::to_string(&redis_command()).expect("JSON")
        ),
    );
    let (code, patched, err) = roprof([
        "profile".to_owned(),
        "--quiet".into(),
        "--duration".into(),
        "4s".into(),
        "--manifest".into(),
        manifest.display().to_string(),
    ]);
    assert_eq!(code, 0, "profile --manifest exits 0; stderr:\n{err}");
    let file = dir.write("patched.yaml", &patched);
    kubectl_typed(&file, "kv").unwrap_or_else(|e| panic!("{e}\n{patched}"));
    let d = kubectl_json(&file).unwrap_or_else(|e| panic!("{e}"));
    let args = &d["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(
        args,
        &serde_json::json!(redis_command()),
        "kubectl reads the args as written:\n{patched}"
    );
    let publish = format!("127.0.0.1:{REDIS_PORT}:6380");
    let pod = kubelet::run_deployment(&patched, &["-p", &publish])
        .unwrap_or_else(|e| panic!("the patched manifest starts: {e}\n{patched}"));
    redis_answers(REDIS_PORT, &pod.app).unwrap_or_else(|e| panic!("{e}\n{patched}"));
}

/// Issue 30.10: `roprof patch --container X` on a container that runs
/// another image than the profiled one says so on stderr.
#[test]
fn patch_warns_when_the_named_container_runs_another_image() {
    require_privileged();
    let dir = TempDir::new("carried-patch");
    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/redis/report.json");
    let manifest = dir.write(
        "web.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: \
             cache\n    image: {REDIS_IMAGE}\n  - name: proxy\n    image: {BUSYBOX_IMAGE}\n"
        ),
    );
    let patch = |container: &str| {
        roprof([
            "patch".to_owned(),
            manifest.display().to_string(),
            "--report".into(),
            report.display().to_string(),
            "--container".into(),
            container.into(),
        ])
    };
    let (code, _, err) = patch("proxy");
    assert_eq!(code, 0, "the patch is still made: {err}");
    assert!(
        err.contains("container proxy of Pod/web runs image")
            && err.contains(BUSYBOX_IMAGE)
            && err.contains(REDIS_IMAGE),
        "a warning names both images:\n{err}"
    );
    let (code, _, err) = patch("cache");
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("warning"),
        "no warning for the profiled image:\n{err}"
    );
}
