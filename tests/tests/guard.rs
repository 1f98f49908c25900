//! `roprof guard`, the production mode (issue 32): it reports the failed
//! writes of read-only containers, those running before it started and
//! those started later, on Docker and on containerd (driven with `ctr`),
//! once per key with the mount that fixes them, counts repeats, leaves
//! writable containers alone, and writes reports that `roprof render` reads
//! and `roprof patch` applies to a pod that then runs healthy under the
//! kubelet's semantics.

use std::{
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, DEBIAN_IMAGE, Finished, TEST_LABEL, TempDir,
    agent::Agent,
    build_image,
    containerd::{CONTAINERD_SOCKET, Namespace},
    docker_ok, free_port,
    health::{self, Check},
    kubelet,
    node::{self, Node},
    owner_label,
    proxy::EngineProxy,
    roprof, roprof_bin, unique_name,
};

/// busybox with the directories the writers use (a write to a missing
/// directory fails with ENOENT, not EROFS), and `/locked`, which only uid
/// 1000 may enter (root without `CAP_DAC_OVERRIDE` gets `EACCES` there:
/// the image's own permissions).
const GUARD_IMAGE: &str = "roprof-test/guard:latest";

fn image() {
    build_image(
        GUARD_IMAGE,
        &format!(
            "FROM {BUSYBOX_IMAGE}\nRUN mkdir -p /srv /data && mkdir -m 700 /locked && chown 1000 /locked\n"
        ),
    );
}

/// A shell loop writing `path` every 0.2 s, its failures silenced.
fn writes(path: &str) -> String {
    format!("while true; do echo x > {path} 2>/dev/null; sleep 0.2; done")
}

/// `docker run -d [--read-only] IMAGE sh -c SCRIPT`, labelled for cleanup
/// and for this test's guard filter; its id.
fn run(name: &str, read_only: bool, script: &str) -> String {
    let owner = owner_label();
    let mut args = vec![
        "run", "-d", "--label", TEST_LABEL, "--label", &owner, "--name", name,
    ];
    if read_only {
        args.push("--read-only");
    }
    args.extend([GUARD_IMAGE, "sh", "-c", script]);
    docker_ok(args).trim().to_owned()
}

/// A guard of this test's Docker containers (`--label` owner), ready; and
/// when it became so.
fn start_guard(extra: &[&str]) -> (Agent, SystemTime) {
    let owner = owner_label();
    let mut args = vec!["guard", "--label", owner.as_str()];
    args.extend_from_slice(extra);
    start_guard_with(&args, &[])
}

/// `roprof ARGS` (a guard), ready; and when it became so.
fn start_guard_with(args: &[&str], env: &[(&str, &str)]) -> (Agent, SystemTime) {
    let g = Agent::start(args, env, "roprof: guard: watching", 1);
    (g, SystemTime::now())
}

/// SIGINT, exit 0, programs unloaded, and the JSON lines it wrote.
fn stop_guard(g: Agent) -> (Vec<serde_json::Value>, Finished) {
    stop_guard_with(g, libc::SIGINT)
}

