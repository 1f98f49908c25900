//! `roprof merge` (issue 29): two reports of one image made with different
//! exercises merge into one plan, the union of what each needed, whose
//! docker line serves both exercises read-only; reports whose run options
//! differ are refused, naming the field.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use roprof_tests::{ContainerGuard, STEPS_IMAGE, TempDir, pasted, require_privileged, roprof};

const PORT: u16 = 18761;

/// The exercise that calls CGI script `cgi` until it answers "`cgi` ok".
fn exercise(cgi: &str) -> String {
    format!(
        "for i in $(seq 50); do case $(curl -fsS http://127.0.0.1:{PORT}/cgi-bin/{cgi} 2>/dev/null) in \
         *'{cgi} ok'*) exit 0;; esac; sleep 0.2; done; exit 1"
    )
}

/// `roprof profile -o DIR` of the steps server with exercise `cgi`.
fn profile(dir: &Path, cgi: &str) -> serde_json::Value {
    let publish = format!("127.0.0.1:{PORT}:8080");
    let probe = format!("http://127.0.0.1:{PORT}/");
    let ex = exercise(cgi);
    let args = [
        "profile",
        "--quiet",
        "--format",
        "json",
        "-o",
        dir.to_str().unwrap(),
        "-p",
        &publish,
        "--probe",
        &probe,
        "--exercise",
        &ex,
        STEPS_IMAGE,
        "serve",
    ];
    let (code, _, err) = roprof(args);
    assert_eq!(
        code,
        0,
        "expected `roprof {}` to exit 0; stderr:\n{err}",
        args.join(" ")
    );
    read_report(&dir.join("report.json"))
}

fn read_report(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("expected {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} parses: {e}", path.display()))
}

fn targets(r: &serde_json::Value) -> Vec<String> {
    r["plan"]["mounts"]
        .as_array()
        .expect("plan.mounts")
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_owned())
        .collect()
}

/// The body of `GET path` on the published port, retried for a few
/// seconds while the server starts.
fn get(path: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = || -> Result<String, String> {
            let mut s =
                TcpStream::connect_timeout(&([127, 0, 0, 1], PORT).into(), Duration::from_secs(2))
                    .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))
                .map_err(|e| e.to_string())?;
            write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)
                .map_err(|e| format!("read: {e}"))?;
            match buf.split_once("\r\n\r\n") {
                Some((head, body)) if head.contains(" 200 ") => Ok(body.to_owned()),
                _ => Err(format!("answered {buf:?}")),
            }
        };
        match attempt() {
            Ok(body) => return Ok(body),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Runs docker line `line` as pasted and returns its answers to the CGI
/// scripts `cgis`; the container is removed after.
fn serve(line: &str, cgis: &[&str]) -> Vec<String> {
    let _run = pasted::run_docker_line(line).unwrap_or_else(|e| panic!("{e}"));
    cgis.iter()
        .map(|cgi| {
            get(&format!("/cgi-bin/{cgi}"))
                .unwrap_or_else(|e| panic!("the server of `{line}` did not answer {cgi}: {e}"))
        })
        .collect()
}

#[test]
fn merge_of_two_exercises_is_the_union_and_its_docker_line_serves_both_read_only() {
    require_privileged();
    let _g = ContainerGuard::new();
    let (a, b, merged) = (
        TempDir::new("roprof-merge"),
        TempDir::new("roprof-merge"),
        TempDir::new("roprof-merge"),
    );
    let ra = profile(&a.0, "a");
    let rb = profile(&b.0, "b");
    assert_eq!(
        targets(&ra),
        ["/var/lib/steps"],
        "exercise a writes /var/lib/steps only"
    );
    assert_eq!(
        targets(&rb),
        ["/var/cache/steps"],
        "exercise b writes /var/cache/steps only"
    );

    let first = a.0.join("report.json").display().to_string();
    let second = b.0.join("report.json").display().to_string();
    let (code, out, err) = roprof([
        "merge",
        "--format",
        "docker",
        "-o",
        merged.0.to_str().unwrap(),
        &first,
        &second,
    ]);
    assert_eq!(code, 0, "expected merge to exit 0; stderr:\n{err}");
    assert!(
        out.contains("docker run "),
        "the docker line on stdout: {out}"
    );
    let m = read_report(&merged.0.join("report.json"));
    assert_eq!(
        targets(&m),
        ["/var/cache/steps", "/var/lib/steps"],
        "the union: {}",
        m["plan"]
    );
    assert_eq!(m["run"]["mode"], "merge");
    let sources = |path: &str| -> Vec<String> {
        m["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .find(|s| s["path"] == path)
            .map(|s| serde_json::from_value(s["reports"].clone()).unwrap())
            .unwrap_or_default()
    };
    assert_eq!(
        sources("/var/lib/steps/a.txt"),
        std::slice::from_ref(&first),
        "a.txt came from a's report"
    );
    assert_eq!(
        sources("/var/cache/steps/b.txt"),
        std::slice::from_ref(&second),
        "b.txt came from b's report"
    );
    for f in ["docker.sh", "compose.yaml", "k8s.yaml", "report.md"] {
        assert!(
            merged.0.join(f).exists(),
            "merge -o writes every format: {f} missing"
        );
    }

    // The merged line, pasted read-only: both exercises' writes succeed;
    // a's own line fails b's write (the merge is what covers both).
    let line = std::fs::read_to_string(merged.0.join("docker.sh")).unwrap();
    assert!(line.contains("--read-only"), "{line}");
    let answers = serve(&line, &["a", "b"]);
    for (cgi, body) in ["a", "b"].iter().zip(&answers) {
        assert!(
            body.contains(&format!("{cgi} ok")),
            "expected exercise {cgi}'s write to succeed read-only under the merged plan; got \
             {body:?}\n{line}"
        );
    }
    let line_a = std::fs::read_to_string(a.0.join("docker.sh")).unwrap();
    let answers = serve(&line_a, &["b"]);
    assert!(
        answers[0].contains("b failed"),
        "b's write fails under a's plan alone: {answers:?}"
    );

    // A report of another user is refused, naming the field and both files.
    let mut other = rb.clone();
    other["run_options"]["user"] = serde_json::json!("1000");
    let other_path = b.0.join("other-user.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let (code, out, err) = roprof(["merge", &first, other_path.to_str().unwrap()]);
    assert_eq!(code, 1, "a mismatch is an error; stderr:\n{err}");
    assert!(out.is_empty(), "nothing on stdout when refused: {out}");
    assert!(
        err.contains("run_options.user") && err.contains(&first) && err.contains("other-user.json"),
        "the error names the field and both reports:\n{err}"
    );
}
