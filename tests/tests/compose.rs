//! `roprof profile --compose FILE` (issue 21): a two-service project (a
//! busybox web server whose CGI answers with what redis holds, reached by
//! its service name over the compose network) is profiled, written back
//! hardened, and the hardened file run with docker-compose: both services
//! read-only, healthy, and the web answering with the database's data on
//! its 127.0.0.1-published port. Bad input fails naming the file, line and
//! key, and leaves nothing behind.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use roprof_tests::{
    ContainerGuard, docker, free_port, pasted, require_privileged, roprof, unique_name,
};

/// The data only the database holds (its healthcheck stores it).
const ANSWER: &str = "db-holds-42";

/// A project directory under the temp dir, removed when dropped.
struct ProjectDir(PathBuf);

impl ProjectDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("compose"));
        std::fs::create_dir_all(dir.join("www/cgi-bin"))
            .unwrap_or_else(|e| panic!("expected to create {}: {e}", dir.display()));
        ProjectDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text)
            .unwrap_or_else(|e| panic!("expected to write {}: {e}", p.display()));
        p
    }

    /// docker-compose's project name for this directory (1.29: lowercase
    /// alphanumerics of its name).
    fn project(&self) -> String {
        self.0
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect()
    }
}

impl Drop for ProjectDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CGI: &str = r#"#!/bin/sh
echo "Content-Type: text/plain"
echo
answer=$(printf 'GET answer\r\nQUIT\r\n' | nc db 6379 | sed -n 2p | tr -d '\r')
echo "$answer" > /var/cache/web/last
echo "db says: $answer"
"#;

fn compose_yaml(port: u16) -> String {
    format!(
        r#"# A web front that answers with what the database holds.
services:
  web:
    image: roprof-fixture/busybox:latest
    # httpd serves the CGI, which caches the last answer
    command: ["sh", "-c", "mkdir -p /var/cache/web && exec httpd -f -p 8080 -h /www"]
    # httpd ignores SIGTERM as PID 1
    stop_grace_period: 2s
    ports:
      - "127.0.0.1:{port}:8080"
    volumes:
      - ./www:/www:ro
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://127.0.0.1:8080/cgi-bin/answer | grep -q {ANSWER}"]
      interval: 1s
      timeout: 3s
      retries: 30
  db:
    image: roprof-fixture/redis:latest
    healthcheck:
      # The database holds the answer once it is healthy.
      test: ["CMD-SHELL", "redis-cli set answer {ANSWER} | grep -q OK"]
      interval: 1s
      timeout: 3s
      retries: 30
"#
    )
}

fn project_with_web() -> (ProjectDir, PathBuf, u16) {
    let dir = ProjectDir::new();
    let cgi = dir.write("www/cgi-bin/answer", CGI);
    let chmod = std::process::Command::new("chmod")
        .arg("755")
        .arg(&cgi)
        .status();
    assert!(
        chmod.is_ok_and(|s| s.success()),
        "expected chmod 755 {}",
        cgi.display()
    );
    let port = free_port();
    let file = dir.write("compose.yaml", &compose_yaml(port));
    (dir, file, port)
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    Some(buf)
}

fn inspect(id: &str, format: &str) -> String {
    String::from_utf8_lossy(&docker(["inspect", "-f", format, id]).stdout)
        .trim()
        .to_owned()
}

/// What roprof created for the project while profiling (network, volumes,
/// containers named after it) is gone.
fn assert_nothing_left(project: &str) {
    for (what, args) in [
        ("network", vec!["network", "ls", "--format", "{{.Name}}"]),
        ("volume", vec!["volume", "ls", "--format", "{{.Name}}"]),
        ("container", vec!["ps", "-a", "--format", "{{.Names}}"]),
    ] {
        let out = String::from_utf8_lossy(&docker(&args).stdout).into_owned();
        let left: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(&format!("{project}-roprof")))
            .collect();
        assert!(
            left.is_empty(),
            "expected roprof to remove every {what} it created, found {left:?}"
        );
    }
}