/// `sig`, exit 0, programs unloaded, and the JSON lines it wrote.
fn stop_guard_with(g: Agent, sig: i32) -> (Vec<serde_json::Value>, Finished) {
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

fn of<'a>(
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

/// RFC 3339 UTC with milliseconds (`…T12:00:00.123Z`) to a time.
fn parse_time(text: &str) -> SystemTime {
    let bad = || -> ! { panic!("expected an RFC 3339 UTC time, got {text}") };
    let num = |x: &str| -> i64 { x.parse().unwrap_or_else(|_| bad()) };
    let (date, clock) = text
        .strip_suffix('Z')
        .and_then(|x| x.split_once('T'))
        .unwrap_or_else(|| bad());
    let ymd: Vec<i64> = date.split('-').map(num).collect();
    let (hms, millis) = clock.split_once('.').unwrap_or((clock, "0"));
    let hms: Vec<i64> = hms.split(':').map(num).collect();
    // Days from civil (Howard Hinnant's algorithm), years from March.
    let (year, month) = if ymd[1] <= 2 {
        (ymd[0] - 1, ymd[1] + 9)
    } else {
        (ymd[0], ymd[1] - 3)
    };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * month + 2) / 5 + ymd[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    UNIX_EPOCH
        + Duration::from_secs(u64::try_from(secs).unwrap_or_else(|_| bad()))
        + Duration::from_millis(u64::try_from(num(millis)).unwrap_or_else(|_| bad()))
}

fn secs_after(t: &serde_json::Value, since: SystemTime) -> f64 {
    let at = parse_time(
        t.as_str()
            .unwrap_or_else(|| panic!("expected a time, got {t}")),
    );
    at.duration_since(since)
        .map_or_else(|e| -e.duration().as_secs_f64(), |d| d.as_secs_f64())
}

/// The one `finding` of `path` in container `id`: a create failing with
/// `EROFS` by `sh` of `image`, fixed by a tmpfs over `dir` (docker flag,
/// and a Kubernetes volume with its volumeMount).
fn assert_finding<'a>(
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

#[test]
fn a_container_running_before_guard_is_reported() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let name = unique_name("guard-before");
    let id = run(&name, true, &writes("/data/f"));
    let (g, ready) = start_guard(&[]);
    std::thread::sleep(Duration::from_secs(3));
    let (lines, f) = stop_guard(g);
    assert!(
        f.stderr.contains("roprof: guard: watching 1 containers"),
        "the container running at start is listed: {}",
        f.stderr
    );
    assert_finding(&lines, &id, "/data/f", ("/data", GUARD_IMAGE), &f.stderr);
    let at = secs_after(&of(&lines, "finding", &id, "/data/f")[0]["time"], ready);
    eprintln!("finding {at:.3}s after readiness (writes every 0.2s)");
    assert!(
        at < 2.0,
        "the finding comes within 2s of readiness, it came {at:.3}s after"
    );
    assert_eq!(
        f.stderr
            .lines()
            .filter(|l| l.contains("roprof: guard: guarding"))
            .count(),
        1,
        "only the labelled container is guarded: {}",
        f.stderr
    );
}

#[test]
fn a_container_started_later_is_reported() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let (g, _) = start_guard(&[]);
    let name = unique_name("guard-after");
    // One write, two seconds after the start (guard's start-event
    // handling out of the way), stamped with the host's uptime just
    // before: the latency from the write to its finding.
    let id = run(
        &name,
        true,
        "sleep 2; read up rest < /proc/uptime; echo $up; echo x > /srv/f 2>/dev/null; sleep 1000",
    );
    std::thread::sleep(Duration::from_secs(4));
    let (lines, f) = stop_guard(g);
    assert_finding(&lines, &id, "/srv/f", ("/srv", GUARD_IMAGE), &f.stderr);
    let wrote_up: f64 = docker_ok(["logs", &id])
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("expected the uptime the container printed: {e}"));
    // Wall clock minus uptime, to place the finding's time on the uptime
    // clock (/proc/uptime has 10 ms steps).
    let host_up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .expect("/proc/uptime");
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let found = of(&lines, "finding", &id, "/srv/f")[0]["time"].clone();
    let found_up = secs_after(&found, UNIX_EPOCH) - (wall - host_up);
    let latency = found_up - wrote_up;
    eprintln!(
        "finding {:.0} ms after the write (10 ms clock steps)",
        latency * 1000.0
    );
    assert!(
        latency < 1.0,
        "the finding comes within 1s of the write: {latency:.3}s"
    );
}

#[test]
fn a_writable_container_is_not_reported() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let before = unique_name("guard-rw-before");
    let id1 = run(
        &before,
        false,
        "while true; do echo x > /data/f; sleep 0.2; done",
    );
    let (g, _) = start_guard(&[]);
    let after = unique_name("guard-rw-after");
    let id2 = run(
        &after,
        false,
        "while true; do echo x > /srv/f; sleep 0.2; done",
    );
    // A read-only one beside them, so that silence is not a dead guard.
    let ro = unique_name("guard-ro");
    let id3 = run(&ro, true, &writes("/srv/f"));
    std::thread::sleep(Duration::from_secs(3));
    let (lines, f) = stop_guard(g);
    for id in [&id1, &id2] {
        assert!(
            !lines.iter().any(|l| l["container"]["id"] == id.as_str()),
            "a writable container's writes succeed: no line about {id}; lines: {lines:#?}"
        );
    }
    assert_eq!(
        of(&lines, "finding", &id3, "/srv/f").len(),
        1,
        "{lines:#?}\n{}",
        f.stderr
    );
}

