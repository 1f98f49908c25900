//! The coverage statement (issue 29): a server that listened and accepted
//! no connection during the window says so (stderr, `run.caveats`, the
//! docker output's comment), naming the port; with `--probe` it served a
//! request and says nothing; a program that never listens says nothing.

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, NGINX_IMAGE, STEPS_IMAGE, path_entry, require_privileged, roprof,
};

const PORT: &str = "18731";

fn profile(args: &[&str]) -> (serde_json::Value, String) {
    let mut all = vec!["profile", "--format", "json", "--duration", "6s"];
    all.extend_from_slice(args);
    let (code, out, err) = roprof(&all);
    assert_eq!(code, 0, "roprof profile {all:?} exits 0; stderr:\n{err}");
    let report =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("a JSON report ({e}): {out}"));
    (report, err)
}

fn no_request_served(r: &serde_json::Value) -> Vec<serde_json::Value> {
    r["run"]["caveats"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["kind"] == "no_request_served")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_server_without_probe_warns_it_served_no_request_and_with_probe_does_not() {
    require_privileged();
    let _g = ContainerGuard::new();
    let publish = format!("127.0.0.1:{PORT}:80");
    let (bare, err) = profile(&["-p", &publish, NGINX_IMAGE]);
    let caveats = no_request_served(&bare);
    assert_eq!(
        caveats.len(),
        1,
        "one no_request_served caveat: {}",
        bare["run"]
    );
    assert!(
        caveats[0]["ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p == "tcp/80")),
        "the caveat names tcp/80: {}",
        caveats[0]
    );
    assert!(
        err.contains("listened on tcp/80") && err.contains("--probe"),
        "stderr warns that no request was served, naming the port and --probe:\n{err}"
    );
    let path = std::env::temp_dir().join(format!("roprof-coverage-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&bare).unwrap()).unwrap();
    let (code, docker, rerr) = roprof(["render", "--format", "docker", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "render exits 0: {rerr}");
    assert!(
        docker
            .lines()
            .any(|l| l.starts_with("# roprof: WARNING:") && l.contains("tcp/80")),
        "the docker output carries the warning as a comment:\n{docker}"
    );

    let probe = format!("http://127.0.0.1:{PORT}/");
    let (probed, err) = profile(&["-p", &publish, "--probe", &probe, NGINX_IMAGE]);
    assert_eq!(
        probed["run"]["health"], "healthy",
        "the probe answered: {}",
        probed["run"]
    );
    assert!(
        no_request_served(&probed).is_empty() && !err.contains("accepted no connection"),
        "a probed server served a request and does not warn: {}\n{err}",
        probed["run"]
    );
}

#[test]
fn a_program_that_never_listens_gets_no_such_warning() {
    require_privileged();
    let _g = ContainerGuard::new();
    let (r, err) = profile(&[STEPS_IMAGE]);
    assert!(
        no_request_served(&r).is_empty() && !err.contains("accepted no connection"),
        "no listening socket, no warning: {}\n{err}",
        r["run"]
    );
}

/// A CGI handler that writes on each request, behind busybox httpd: the
/// file it writes is marked as written during the probe, the file the
/// entrypoint wrote as written at start, and the container's sockets are
/// in `run.served`.
#[test]
fn request_time_writes_are_marked_probe_and_startup_writes_start() {
    require_privileged();
    let _g = ContainerGuard::new();
    let port = "18732";
    let publish = format!("127.0.0.1:{port}:8080");
    let probe = format!("http://127.0.0.1:{port}/cgi-bin/up");
    let script = concat!(
        r#"mkdir -p /tmp/www/cgi-bin && printf '#!/bin/sh\nmkdir -p /var/lib/uploads && "#,
        r#"echo x > /var/lib/uploads/req\nprintf "Content-Type: text/plain\\r\\n\\r\\nok\\n"\n' "#,
        r#"> /tmp/www/cgi-bin/up && chmod 0755 /tmp/www/cgi-bin/up && echo started > /run/started "#,
        r#"&& exec httpd -f -p 8080 -h /tmp/www"#
    );
    let (r, err) = profile(&[
        "-p",
        &publish,
        "--probe",
        &probe,
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(r["run"]["health"], "healthy", "the CGI answered: {err}");
    let during = |p: &str| {
        path_entry(&r, p).unwrap_or_else(|| panic!("{p} observed: {}", r["paths"]))["during"]
            .clone()
    };
    assert_eq!(
        during("/var/lib/uploads/req"),
        "probe",
        "written by the request"
    );
    assert_eq!(during("/run/started"), "start", "written by the entrypoint");
    let served = &r["run"]["served"];
    assert!(
        served["listened"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p == "tcp/8080")),
        "{served}"
    );
    assert!(served["accepted"].as_u64() >= Some(1), "{served}");
}
