//! The README's "In CI" section, followed step by step (issue 31): its
//! pre-release flow, its GitHub Actions gate job and its GitLab CI job are
//! read from README.md and run as a runner would, with the static binary of
//! `cargo xtask dist` and the fixture images gate-v1 (the release), gate-v2
//! (writes a new directory) and gate-v3 (changes nothing that matters) as
//! the application's Dockerfile. Hosted actions (`uses:`) are not run: the
//! files they are given must exist and parse (the `JUnit` report, the SARIF
//! against the published schema, the Markdown comment).

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use roprof_tests::{ContainerGuard, docker, owner, require_privileged, unique_name};
use serde_yaml_ng::Value;

/// `target/dist` of this workspace (or of `CARGO_TARGET_DIR`).
fn dist_bin() -> PathBuf {
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("dist/roprof");
    assert!(
        bin.is_file(),
        "expected the static binary at {}: build it with `cargo xtask dist` (`cargo xtask test` does)",
        bin.display()
    );
    bin
}

fn readme() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The fenced block of `lang` whose first line is `first`.
fn block(readme: &str, lang: &str, first: &str) -> String {
    let start = format!("```{lang}\n{first}\n");
    let i = readme
        .find(&start)
        .unwrap_or_else(|| panic!("expected a ```{lang} block starting `{first}` in README.md"));
    let body = &readme[i + "```".len() + lang.len() + 1..];
    let end = body.find("\n```").expect("a closed block");
    body[..end].to_owned()
}

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text)
        .unwrap_or_else(|e| panic!("expected the README's YAML to parse ({e}):\n{text}"))
}

/// A checkout of "the application": a Dockerfile FROM one fixture version,
/// the runner's tools on PATH (`sudo` as a pass-through since the tests
/// run as root, the engine's own docker client), and names unique to
/// this run in place of the README's `myapp`.
struct Runner {
    root: PathBuf,
    dir: PathBuf,
    shims: PathBuf,
    app: String,
}