#[test]
fn a_thousand_failures_are_one_finding_and_a_count() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let (g, _) = start_guard(&[]);
    let name = unique_name("guard-1000");
    // The loop starts two seconds in: guard guards a new container when
    // its start event arrives, and writes before that are not seen.
    let id = run(
        &name,
        true,
        "sleep 2; i=0; while [ $i -lt 1000 ]; do echo x > /srv/f 2>/dev/null; i=$((i+1)); done; sleep 1000",
    );
    std::thread::sleep(Duration::from_secs(5));
    let (lines, f) = stop_guard(g);
    assert_eq!(
        of(&lines, "finding", &id, "/srv/f").len(),
        1,
        "one finding for the key; lines: {lines:#?}\nstderr:\n{}",
        f.stderr
    );
    let counts = of(&lines, "count", &id, "/srv/f");
    let last = counts
        .last()
        .unwrap_or_else(|| panic!("expected count lines: {lines:#?}"));
    assert_eq!(
        last["count"], 1000,
        "the last count is every failure: {counts:#?}"
    );
    assert_eq!(last["operation"], "create");
    assert_eq!(last["errno"], "EROFS");
}

#[test]
fn reports_render() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let out = TempDir::new("guard-out");
    let dir = out.0.to_str().expect("temp dir is UTF-8");
    let name = unique_name("guard-report");
    let id = run(&name, true, &writes("/srv/f"));
    let t = Instant::now();
    let (g, _) = start_guard(&["-o", dir]);
    std::thread::sleep(Duration::from_secs(2));
    let (lines, f) = stop_guard(g);
    eprintln!("guard ran {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(of(&lines, "finding", &id, "/srv/f").len(), 1, "{lines:#?}");
    let file = Path::new(dir).join(format!("{name}.json"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!("expected {} ({e}); stderr:\n{}", file.display(), f.stderr)
        }))
        .unwrap_or_else(|e| panic!("{} is a JSON report: {e}", file.display()));
    assert_eq!(report["run"]["mode"], "guard", "{report:#}");
    let schema_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiler/schema/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).expect("the report schema"))
            .expect("the schema is JSON");
    let validator = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("the report schema compiles: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "guard's report follows the schema: {errors:#?}"
    );
    let p = report["paths"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["path"] == "/srv/f"))
        .unwrap_or_else(|| panic!("the report holds /srv/f: {report:#}"));
    assert!(
        p["ops"]["create"]["errors"]["EROFS"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "its EROFS count: {p}"
    );
    let file_s = file.to_str().expect("UTF-8");
    let (code, stdout, stderr) = roprof(["render", "--format", "docker", file_s]);
    assert_eq!(code, 0, "roprof render reads guard's report: {stderr}");
    assert!(
        stdout.contains("--read-only") && stdout.contains("--tmpfs") && stdout.contains("/srv:"),
        "the docker line mounts /srv: {stdout}"
    );
}

#[test]
fn metrics_are_scraped() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let name = unique_name("guard-metrics");
    let _id = run(&name, true, &writes("/srv/f"));
    let addr = format!("127.0.0.1:{}", free_port());
    let (g, _) = start_guard(&["--metrics", &addr]);
    std::thread::sleep(Duration::from_secs(2));
    let url = format!("http://{addr}/metrics");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", &url])
        .output()
        .unwrap_or_else(|e| panic!("expected curl to run (apt-get install curl): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let missing = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
        ])
        .arg(format!("http://{addr}/nothing"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let (_, f) = stop_guard_with(g, libc::SIGTERM);
    assert!(
        out.status.success(),
        "curl {url} succeeds: {}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        f.stderr
    );
    let series = format!(
        "roprof_guard_failed_writes_total{{workload=\"{name}\",path=\"/srv/f\",operation=\"create\",errno=\"EROFS\"}} "
    );
    let value: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected `{series}N` in the scrape:\n{text}"));
    assert!(value >= 1, "the counter counts the failures: {value}");
    for name in ["roprof_guard_events_total", "roprof_guard_lost_total"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "expected {name} in the scrape:\n{text}"
        );
    }
    assert_eq!(missing, "404", "another path is not found");
}