#[test]
fn a_two_service_project_is_profiled_and_its_hardened_file_runs_healthy() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let (dir, file, port) = project_with_web();
    let hardened = dir.0.join("compose.hardened.yaml");
    let t = Instant::now();
    let (code, stdout, stderr) = roprof([
        "profile".as_ref(),
        "--quiet".as_ref(),
        "--compose".as_ref(),
        file.as_os_str(),
        "--verify".as_ref(),
        "-o".as_ref(),
        hardened.as_os_str(),
    ]);
    let took = t.elapsed();
    eprintln!("profile --compose --verify took {:.1}s", took.as_secs_f64());
    assert_eq!(
        code, 0,
        "expected profile --compose --verify to pass:\n{stderr}"
    );
    assert!(
        stdout.is_empty(),
        "expected nothing on stdout with -o FILE, got:\n{stdout}"
    );
    for svc in ["web", "db"] {
        assert!(
            stderr.contains(&format!("--verify: services.{svc}: ok (running, healthy)")),
            "expected docker-compose --verify to find {svc} running and healthy:\n{stderr}"
        );
    }
    // -q is quiet: docker-compose's own lines ("Creating …", "Stopping …")
    // are kept back unless it fails (issue 30).
    assert!(
        !stderr.contains("Creating") && !stderr.contains("Removing"),
        "expected no docker-compose lines under --quiet:\n{stderr}"
    );
    assert_nothing_left(&dir.project());

    let text = std::fs::read_to_string(&hardened)
        .unwrap_or_else(|e| panic!("expected the hardened file at {}: {e}", hardened.display()));
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("expected the hardened file to parse: {e}\n{text}"));
    let original: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&compose_yaml(port)).unwrap_or_else(|e| panic!("fixture: {e}"));
    for svc in ["web", "db"] {
        let s = &doc["services"][svc];
        assert_eq!(
            s["read_only"].as_bool(),
            Some(true),
            "services.{svc} read_only:\n{text}"
        );
        for key in ["image", "healthcheck", "ports", "command", "depends_on"] {
            assert_eq!(
                s[key], original["services"][svc][key],
                "expected services.{svc}.{key} kept as written:\n{text}"
            );
        }
    }
    assert!(
        text.starts_with(
            &compose_yaml(port)
                .lines()
                .take(6)
                .collect::<Vec<_>>()
                .join("\n")
        ) && text.contains("# The database holds the answer once it is healthy."),
        "expected the comments and the original lines kept:\n{text}"
    );
    assert!(
        doc["services"]["web"]["volumes"][0].as_str() == Some("./www:/www:ro"),
        "expected the user's bind kept first:\n{text}"
    );

    // The hardened file, run as a user runs it.
    let project = pasted::compose_up_file(&hardened).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    for svc in ["db", "web"] {
        let id = project.container(svc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            inspect(&id, "{{.HostConfig.ReadonlyRootfs}}"),
            "true",
            "expected services.{svc} to run with a read-only root"
        );
        loop {
            let health = inspect(&id, "{{.State.Health.Status}}");
            if health == "healthy" {
                break;
            }
            assert!(
                Instant::now() < deadline && health != "unhealthy",
                "expected services.{svc} to become healthy, it is `{health}`; logs:\n{}",
                String::from_utf8_lossy(&docker(["logs", "--tail", "20", id.as_str()]).stderr)
            );
            thread::sleep(Duration::from_millis(500));
        }
    }
    let answer = http_get(port, "/cgi-bin/answer").unwrap_or_default();
    assert!(
        answer.contains(&format!("db says: {ANSWER}")),
        "expected the web service to answer with the database's data over the compose network, got:\n{answer}"
    );
}

