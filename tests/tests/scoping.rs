//! Only the target container's processes appear, even with noisy
//! neighbours (other containers and host processes writing at the same time).

use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, WRITER_IMAGE, docker_ok, path_entry, profile_json,
    require_privileged, run_detached, running_roprof_containers, spawn_roprof, unique_name,
};

#[test]
fn noisy_neighbours_never_appear_in_the_profile() {
    require_privileged();
    let _g = ContainerGuard::new();
    let mut names = Vec::new();
    for i in 0..20 {
        let name = unique_name("noisy");
        run_detached(
            &name,
            BUSYBOX_IMAGE,
            &format!(
                "mkdir -p /srv/app; i=0; while true; do i=$((i+1)); echo x > /srv/app/noise{i}-$((i % 500)); mkdir -p /run/noise{i}; done"
            ),
        );
        names.push(name);
    }
    let dir = std::env::temp_dir().join(unique_name("hostnoise"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut host = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while true; do for i in 1 2 3 4 5; do echo x > {}/host$i; done; done",
            dir.display()
        ))
        .stdout(Stdio::null())
        .spawn()
        .expect("host writer starts");
    let r = profile_json(&["--duration", "8s", WRITER_IMAGE]);
    let _ = host.kill();
    let _ = host.wait();
    let _ = std::fs::remove_dir_all(&dir);
    for n in &names {
        docker_ok(["rm", "-f", n]);
    }
    let foreign: Vec<String> = r["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["path"].as_str())
        .filter(|p| p.contains("noise") || p.contains("hostnoise"))
        .map(str::to_owned)
        .collect();
    assert!(
        foreign.is_empty(),
        "expected 0 foreign paths, found {foreign:?}"
    );
    assert!(
        r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "/srv/app/abs.txt"),
        "the target's own writes are still there"
    );
}

/// The cgroup v2 directory of a running container's init process.
fn cgroup_dir(pid: &str) -> String {
    let line = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_else(|e| panic!("expected /proc/{pid}/cgroup to be readable: {e}"));
    let rel = line
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_else(|| panic!("expected a cgroup v2 line in {line:?}"));
    // The unified hierarchy's mount point: /sys/fs/cgroup, or
    // /sys/fs/cgroup/unified on hybrid hosts like this one.
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("/proc/self/mounts");
    let root = mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| f[1].to_owned())
        })
        .expect("expected a cgroup2 mount");
    format!("{root}{rel}")
}

/// Runs `script` on the host after moving the shell into `cgroup`: what a
/// runtime does when it runs (or re-executes) itself inside the container's
/// cgroup before the container's own namespaces exist.
fn in_cgroup(cgroup: &str, script: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > {cgroup}/cgroup.procs && exec {script}"))
        .status()
        .expect("sh runs");
    assert!(st.success(), "expected `{script}` to run in {cgroup}");
}

/// Tracing starts at the first exec made from the container's own mount
/// namespace: a host process that joins the container's cgroup and execs
/// there (as runc does when it re-executes itself from a memfd under
/// Podman) is the runtime, not the application, and its writes are not in
/// the profile; a process that enters the container's namespace (as `docker
/// exec` or `nsenter` do) and execs there is the application's.
#[test]
fn execs_in_the_cgroup_from_the_host_namespace_are_not_traced() {
    require_privileged();
    let _g = ContainerGuard::new();
    let host_dir = std::env::temp_dir().join(unique_name("hostns"));
    std::fs::create_dir_all(&host_dir).unwrap();
    let run = spawn_roprof(
        &[
            "profile",
            "--window",
            "fixed",
            "--duration",
            "12s",
            "--format",
            "json",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            "echo up > /run/app.up; sleep 60",
        ],
        &[],
    );
    // The container, once its entrypoint runs.
    let deadline = Instant::now() + Duration::from_mins(1);
    let pid = loop {
        let ids = running_roprof_containers();
        if let Some(id) = ids.first() {
            let pid = docker_ok(["inspect", "-f", "{{.State.Pid}}", id.as_str()]);
            let pid = pid.trim().to_owned();
            if pid != "0"
                && std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.contains("sleep"))
            {
                break pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "expected roprof's container to start within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let cgroup = cgroup_dir(&pid);
    let leak = host_dir.join("host-leak");
    in_cgroup(
        &cgroup,
        &format!("/bin/sh -c 'echo leak > {}'", leak.display()),
    );
    in_cgroup(
        &cgroup,
        &format!("nsenter -t {pid} -m -- /bin/sh -c 'echo in > /run/entered'"),
    );
    assert!(leak.exists(), "the host process wrote {}", leak.display());
    let done = run.finish(Duration::from_secs(90));
    let _ = std::fs::remove_dir_all(&host_dir);
    let r = done.report();
    let leaked: Vec<&str> = r["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["path"].as_str())
        .filter(|p| p.contains("host-leak") || p.contains("hostns"))
        .collect();
    assert!(
        leaked.is_empty(),
        "expected no write of the host-namespace process in the profile, found {leaked:?}"
    );
    assert!(
        path_entry(&r, "/run/app.up").is_some(),
        "expected the entrypoint's own write /run/app.up in the profile"
    );
    assert!(
        path_entry(&r, "/run/entered").is_some(),
        "expected the write of the process that entered the container's namespace (/run/entered)"
    );
}