#[test]
fn eacces_is_reported_on_mounts_only() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let name = unique_name("guard-eacces");
    let owner = owner_label();
    // uid 1000 may not write the root-owned tmpfs (a mount with the wrong
    // owner: reported), nor search the image's /root (the image's own
    // permissions: not reported).
    let id = docker_ok([
        "run",
        "-d",
        "--label",
        TEST_LABEL,
        "--label",
        &owner,
        "--name",
        &name,
        "--read-only",
        "--user",
        "1000:1000",
        "--tmpfs",
        "/cache:mode=755",
        GUARD_IMAGE,
        "sh",
        "-c",
        "while true; do echo x > /cache/f 2>/dev/null; echo x > /root/f 2>/dev/null; sleep 0.2; done",
    ])
    .trim()
    .to_owned();
    let (g, _) = start_guard(&[]);
    std::thread::sleep(Duration::from_secs(2));
    let (lines, f) = stop_guard(g);
    let on_mount = of(&lines, "finding", &id, "/cache/f");
    assert_eq!(on_mount.len(), 1, "{lines:#?}\nstderr:\n{}", f.stderr);
    assert_eq!(on_mount[0]["errno"], "EACCES", "{}", on_mount[0]);
    assert!(
        on_mount[0]["fix"]["unmounted"]
            .as_str()
            .is_some_and(|r| r.contains("owner and mode")),
        "the fix says the mount's owner or mode is wrong: {}",
        on_mount[0]
    );
    assert!(
        of(&lines, "finding", &id, "/root/f").is_empty(),
        "EACCES in the image's own directories is not reported: {lines:#?}"
    );
}

#[test]
fn containers_that_vanish_are_survived() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let (g, _) = start_guard(&[]);
    let owner = owner_label();
    // Gone (exited and removed) by the time guard inspects them, or soon
    // after it guarded them.
    for _ in 0..5 {
        let name = unique_name("guard-brief");
        docker_ok([
            "run",
            "--rm",
            "--label",
            TEST_LABEL,
            "--label",
            &owner,
            "--name",
            &name,
            "--read-only",
            GUARD_IMAGE,
            "sh",
            "-c",
            "echo x > /srv/f 2>/dev/null; true",
        ]);
    }
    let name = unique_name("guard-stays");
    let id = run(&name, true, &writes("/srv/f"));
    std::thread::sleep(Duration::from_secs(2));
    let (lines, f) = stop_guard(g);
    assert_eq!(
        of(&lines, "finding", &id, "/srv/f").len(),
        1,
        "guard still reports after containers vanished: {lines:#?}\nstderr:\n{}",
        f.stderr
    );
    eprintln!(
        "{}",
        f.stderr
            .lines()
            .find(|l| l.contains("survived"))
            .unwrap_or_default()
    );
    assert!(
        f.stderr.contains("survived"),
        "the summary counts what was survived: {}",
        f.stderr
    );
}

#[test]
fn an_engine_connection_that_breaks_is_survived() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let dir = TempDir::new("guard-proxy");
    let sock = dir.0.join("docker.sock");
    let mut proxy = EngineProxy::start(&sock);
    let host = format!("unix://{}", sock.display());
    let owner = owner_label();
    let (mut g, _) = start_guard_with(
        &["guard", "--label", owner.as_str()],
        &[("DOCKER_HOST", host.as_str())],
    );
    proxy.cut();
    g.run
        .wait_for_stderr("roprof: guard: warning", Duration::from_secs(10));
    // Down for a few retries, then back; a container started meanwhile is
    // found when guard lists the running ones again.
    std::thread::sleep(Duration::from_secs(2));
    let name = unique_name("guard-outage");
    // Started through the real socket (the proxy is down).
    let id = run(&name, true, &writes("/srv/f"));
    let _proxy = EngineProxy::start(&sock);
    std::thread::sleep(Duration::from_secs(4));
    let (lines, f) = stop_guard(g);
    assert_eq!(
        of(&lines, "finding", &id, "/srv/f").len(),
        1,
        "a container started while the engine was unreachable is guarded once it is back: \
         {lines:#?}\nstderr:\n{}",
        f.stderr
    );
    eprintln!(
        "{}",
        f.stderr
            .lines()
            .find(|l| l.contains("survived"))
            .unwrap_or_default()
    );
    assert!(
        !f.stderr.contains(" 0 engine error(s)"),
        "the engine errors are counted: {}",
        f.stderr
    );
}