#[test]
fn one_service_can_be_selected_and_the_others_stay_as_written() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let (dir, file, port) = project_with_web();
    let (code, stdout, stderr) = roprof([
        "profile".as_ref(),
        "--quiet".as_ref(),
        "--compose".as_ref(),
        file.as_os_str(),
        "--service".as_ref(),
        "db".as_ref(),
    ]);
    assert_eq!(
        code, 0,
        "expected profile --compose --service db to pass:\n{stderr}"
    );
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&stdout)
        .unwrap_or_else(|e| panic!("expected the hardened file on stdout to parse: {e}\n{stdout}"));
    let original: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&compose_yaml(port)).unwrap_or_else(|e| panic!("fixture: {e}"));
    assert_eq!(
        doc["services"]["db"]["read_only"].as_bool(),
        Some(true),
        "{stdout}"
    );
    assert_eq!(
        doc["services"]["web"], original["services"]["web"],
        "expected the unselected web service unchanged:\n{stdout}"
    );
    assert!(
        doc["services"]["db"]["volumes"]
            .as_sequence()
            .is_some_and(|v| v
                .iter()
                .any(|m| m["target"].as_str() == Some("/var/lib/redis"))),
        "expected redis's data directory to get a volume:\n{stdout}"
    );
    assert_nothing_left(&dir.project());
}

/// Runs `roprof profile --compose FILE` on `yaml` and checks it fails with
/// exit 1 and a message naming `file:line` and the key.
fn refused(yaml: &str, extra: &[&str], want: &[&str]) {
    let dir = ProjectDir::new();
    let file = dir.write("compose.yaml", yaml);
    let mut args = vec!["profile".as_ref(), "--compose".as_ref(), file.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (code, stdout, stderr) = roprof(&args);
    assert_eq!(
        code, 1,
        "expected exit 1 for {want:?}, got {code}:\n{stderr}"
    );
    assert!(
        stdout.is_empty(),
        "expected nothing on stdout, got:\n{stdout}"
    );
    let at = |s: &str| s.replace("FILE", &file.display().to_string());
    for w in want {
        assert!(
            stderr.contains(&at(w)),
            "expected `{}` in:\n{stderr}",
            at(w)
        );
    }
    assert_nothing_left(&dir.project());
}

#[test]
fn an_unknown_service_is_named_with_the_services_the_file_has() {
    require_privileged();
    refused(
        &compose_yaml(free_port()),
        &["--service", "nope"],
        &["FILE:2: services: --service nope: no such service (the file has: web, db)"],
    );
}

#[test]
fn yaml_that_does_not_parse_is_named_by_line() {
    require_privileged();
    refused(
        "services:\n  web:\n    image: busybox\n    command: [\"sh\"\n  db:\n    image: x\n",
        &[],
        &["FILE:5:", "the YAML does not parse"],
    );
}

#[test]
fn an_image_missing_locally_is_named_by_line_and_key() {
    require_privileged();
    let yaml = "services:\n  web:\n    image: roprof-fixture/busybox:latest\n    depends_on: [db]\n  db:\n    image: roprof-fixture/no-such-image:latest\n";
    refused(
        yaml,
        &["--service", "web"],
        &[
            "FILE:6: services.db.image: image `roprof-fixture/no-such-image:latest` is not present locally",
        ],
    );
}

#[test]
fn build_without_image_is_refused_by_line_and_key() {
    require_privileged();
    refused(
        "services:\n  app:\n    # built locally\n    build: ./app\n",
        &[],
        &["FILE:4: services.app.build: `build:` without `image:`"],
    );
}

#[test]
fn a_dependency_that_is_not_a_service_is_named() {
    require_privileged();
    refused(
        "services:\n  web:\n    image: roprof-fixture/busybox:latest\n    depends_on:\n      - cache\n",
        &[],
        &[
            "FILE:4: services.web.depends_on: depends on `cache`, which is not a service of this file",
        ],
    );
}

#[test]
fn sigint_while_a_dependency_starts_removes_the_containers_network_and_volumes() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let (dir, file, _port) = project_with_web();
    let path = file.display().to_string();
    let mut run = roprof_tests::spawn_roprof(&["profile", "--compose", &path], &[]);
    run.wait_for_stderr(
        "services.db: started (dependency, not traced)",
        Duration::from_mins(1),
    );
    run.signal(libc::SIGINT);
    let done = run.finish(Duration::from_mins(1));
    assert_eq!(
        done.code,
        Some(130),
        "expected exit 130 after SIGINT:\n{}",
        done.stderr
    );
    assert!(
        done.stdout.is_empty(),
        "expected no hardened file from an interrupted profile, got:\n{}",
        done.stdout
    );
    assert_nothing_left(&dir.project());
}
