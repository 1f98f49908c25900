//! A probe that never answers (#30): a warning on stderr and in every
//! output, and the plan is the one made without the probe.

use roprof_tests::{ContainerGuard, TempDir, WRITER_IMAGE, require_privileged, roprof};

const SCRIPT: &str = "mkdir -p /var/cache/app; while true; do echo x > /var/cache/app/f; \
                      echo y > /tmp/t; sleep 0.2; done";

fn profile(dir: &std::path::Path, probe: Option<&str>) -> (i32, String, serde_json::Value) {
    let out = dir.to_str().expect("utf-8 dir").to_owned();
    let mut args = vec!["profile", "--duration", "6s", "-o", &out];
    if let Some(p) = probe {
        args.extend(["--probe", p]);
    }
    args.extend(["--entrypoint", "/bin/sh", WRITER_IMAGE, "-c", SCRIPT]);
    let (code, _stdout, stderr) = roprof(&args);
    let json = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("report.json in {out}: {e}\nstderr: {stderr}"));
    (
        code,
        stderr,
        serde_json::from_str(&json).expect("report.json parses"),
    )
}

#[test]
fn a_probe_that_never_answers_is_a_warning_everywhere_and_keeps_the_plan() {
    require_privileged();
    let _g = ContainerGuard::new();
    // A port nothing listens on: bind, read the number, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let probe = format!("http://127.0.0.1:{port}/");
    let with = TempDir::new("probe");
    let without = TempDir::new("probe");
    let (code, stderr, report) = profile(&with.0, Some(&probe));
    assert!(
        stderr.contains("WARNING") && stderr.contains("never answered") && stderr.contains(&probe),
        "stderr warns that {probe} never answered (exit {code}):\n{stderr}"
    );
    for file in [
        "docker.sh",
        "compose.yaml",
        "k8s.yaml",
        "table.txt",
        "report.md",
        "report.json",
    ] {
        let text =
            std::fs::read_to_string(with.0.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            text.contains("never answered") || text.contains("probe_never_answered"),
            "{file} states that the probe never answered:\n{text}"
        );
    }
    assert_eq!(
        report["run"]["caveats"][0]["kind"], "probe_never_answered",
        "report.json: run.caveats names the probe"
    );
    let (_, _, plain) = profile(&without.0, None);
    assert_eq!(
        report["plan"]["mounts"], plain["plan"]["mounts"],
        "the plan with an unanswered probe equals the plan without it"
    );
}