/// `roprof guard --runtime containerd` on namespace `ns` of Docker's
/// containerd, ready.
fn start_ctr_guard(ns: &Namespace, extra: &[&str]) -> Agent {
    let mut args = vec![
        "guard",
        "--runtime",
        "containerd",
        "--containerd-socket",
        CONTAINERD_SOCKET,
        "--namespace",
        &ns.0,
    ];
    args.extend_from_slice(extra);
    start_guard_with(&args, &[]).0
}

#[test]
fn containerd_read_only_containers_are_reported_and_writable_ones_are_not() {
    roprof_tests::require_privileged();
    image();
    let ns = Namespace::new("guard", &[GUARD_IMAGE]);
    let img = ns.image(GUARD_IMAGE);
    let out = TempDir::new("guard-ctr");
    let dir = out.0.to_str().expect("temp dir is UTF-8");
    // Running before guard starts: found in the task list.
    ns.run(&[
        "-d",
        "--read-only",
        &img,
        "ro-before",
        "sh",
        "-c",
        &writes("/data/f"),
    ]);
    let g = start_ctr_guard(&ns, &["-o", dir]);
    // Started later (the start event): a pod's container as the CRI labels
    // it, root without CAP_DAC_OVERRIDE, on a tmpfs only root may write;
    // it also fails to enter the image's /locked (EACCES, not on a mount).
    ns.run(&[
        "-d",
        "--read-only",
        "--cap-drop",
        "CAP_DAC_OVERRIDE",
        "--mount",
        "type=tmpfs,src=tmpfs,dst=/cache,options=mode=555",
        "--label",
        "io.kubernetes.pod.namespace=shop",
        "--label",
        "io.kubernetes.pod.name=web-7d4b9c8f6d-x2v9q",
        "--label",
        "io.kubernetes.container.name=app",
        &img,
        "cri-app",
        "sh",
        "-c",
        "while true; do echo x > /srv/f 2>/dev/null; echo x > /cache/f 2>/dev/null; \
         echo x > /locked/f 2>/dev/null; sleep 0.2; done",
    ]);
    // Writable: its writes succeed, nothing to report.
    ns.run(&[
        "-d",
        &img,
        "rw",
        "sh",
        "-c",
        "while true; do echo x > /srv/f; sleep 0.2; done",
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let (lines, f) = stop_guard(g);
    assert!(
        f.stderr.contains("roprof: guard: watching 1 containers"),
        "the read-only container running at start is listed: {}",
        f.stderr
    );
    let before = assert_finding(&lines, "ro-before", "/data/f", ("/data", &img), &f.stderr);
    assert_eq!(before["container"]["workload"], "ro-before", "{before}");
    let app = assert_finding(&lines, "cri-app", "/srv/f", ("/srv", &img), &f.stderr);
    assert_eq!(
        (&app["container"]["name"], &app["container"]["workload"]),
        (
            &serde_json::json!("shop_web-7d4b9c8f6d-x2v9q_app"),
            &serde_json::json!("k8s-shop-web-app")
        ),
        "a CRI container is named and grouped by its pod labels: {app}"
    );
    let cache = of(&lines, "finding", "cri-app", "/cache/f");
    assert_eq!(cache.len(), 1, "{lines:#?}\nstderr:\n{}", f.stderr);
    assert_eq!(cache[0]["errno"], "EACCES", "{}", cache[0]);
    assert!(
        cache[0]["fix"]["unmounted"]
            .as_str()
            .is_some_and(|r| r.contains("owner and mode")),
        "an EACCES on the spec's tmpfs says the mount's owner or mode is wrong: {}",
        cache[0]
    );
    assert!(
        of(&lines, "finding", "cri-app", "/locked/f").is_empty(),
        "EACCES in the image's own directories is not reported: {lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l["container"]["id"] == "rw"),
        "a writable ctr container is not reported: {lines:#?}"
    );
    let report = Path::new(dir).join("k8s-shop-web-app.json");
    let file = report.to_str().expect("UTF-8");
    let (code, stdout, stderr) = roprof(["render", "--format", "docker", file]);
    assert_eq!(
        code, 0,
        "roprof render reads the pod's guard report: {stderr}"
    );
    assert!(
        stdout.contains("--tmpfs '/srv:") && stdout.contains("--tmpfs '/cache:mode=555'"),
        "the docker line mounts /srv and keeps the spec's own tmpfs: {stdout}"
    );
}

/// The app of the Kubernetes test: ready (serving on 8080) only once it
/// could write its state under /data, which the image has but a read-only
/// root refuses; until then it retries.
const NEEDS_DATA: &str = "until echo ready > /data/ready 2>/dev/null; do sleep 0.2; done; \
     mkdir -p /data/www && echo ok > /data/www/index.html && exec httpd -f -p 8080 -h /data/www";

fn read_only_deployment() -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    \
         matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    \
         spec:\n      containers:\n      - name: web\n        image: {GUARD_IMAGE}\n        \
         command: [sh, -c, {}]\n        ports:\n        - containerPort: 8080\n        \
         securityContext:\n          readOnlyRootFilesystem: true\n",
        serde_json::to_string(NEEDS_DATA).expect("JSON")
    )
}

