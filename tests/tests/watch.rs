//! `roprof watch`, the node agent (issue 18): it profiles exactly the
//! containers its filters select, short-lived ones included, on Docker and
//! on containerd (driven with `ctr`), merges replicas into one plan, and
//! leaves nothing behind when interrupted.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, TEST_LABEL,
    agent::Agent,
    containerd::{CONTAINERD_SOCKET, Namespace},
    docker, docker_ok, owner_label, pasted, require_privileged, roprof_containers, settled,
    spawn_roprof, unique_name,
};

fn out_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique_name(prefix));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Starts `roprof watch ARGS -o DIR` and waits until it watches.
fn start_watch(args: &[&str], dir: &Path) -> Agent {
    let dir = dir.to_str().expect("temp dir is UTF-8");
    let mut all = vec!["watch", "-o", dir];
    all.extend_from_slice(args);
    Agent::start(&all, &[], "roprof: watching", 6)
}

/// Stops watch with SIGINT, asserts exit 0 and that its BPF programs are
/// gone; returns its stderr.
fn stop_watch(w: Agent) -> String {
    w.stop(libc::SIGINT, Duration::from_mins(2)).stderr
}

fn report(dir: &Path, name: &str, stderr: &str) -> serde_json::Value {
    let p = dir.join(name).join("report.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "expected a report at {} ({e}); the directory holds {:?}; stderr:\n{stderr}",
            p.display(),
            subdirs(dir)
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

fn subdirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn paths(r: &serde_json::Value) -> Vec<String> {
    r["paths"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["path"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_paths(r: &serde_json::Value, want: &[&str], what: &str) {
    let have = paths(r);
    for w in want {
        assert!(
            have.iter().any(|p| p == w),
            "{what}: expected {w} among the observed paths, got {have:?}"
        );
    }
}

fn run_labelled(name: &str, labels: &[String], detach: bool, script: &str) {
    let mut args: Vec<String> = vec!["run".into()];
    if detach {
        args.push("-d".into());
    } else {
        args.push("--rm".into());
    }
    for l in [TEST_LABEL.to_owned(), owner_label()].iter().chain(labels) {
        args.push("--label".into());
        args.push(l.clone());
    }
    args.extend(["--name".into(), name.into(), BUSYBOX_IMAGE.into()]);
    args.extend(["sh".into(), "-c".into(), script.into()]);
    docker_ok(&args);
}

#[test]
fn docker_watch_profiles_exactly_the_labelled_containers() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = out_dir("roprof-watch");
    let tag = unique_name("w");
    let select = format!("roprof.watch={tag}");
    let w = start_watch(&["--label", &select], &dir);
    let quick = unique_name("quick");
    let long = unique_name("long");
    let other = unique_name("unlabelled");
    // Lives a few milliseconds, and is removed at once (--rm).
    run_labelled(
        &quick,
        std::slice::from_ref(&select),
        false,
        "echo q > /tmp/quick",
    );
    run_labelled(
        &long,
        std::slice::from_ref(&select),
        true,
        "mkdir -p /var/cache/app && echo x > /var/cache/app/data && sleep 300",
    );
    run_labelled(&other, &[], true, "echo u > /tmp/unlabelled && sleep 300");
    std::thread::sleep(Duration::from_secs(3));
    let err = stop_watch(w);
    let got = subdirs(&dir);
    let mut want = vec![quick.clone(), long.clone()];
    want.sort();
    assert_eq!(
        got, want,
        "exactly the two labelled containers have reports (not {other}); stderr:\n{err}"
    );
    let q = report(&dir, &quick, &err);
    assert_paths(&q, &["/tmp/quick"], "the container that lived milliseconds");
    assert_eq!(q["run"]["incomplete"], false, "it exited on its own");
    assert_eq!(q["run"]["ended"], "exited");
    assert_eq!(q["run"]["mode"], "watch");
    let l = report(&dir, &long, &err);
    assert_paths(&l, &["/var/cache/app/data"], "the long-running container");
    assert_eq!(
        l["run"]["incomplete"], true,
        "still running at SIGINT: its report is marked incomplete"
    );
    for f in [
        "docker.sh",
        "compose.yaml",
        "k8s.yaml",
        "report.md",
        "table.txt",
    ] {
        assert!(
            dir.join(&long).join(f).is_file(),
            "every format is written beside report.json: {f} is missing"
        );
    }
    assert!(
        !paths(&l).iter().any(|p| p.contains("unlabelled")),
        "no record of the unlabelled container leaks into another report"
    );
    assert_eq!(roprof_containers(), 0, "no listing container is left");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 30 item 7: a watched container's report carries how it was
/// started (command, user, workdir, ports, env names, never values), and
/// its pasted docker line runs that command.
#[test]
fn docker_watch_reports_keep_the_command_ports_user_and_env_names() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = out_dir("roprof-watch-run");
    let tag = unique_name("w");
    let select = format!("roprof.watch={tag}");
    let w = start_watch(&["--label", &select], &dir);
    let name = unique_name("started");
    let port = 20000 + std::process::id() % 10000;
    let publish = format!("127.0.0.1:{port}:8080");
    let secret = "hunter2-never-in-a-report";
    let script = "mkdir -p /tmp/w && echo x > /tmp/w/f && sleep 300";
    let label = |l: &str| ["--label".to_owned(), l.to_owned()];
    let mut args: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
    for l in [TEST_LABEL.to_owned(), owner_label(), select.clone()] {
        args.extend(label(&l));
    }
    args.extend(
        [
            "-p",
            &publish,
            "-e",
            &format!("ROPROF_WATCH_TOKEN={secret}"),
            "-u",
            "1000",
            "-w",
            "/tmp",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            script,
        ]
        .map(str::to_owned),
    );
    docker_ok(&args);
    std::thread::sleep(Duration::from_secs(3));
    let err = stop_watch(w);
    let r = report(&dir, &name, &err);
    let run = &r["run_options"];
    assert_eq!(
        run["command"],
        serde_json::json!(["sh", "-c", script]),
        "{run}"
    );
    assert_eq!(run["publish"], serde_json::json!([publish]), "{run}");
    assert_eq!(run["user"], "1000", "{run}");
    assert_eq!(run["workdir"], "/tmp", "{run}");
    assert!(
        run["env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v["name"] == "ROPROF_WATCH_TOKEN")),
        "the variable's name is kept: {run}"
    );
    for f in std::fs::read_dir(dir.join(&name)).expect("the report dir") {
        let f = f.expect("an entry").path();
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !text.contains(secret),
            "{} holds the env value",
            f.display()
        );
    }
    // The pasted line runs the profiled command (the original goes first:
    // it holds the port).
    docker_ok(["rm", "-f", name.as_str()]);
    let line = std::fs::read_to_string(dir.join(&name).join("docker.sh")).expect("docker.sh");
    let pasted = pasted::run_docker_line(&line).unwrap_or_else(|e| panic!("{e}"));
    let seen = settled(&"x".to_owned(), || {
        let out = docker(["exec", pasted.name.as_str(), "cat", "/tmp/w/f"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    });
    assert_eq!(
        seen, "x",
        "the pasted line ran the command read-only:\n{line}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn docker_watch_merges_replicas_into_one_plan() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = out_dir("roprof-watch-replicas");
    let tag = unique_name("r");
    let select = format!("roprof.watch={tag}");
    let project = unique_name("proj");
    let labels = [
        select.clone(),
        format!("com.docker.compose.project={project}"),
        "com.docker.compose.service=web".to_owned(),
    ];
    let w = start_watch(&["--label", &select], &dir);
    let a = unique_name("web-1");
    let b = unique_name("web-2");
    run_labelled(
        &a,
        &labels,
        false,
        "mkdir -p /var/cache/web && echo 1 > /var/cache/web/one",
    );
    run_labelled(
        &b,
        &labels,
        false,
        "mkdir -p /var/cache/web && echo 2 > /var/cache/web/two; echo t > /tmp/t",
    );
    std::thread::sleep(Duration::from_secs(3));
    let err = stop_watch(w);
    let key = format!("compose-{project}-web");
    assert_eq!(
        subdirs(&dir),
        {
            let mut v = vec![a.clone(), b.clone(), key.clone()];
            v.sort();
            v
        },
        "one report per replica and one merged plan; stderr:\n{err}"
    );
    let m = report(&dir, &key, &err);
    assert_paths(
        &m,
        &["/var/cache/web/one", "/var/cache/web/two", "/tmp/t"],
        "the merged plan",
    );
    let notes = m["run"]["notes"].to_string();
    assert!(
        notes.contains("2 replicas") && notes.contains(&a) && notes.contains(&b),
        "the merged report names its replicas: {notes}"
    );
    let targets: Vec<String> = m["plan"]["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["target"].as_str().map(str::to_owned))
        .collect();
    // Both replicas ran the same `mkdir -p /var/cache/web`: each one's own
    // report has it (records of one container never stand for another's).
    for r in [&a, &b] {
        let rep = report(&dir, r, &err);
        assert_paths(&rep, &["/var/cache", "/var/cache/web"], r);
    }
    for p in ["/var/cache/web/one", "/var/cache/web/two", "/tmp/t"] {
        assert!(
            targets
                .iter()
                .any(|t| p.starts_with(&format!("{}/", t.trim_end_matches('/')))),
            "the merged plan has a mount over {p} (written by one replica only), got {targets:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn containerd_watch_profiles_exactly_the_labelled_containers() {
    require_privileged();
    let ns = Namespace::new("watch", &[BUSYBOX_IMAGE]);
    let image = ns.image(BUSYBOX_IMAGE);
    let dir = out_dir("roprof-watch-ctr");
    let w = start_watch(
        &[
            "--runtime",
            "containerd",
            "--containerd-socket",
            CONTAINERD_SOCKET,
            "--namespace",
            &ns.0,
            "--label",
            "roprof.watch=yes",
        ],
        &dir,
    );
    // A short-lived container (removed with its task: --rm), a long one,
    // and one without the label.
    ns.run(&[
        "--rm",
        "--label",
        "roprof.watch=yes",
        &image,
        "quick",
        "sh",
        "-c",
        "echo q > /tmp/quick",
    ]);
    ns.run(&[
        "-d",
        "--label",
        "roprof.watch=yes",
        &image,
        "long",
        "sh",
        "-c",
        "mkdir -p /var/cache/app && echo x > /var/cache/app/data && sleep 300",
    ]);
    ns.run(&[
        "-d",
        &image,
        "unlabelled",
        "sh",
        "-c",
        "echo u > /tmp/unlabelled && sleep 300",
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let err = stop_watch(w);
    assert_eq!(
        subdirs(&dir),
        ["long", "quick"],
        "exactly the two labelled containers have reports; stderr:\n{err}"
    );
    let q = report(&dir, "quick", &err);
    assert_paths(&q, &["/tmp/quick"], "the short-lived ctr container");
    assert_eq!(q["run"]["incomplete"], false);
    let l = report(&dir, "long", &err);
    assert_paths(&l, &["/var/cache/app/data"], "the long ctr container");
    assert_eq!(l["run"]["incomplete"], true, "running at SIGINT");
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_containerd_socket_is_a_clear_error() {
    require_privileged();
    let dir = out_dir("roprof-watch-bad");
    let r = spawn_roprof(
        &[
            "watch",
            "--runtime",
            "containerd",
            "--containerd-socket",
            "/nonexistent/containerd.sock",
            "-o",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    let f = r.finish(Duration::from_secs(30));
    assert_eq!(f.code, Some(1), "a bad socket exits 1: {}", f.stderr);
    assert!(
        f.stderr.contains("/nonexistent/containerd.sock")
            && f.stderr.contains("--containerd-socket"),
        "the error names the socket and the flag: {}",
        f.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