impl Runner {
    fn new() -> Self {
        let root = std::env::temp_dir().join(unique_name("ci-recipes"));
        let dir = root.join("checkout");
        let shims = root.join("bin");
        for d in [&dir, &shims] {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("creating {}: {e}", d.display()));
        }
        let shim = |name: &str, body: &str| {
            let p = shims.join(name);
            fs::write(&p, body).expect("shim");
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod shim");
        };
        shim("sudo", "#!/bin/sh\nexec \"$@\"\n");
        if Path::new("/usr/bin/docker").is_file() {
            shim("docker", "#!/bin/sh\nexec /usr/bin/docker \"$@\"\n");
        }
        // The pre-release flow runs `roprof` as installed.
        std::os::unix::fs::symlink(dist_bin(), shims.join("roprof")).expect("roprof on PATH");
        let app = unique_name("roprof-ci-app");
        Self {
            root,
            dir,
            shims,
            app,
        }
    }

    /// The README's names made this run's.
    fn local(&self, s: &str) -> String {
        s.replace("myapp", &self.app)
    }

    fn app_from(&self, fixture: &str) {
        fs::write(
            self.dir.join("Dockerfile"),
            format!("FROM roprof-fixture/{fixture}:latest\n"),
        )
        .expect("Dockerfile");
    }

    /// Runs one shell step in the checkout; returns its exit code.
    fn sh(&self, script: &str, env: &[(String, String)]) -> i32 {
        let path = format!(
            "{}:{}",
            self.shims.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .args(["-eo", "pipefail", "-c", &self.local(script)])
            .current_dir(&self.dir)
            .env("PATH", path)
            .env("ROPROF_TEST_LABEL", owner())
            .env("GIT_AUTHOR_NAME", "ci")
            .env("GIT_AUTHOR_EMAIL", "ci@localhost")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@localhost")
            .envs(env.iter().map(|(k, v)| (k, self.local(v))))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running bash for `{script}`: {e}"));
        eprintln!(
            "step `{script}`: exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.code().unwrap_or(-1)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel.trim_end_matches('/'))
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for tag in ["1.0", "ci"] {
            let _ = docker(["rmi", "-f", &format!("{}:{tag}", self.app)]);
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The pre-release flow's commands, one per line, comments dropped.
fn pre_release(readme: &str) -> Vec<String> {
    block(
        readme,
        "sh",
        "sudo roprof profile -o roprof myapp:1.0      # roprof/report.json and every format",
    )
    .lines()
    .map(|l| l.split(" #").next().unwrap_or_default().trim().to_owned())
    .filter(|l| !l.is_empty() && !l.starts_with('#'))
    .collect()
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn env_of(job: &Value, key: &str) -> Vec<(String, String)> {
    job.get(key)
        .and_then(Value::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap_or_default().to_owned(),
                        v.as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a hosted action was given must be there, and parse.
fn check_action_input(r: &Runner, uses: &str, with: &Value) {
    let get = |k: &str| s(with, k).map(|p| r.path(p));
    if uses.starts_with("actions/upload-artifact") {
        let p = get("path").expect("upload-artifact path");
        assert!(p.exists(), "expected {} to upload", p.display());
    } else if uses.starts_with("mikepenz/action-junit-report") {
        let p = get("report_paths").expect("report_paths");
        let xml = fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        assert!(
            xml.starts_with("<?xml") && xml.contains("<testsuites"),
            "expected JUnit XML in {}:\n{xml}",
            p.display()
        );
    } else if uses.starts_with("marocchino/sticky-pull-request-comment") {
        let p = get("path").expect("comment path");
        let md = fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
        assert!(
            md.starts_with("## roprof check"),
            "expected the comment in {}:\n{md}",
            p.display()
        );
    } else if uses.starts_with("github/codeql-action/upload-sarif") {
        let p = get("sarif_file").expect("sarif_file");
        let j: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&p).expect("sarif")).expect("SARIF is JSON");
        assert_eq!(j["version"], "2.1.0", "{}", p.display());
    }
}

/// Runs the GitHub gate job as a runner would; returns the check step's
/// exit code.
fn github_gate(r: &Runner, wf: &Value) -> i32 {
    let job = &wf["jobs"]["gate"];
    let env = env_of(job, "env");
    let mut failed = false;
    let mut check = None;
    for step in job["steps"].as_sequence().expect("gate steps") {
        let always = s(step, "if").is_some_and(|c| c.contains("always()"));
        if failed && !always {
            continue;
        }
        if let Some(uses) = s(step, "uses") {
            if uses.starts_with("actions/download-artifact") {
                // The artifact of roprof-dist: the static binary, without
                // its exec bit (artifacts do not keep modes), in `with.path`.
                let dir = r.path(s(&step["with"], "path").unwrap_or("."));
                fs::create_dir_all(&dir).expect("artifact dir");
                let dst = dir.join("roprof");
                fs::copy(dist_bin(), &dst)
                    .unwrap_or_else(|e| panic!("downloading the binary to {}: {e}", dst.display()));
                fs::set_permissions(&dst, fs::Permissions::from_mode(0o644)).expect("chmod");
            } else if !uses.starts_with("actions/checkout") {
                check_action_input(r, uses, &step["with"]);
            }
            continue;
        }
        let run = s(step, "run").expect("a run or uses step");
        let code = r.sh(run, &env);
        if run.contains("roprof check") {
            check = Some(code);
        } else {
            assert_eq!(code, 0, "expected the step `{run}` to succeed");
        }
        failed |= code != 0;
    }
    check.expect("a check step")
}

/// Runs the GitLab job's script as a runner would (stopping at the first
/// failing line); returns the check line's exit code.
fn gitlab_gate(r: &Runner, ci: &Value) -> i32 {
    let job = &ci["roprof-gate"];
    let env = env_of(job, "variables");
    // The artifact of roprof-dist lands where that job built it.
    let artifact = r.dir.join("target/dist/roprof");
    fs::create_dir_all(artifact.parent().expect("dir")).expect("artifact dir");
    fs::copy(dist_bin(), &artifact).expect("artifact");
    let mut check = None;
    for line in job["script"].as_sequence().expect("script") {
        let line = line.as_str().expect("a script line");
        let code = r.sh(line, &env);
        if line.contains("roprof check") {
            check = Some(code);
        } else {
            assert_eq!(code, 0, "expected `{line}` to succeed");
        }
        if code != 0 {
            break;
        }
    }
    for p in job["artifacts"]["paths"]
        .as_sequence()
        .expect("artifact paths")
    {
        let p = r.path(p.as_str().expect("path"));
        assert!(p.exists(), "expected the artifact {}", p.display());
    }
    let junit = r.path(s(&job["artifacts"]["reports"], "junit").expect("reports.junit"));
    let xml =
        fs::read_to_string(&junit).unwrap_or_else(|e| panic!("reading {}: {e}", junit.display()));
    assert!(xml.contains("<testsuite "), "expected JUnit XML:\n{xml}");
    check.expect("a check line")
}

#[test]
fn the_readme_ci_recipes_run_step_by_step() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let text = readme();
    let r = Runner::new();
    let wf = yaml(&block(&text, "yaml", "# .github/workflows/roprof.yml"));
    let ci = yaml(&block(&text, "yaml", "# .gitlab-ci.yml"));
    // The binary both recipes use is what `cargo xtask dist` builds.
    let dist_steps = serde_yaml_ng::to_string(&wf["jobs"]["roprof-dist"]).expect("yaml");
    assert!(
        dist_steps.contains("cargo xtask dist") && dist_steps.contains("target/dist/roprof"),
        "{dist_steps}"
    );
    let gl_dist = serde_yaml_ng::to_string(&ci["roprof-dist"]).expect("yaml");
    assert!(
        gl_dist.contains("cargo xtask dist") && gl_dist.contains("target/dist/roprof"),
        "{gl_dist}"
    );

    let flow = pre_release(&text);
    assert_eq!(
        flow.len(),
        5,
        "expected profile, commit, check, update, commit: {flow:?}"
    );
    assert_eq!(r.sh("git init -q .", &[]), 0);
    // Release 1.0: profile once, commit the report.
    r.app_from("gate-v1");
    assert_eq!(r.sh("docker build -q -t myapp:1.0 .", &[]), 0);
    assert_eq!(
        r.sh(&flow[0], &[]),
        0,
        "expected `{}` to profile the release",
        flow[0]
    );
    assert!(
        r.path("roprof/report.json").is_file(),
        "expected the committed report"
    );
    assert_eq!(r.sh(&flow[1], &[]), 0);

    // A build that writes a new directory: both gates fail with exit 6.
    r.app_from("gate-v2");
    assert_eq!(
        github_gate(&r, &wf),
        6,
        "expected the GitHub gate to fail on gate-v2"
    );
    let junit = fs::read_to_string(r.path("roprof-out/check.junit.xml")).expect("junit");
    assert!(
        junit.contains("<failure") && junit.contains("/var/spool"),
        "{junit}"
    );
    fs::remove_dir_all(r.path("roprof-out")).expect("clean outputs");
    assert_eq!(
        gitlab_gate(&r, &ci),
        6,
        "expected the GitLab gate to fail on gate-v2"
    );
    fs::remove_dir_all(r.path("roprof-out")).expect("clean outputs");

    // A build that changes nothing that matters passes both.
    r.app_from("gate-v3");
    assert_eq!(
        github_gate(&r, &wf),
        0,
        "expected the GitHub gate to pass gate-v3"
    );
    let junit = fs::read_to_string(r.path("roprof-out/check.junit.xml")).expect("junit");
    assert!(!junit.contains("<failure"), "{junit}");
    fs::remove_dir_all(r.path("roprof-out")).expect("clean outputs");
    assert_eq!(
        gitlab_gate(&r, &ci),
        0,
        "expected the GitLab gate to pass gate-v3"
    );

    // The new directory is meant: the flow's check fails, --update accepts
    // it, and the gate passes the same build afterwards.
    r.app_from("gate-v2");
    assert_eq!(r.sh("docker build -q -t myapp:ci .", &[]), 0);
    assert_eq!(
        r.sh(&flow[2], &[]),
        6,
        "expected `{}` to fail on gate-v2",
        flow[2]
    );
    assert_eq!(
        r.sh(&flow[3], &[]),
        6,
        "expected `{}` to report the old baseline's failure",
        flow[3]
    );
    assert_eq!(
        r.sh(&flow[4], &[]),
        0,
        "expected `{}` to commit the new report",
        flow[4]
    );
    fs::remove_dir_all(r.path("roprof-out")).expect("clean outputs");
    assert_eq!(
        github_gate(&r, &wf),
        0,
        "expected the updated baseline to pass gate-v2"
    );
}