/// Issue 32, end to end to Kubernetes: a read-only pod that cannot start
/// its server, guard's report of it, `roprof patch` with that report, and
/// the patched pod serving, all under the kubelet emulation.
#[test]
fn the_mount_guard_proposes_patched_into_the_pod_makes_it_healthy() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let tmp = TempDir::new("guard-k8s");
    let manifest = tmp.write("web.yaml", &read_only_deployment());
    let out = tmp.0.join("reports");
    let dir = out.to_str().expect("UTF-8");
    let (g, _) = start_guard(&["-o", dir]);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let pod = kubelet::run_deployment(&read_only_deployment(), &["-p", &publish])
        .unwrap_or_else(|e| panic!("the read-only pod starts: {e}"));
    // Not healthy while its writes fail (it retries them all along).
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        assert!(
            health::check_once(Check::Http, &pod.app, Some(port)).is_err(),
            "the read-only pod should not serve before /data is writable"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (lines, f) = stop_guard(g);
    let id = docker_ok(["inspect", "--format", "{{.Id}}", &pod.app])
        .trim()
        .to_owned();
    drop(pod);
    let found = assert_finding(
        &lines,
        &id,
        "/data/ready",
        ("/data", GUARD_IMAGE),
        &f.stderr,
    );
    let k8s = &found["fix"]["kubernetes"];

    let report = out.join(format!(
        "{}.json",
        found["container"]["workload"].as_str().expect("a workload")
    ));
    let (code, patched, err) = roprof([
        "patch",
        manifest.to_str().expect("UTF-8"),
        "--report",
        report.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "roprof patch takes guard's report: {err}");
    let spec = kubelet::pod_spec(&patched).unwrap_or_else(|e| panic!("{e}"));
    let volumes = serde_json::to_value(&spec.volumes).expect("JSON");
    assert!(
        volumes
            .as_array()
            .is_some_and(|v| v.contains(&k8s["volume"])),
        "the patched pod has the volume guard proposed ({}): {volumes:#}\n{patched}",
        k8s["volume"]
    );
    let web = &spec.containers[0];
    let mounts = serde_json::to_value(&web.volume_mounts).expect("JSON");
    assert!(
        mounts
            .as_array()
            .is_some_and(|m| m.contains(&k8s["volumeMount"])),
        "the web container mounts it as guard proposed ({}): {mounts:#}",
        k8s["volumeMount"]
    );
    assert_eq!(
        web.security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem),
        Some(true),
        "the root stays read-only:\n{patched}"
    );
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let pod = kubelet::run_deployment(&patched, &["-p", &publish])
        .unwrap_or_else(|e| panic!("the patched pod starts: {e}\n{patched}"));
    health::healthy(Check::Http, &pod.app, Some(port))
        .unwrap_or_else(|e| panic!("the patched pod serves: {e}\n{patched}"));
}

/// Where Docker's containerd keeps its root (a node's is
/// `/var/lib/containerd`): the snapshots whose paths it reports.
const DOCKER_CONTAINERD_ROOT: &str = "/var/lib/docker/containerd/daemon";

