//! Only the target container's processes appear, even with noisy
//! neighbours (other containers and host processes writing at the same time).

use std::process::{Command, Stdio};

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, WRITER_IMAGE, docker_ok, profile_json, require_privileged,
    run_detached, unique_name,
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
