//! `roprof guard`, the production mode (issue 32): it reports the failed
//! writes of read-only containers, those running before it started and
//! those started later, on Docker and on containerd (driven with `ctr`),
//! once per key with the mount that fixes them, counts repeats, leaves
//! writable containers alone, and writes reports that `roprof render`
//! reads. (Kubernetes, the patched pod and the `DaemonSet`:
//! `guard_kubernetes.rs`.)

use std::{
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use roprof_tests::{
    ContainerGuard, TempDir,
    agent::Agent,
    containerd::{CONTAINERD_SOCKET, Namespace},
    docker_ok, free_port,
    guard::{
        GUARD_IMAGE, assert_finding, image, of, run, run_with, start_guard, start_guard_with,
        stop_guard, stop_guard_with, writes,
    },
    owner_label,
    proxy::EngineProxy,
    roprof, unique_name,
};

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
    // uid 1000 may not write the root-owned tmpfs (a mount with the wrong
    // owner: reported), nor search the image's /root (the image's own
    // permissions: not reported).
    let id = run_with(
        &name,
        &[
            "--read-only",
            "--user",
            "1000:1000",
            "--tmpfs",
            "/cache:mode=755",
        ],
        "while true; do echo x > /cache/f 2>/dev/null; echo x > /root/f 2>/dev/null; sleep 0.2; done",
    );
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
    // Gone (exited and removed) by the time guard inspects them, or soon
    // after it guarded them.
    for _ in 0..5 {
        let name = unique_name("guard-brief");
        run_with(
            &name,
            &["--rm", "--read-only"],
            "echo x > /srv/f 2>/dev/null; true",
        );
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