/// The output of `docker logs` of `container`, until `needle` is in its
/// stderr (up to `timeout`).
fn logs_until(container: &str, needle: &str, timeout: Duration) -> (String, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let o = roprof_tests::docker(["logs", container]);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        if err.contains(needle) {
            return (out, err);
        }
        assert!(
            Instant::now() < deadline,
            "expected `{needle}` in the logs of {container} within {timeout:?}; stderr:\n{err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Issue 32's `DaemonSet`: `kubectl kustomize deploy/kubernetes/guard`, its
/// pod run the way a node runs it (hostPID, a cgroup namespace of its own,
/// its security context, hostPath volumes and metrics port: see
/// `tests/KUBELET_EMULATION.md`), guards a read-only container started
/// with `ctr`, serves its counter, and ends on SIGTERM with the finding on
/// its log and the report on the node.
#[test]
fn the_guard_daemonset_guards_a_read_only_container_from_its_pod() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let ns = Namespace::new("guard-ds", &[GUARD_IMAGE]);
    let img = ns.image(GUARD_IMAGE);
    let docs =
        node::kustomize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/guard"));
    let ds = node::daemonset(&docs);
    let reports = TempDir::new("guard-ds-reports");
    let port = free_port();
    let at_node = |(k, v): (&str, &str)| (k.to_owned(), v.to_owned());
    let node = Node {
        host_paths: [
            ("/run/containerd/containerd.sock", CONTAINERD_SOCKET),
            ("/var/lib/containerd", DOCKER_CONTAINERD_ROOT),
            ("/var/lib/roprof/guard", reports.0.to_str().expect("UTF-8")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect(),
        mount_paths: [("/var/lib/containerd", DOCKER_CONTAINERD_ROOT)]
            .into_iter()
            .map(at_node)
            .collect(),
        image: DEBIAN_IMAGE.to_owned(),
        binary: roprof_bin(),
        args: [("k8s.io", ns.0.as_str())]
            .into_iter()
            .map(at_node)
            .collect(),
        ports: [(9464, port)].into_iter().collect(),
    };
    let name = unique_name("guard-ds");
    let owner = owner_label();
    let mut args: Vec<String> = ["run", "--label", TEST_LABEL, "--label", &owner]
        .map(str::to_owned)
        .to_vec();
    args.extend(node::run_args(&ds, &node, &name).unwrap_or_else(|e| panic!("{e}")));
    docker_ok(&args);
    logs_until(&name, "roprof: guard: watching", Duration::from_mins(1));
    let pid: i32 = docker_ok(["inspect", "--format", "{{.State.Pid}}", &name])
        .trim()
        .parse()
        .expect("a pid");
    let progs = roprof_tests::prog_ids(pid);
    assert!(!progs.is_empty(), "the agent holds its BPF programs");
    ns.run(&[
        "-d",
        "--read-only",
        &img,
        "ro",
        "sh",
        "-c",
        &writes("/srv/f"),
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let scrape = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap_or_else(|e| panic!("expected curl to run: {e}"));
    let text = String::from_utf8_lossy(&scrape.stdout).into_owned();
    docker_ok(["kill", "-s", "TERM", &name]);
    let code = docker_ok(["wait", &name]);
    let (out, err) = logs_until(&name, "container(s) guarded", Duration::from_secs(5));
    assert_eq!(
        code.trim(),
        "0",
        "SIGTERM ends the agent with exit 0:\n{err}"
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON line ({e}): {l}")))
        .collect();
    assert_finding(&lines, "ro", "/srv/f", ("/srv", &img), &err);
    assert!(
        text.lines().any(|l| l.starts_with(
            "roprof_guard_failed_writes_total{workload=\"ro\",path=\"/srv/f\",operation=\"create\",errno=\"EROFS\"}"
        )),
        "the pod's metrics port serves the counter:\n{text}\nstderr:\n{err}"
    );
    let report: serde_json::Value = serde_json::from_str(&reports.read("ro.json"))
        .unwrap_or_else(|e| panic!("the report on the node's hostPath is JSON: {e}"));
    let notes = report["run"]["notes"].to_string();
    assert!(
        !notes.contains("not listed"),
        "the image was listed from containerd's root through the hostPath: {notes}"
    );
    let left = roprof_tests::settled(&Vec::new(), || {
        progs
            .iter()
            .copied()
            .filter(|id| roprof_tests::prog_loaded(*id))
            .collect::<Vec<u32>>()
    });
    assert!(
        left.is_empty(),
        "the agent's programs are unloaded: {left:?}"
    );
}
