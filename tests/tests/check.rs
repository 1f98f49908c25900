//! `roprof check` (issue 31): a new version of an image checked against
//! the committed report of the first. gate-v1 is the baseline; gate-v2
//! writes into a new directory (fail, exit 6); gate-v3 changes nothing
//! that matters (pass); gate-v4 ships new files under the seeded mount
//! (warn; fail with --strict). `--update` writes a report whose plan runs
//! gate-v2 read-only. Two images profiled three times each render the same
//! bytes in every format but the JSON report.

use std::{
    fs,
    path::{Path, PathBuf},
};

use roprof_tests::{require_privileged, roprof, unique_name};

const V1: &str = "roprof-fixture/gate-v1:latest";
const V2: &str = "roprof-fixture/gate-v2:latest";
const V3: &str = "roprof-fixture/gate-v3:latest";
const V4: &str = "roprof-fixture/gate-v4:latest";
/// `roprof check`: the baseline no longer holds.
const EXIT_CHECK_FAILED: i32 = 6;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        let p = std::env::temp_dir().join(unique_name(what));
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Profiles `image` with `-o dir` and returns the report's path.
fn profile_into(image: &str, dir: &Path) -> PathBuf {
    let (code, _, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "json",
        "-o",
        s(dir),
        image,
    ]);
    assert_eq!(
        code, 0,
        "expected `roprof profile {image}` to exit 0; stderr:\n{err}"
    );
    dir.join("report.json")
}

/// Runs `roprof check --baseline BASELINE ARGS…`.
fn check(baseline: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check", "--quiet", "--baseline", s(baseline)];
    all.extend_from_slice(args);
    roprof(all)
}

fn findings(out: &serde_json::Value) -> Vec<(String, String, String)> {
    out["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("expected findings in the check's JSON: {out}"))
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap_or_default().to_owned(),
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("expected JSON ({e}):\n{text}"))
}

/// Reads XML start to end, failing on anything malformed; returns the
/// names of the elements seen and the `failures` attribute of the suite.
fn parse_junit(xml: &str) -> (Vec<String>, Option<String>) {
    use quick_xml::{Reader, events::Event};
    let mut r = Reader::from_str(xml);
    r.config_mut().check_end_names = true;
    let mut names = Vec::new();
    let mut failures = None;
    loop {
        match r.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let name: String = AsRef::<str>::as_ref(&e.name()).to_owned();
                if name == "testsuite" {
                    for a in e.attributes() {
                        let a = a.expect("well-formed attribute");
                        if AsRef::<str>::as_ref(&a.key) == "failures" {
                            failures = Some(a.value.to_string());
                        }
                    }
                }
                names.push(name);
            }
            Ok(_) => {}
            Err(e) => panic!(
                "expected well-formed JUnit XML, got {e} at {}:\n{xml}",
                r.buffer_position()
            ),
        }
    }
    (names, failures)
}

/// The published SARIF 2.1.0 schema (OASIS, errata01), vendored.
fn sarif_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sarif/sarif-schema-2.1.0.json");
    let schema = json(&fs::read_to_string(&path).expect("the vendored SARIF schema"));
    jsonschema::draft4::new(&schema).unwrap_or_else(|e| {
        panic!(
            "expected {} to compile as a draft-04 schema: {e}",
            path.display()
        )
    })
}

fn assert_valid_sarif(text: &str) {
    let v = sarif_validator();
    let doc = json(text);
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "expected SARIF valid against the 2.1.0 schema, got:\n{}\n{text}",
        errors.join("\n")
    );
}

#[test]
fn a_new_directory_fails_the_gate_naming_path_and_process_in_every_format() {
    require_privileged();
    let tmp = Scratch::new("check-v2");
    let baseline = profile_into(V1, &tmp.0.join("v1"));
    let out = tmp.0.join("out");
    let (code, stdout, err) = check(&baseline, &["--format", "json", "-o", s(&out), V2]);
    assert_eq!(
        code, EXIT_CHECK_FAILED,
        "expected exit 6 for gate-v2; stderr:\n{err}"
    );
    let j = json(&stdout);
    assert_eq!(j["passed"], false, "{j}");
    assert_eq!(j["schema_version"], 1, "{j}");
    let f = findings(&j);
    assert_eq!(
        f,
        vec![(
            "fail".to_owned(),
            "write-outside-plan".to_owned(),
            "/var/spool".to_owned()
        )],
        "expected one failure for gate-v2's new directory: {j}"
    );
    let procs = j["findings"][0]["processes"].to_string();
    assert!(
        procs.contains("gatewriter"),
        "expected the writing process named: {procs}"
    );
    let msg = j["findings"][0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("/var/spool/gate/job"),
        "expected the written path named: {msg}"
    );
    assert!(
        j["findings"][0]["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("--tmpfs /var/spool"),
        "expected the fix to name the mount to add: {j}"
    );
    assert_eq!(j["plan_diff"]["added"][0]["target"], "/var/spool", "{j}");

    let md = fs::read_to_string(out.join("check.md")).expect("check.md");
    for want in [
        "## roprof check ❌",
        "write-outside-plan",
        "/var/spool",
        "gatewriter",
        "```diff",
        "+ /var/spool",
        "```sh\ndocker run --read-only",
    ] {
        assert!(
            md.contains(want),
            "expected `{want}` in the Markdown:\n{md}"
        );
    }
    let (names, failures) =
        parse_junit(&fs::read_to_string(out.join("check.junit.xml")).expect("junit"));
    assert!(
        names.iter().any(|n| n == "failure"),
        "expected a <failure> in the JUnit: {names:?}"
    );
    assert_eq!(
        failures.as_deref(),
        Some("2"),
        "expected the plan case and the finding to fail"
    );
    let sarif = fs::read_to_string(out.join("check.sarif")).expect("check.sarif");
    assert_valid_sarif(&sarif);
    let sj = json(&sarif);
    assert_eq!(
        sj["runs"][0]["results"][0]["ruleId"], "write-outside-plan",
        "{sj}"
    );
    assert_eq!(sj["runs"][0]["results"][0]["level"], "error", "{sj}");
    // The text format (stdout's default) says the same.
    let text = fs::read_to_string(out.join("check.txt")).expect("check.txt");
    assert!(text.starts_with("roprof check: FAIL"), "{text}");
    assert!(
        text.contains("/var/spool") && text.contains("gatewriter"),
        "{text}"
    );
}

#[test]
fn a_version_that_changes_nothing_that_matters_passes() {
    require_privileged();
    let tmp = Scratch::new("check-v3");
    let baseline = profile_into(V1, &tmp.0.join("v1"));
    let (code, stdout, err) = check(&baseline, &["--format", "json", V3]);
    assert_eq!(
        code, 0,
        "expected gate-v3 to pass; stdout:\n{stdout}\nstderr:\n{err}"
    );
    let j = json(&stdout);
    assert_eq!(j["passed"], true, "{j}");
    assert_eq!(
        findings(&j),
        vec![],
        "expected no findings for gate-v3: {j}"
    );
    // The baseline's own image passes too, and SARIF without results is valid.
    let (code, sarif, err) = check(&baseline, &["--format", "sarif"]);
    assert_eq!(
        code, 0,
        "expected gate-v1 against itself to pass; stderr:\n{err}"
    );
    assert_valid_sarif(&sarif);
}

#[test]
fn new_files_under_a_seeded_mount_warn_and_fail_with_strict() {
    require_privileged();
    let tmp = Scratch::new("check-v4");
    let baseline = profile_into(V1, &tmp.0.join("v1"));
    let r = json(&fs::read_to_string(&baseline).expect("baseline"));
    assert!(
        r["plan"]["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .any(|m| m["target"] == "/srv/seed" && m["kind"] == "seeded_volume"),
        "expected the baseline to seed /srv/seed: {}",
        r["plan"]
    );
    let (code, stdout, err) = check(&baseline, &["--format", "json", V4]);
    assert_eq!(code, 0, "expected warnings alone to pass; stderr:\n{err}");
    let j = json(&stdout);
    assert_eq!(
        findings(&j),
        vec![(
            "warn".to_owned(),
            "stale-seed".to_owned(),
            "/srv/seed".to_owned()
        )],
        "{j}"
    );
    let msg = j["findings"][0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("/srv/seed/defaults.txt"),
        "expected the new file named: {msg}"
    );
    let (code, junit, err) = check(&baseline, &["--strict", "--format", "junit", V4]);
    assert_eq!(
        code, EXIT_CHECK_FAILED,
        "expected --strict to fail on the warning; stderr:\n{err}"
    );
    let (_, failures) = parse_junit(&junit);
    assert_eq!(failures.as_deref(), Some("2"), "{junit}");
}

#[test]
fn update_writes_a_report_whose_plan_runs_the_new_version_read_only() {
    require_privileged();
    let tmp = Scratch::new("check-update");
    let baseline = profile_into(V1, &tmp.0.join("v1"));
    let out = tmp.0.join("out");
    let (code, _, err) = check(&baseline, &["--update", "-o", s(&out), V2]);
    assert_eq!(
        code, EXIT_CHECK_FAILED,
        "the old baseline did not hold; stderr:\n{err}"
    );
    let updated = json(&fs::read_to_string(&baseline).expect("updated baseline"));
    assert_eq!(
        updated["image"]["image"], V2,
        "expected the baseline file to hold gate-v2's report"
    );
    for f in [
        "report.json",
        "docker.sh",
        "compose.yaml",
        "k8s.yaml",
        "check.md",
        "check.sarif",
    ] {
        assert!(out.join(f).is_file(), "expected -o to write {f}");
    }
    // The committed plan runs gate-v2 read-only, and the gate now passes.
    let (code, _, err) = roprof(["verify", "--quiet", "--report", s(&baseline), V2]);
    assert_eq!(
        code, 0,
        "expected the updated plan to verify gate-v2 read-only; stderr:\n{err}"
    );
    let (code, stdout, err) = check(&baseline, &[V2]);
    assert_eq!(
        code, 0,
        "expected the updated baseline to hold; stdout:\n{stdout}\nstderr:\n{err}"
    );
}

#[test]
fn outputs_are_byte_identical_across_profiles_of_the_same_image() {
    require_privileged();
    let tmp = Scratch::new("check-determinism");
    for image in [V1, V2] {
        let dirs: Vec<PathBuf> = (0..3)
            .map(|i| {
                let d = tmp
                    .0
                    .join(format!("{}-{i}", image.replace(['/', ':'], "_")));
                profile_into(image, &d);
                d
            })
            .collect();
        let mut names: Vec<String> = fs::read_dir(&dirs[0])
            .expect("output dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n != "report.json")
            .collect();
        names.sort();
        for want in [
            "compose.yaml",
            "docker.sh",
            "k8s.yaml",
            "kustomize.yaml",
            "report.md",
            "table.txt",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "expected {want} among {names:?}"
            );
        }
        for n in &names {
            let first = fs::read(dirs[0].join(n)).expect("output");
            for d in &dirs[1..] {
                let other = fs::read(d.join(n)).expect("output");
                assert!(
                    first == other,
                    "expected {n} of {image} byte-identical across profiles:\n--- first\n{}\n--- {}\n{}",
                    String::from_utf8_lossy(&first),
                    d.display(),
                    String::from_utf8_lossy(&other)
                );
            }
        }
    }
    // Two checks of the same images render the same findings too.
    let baseline = tmp.0.join("roprof-fixture_gate-v1_latest-0/report.json");
    let outs: Vec<PathBuf> = (0..2)
        .map(|i| {
            let d = tmp.0.join(format!("check-{i}"));
            let (code, _, err) = check(&baseline, &["-o", s(&d), V2]);
            assert_eq!(code, EXIT_CHECK_FAILED, "stderr:\n{err}");
            d
        })
        .collect();
    for f in [
        "check.txt",
        "check.md",
        "check.json",
        "check.junit.xml",
        "check.sarif",
    ] {
        let a = fs::read_to_string(outs[0].join(f)).expect("check output");
        let b = fs::read_to_string(outs[1].join(f)).expect("check output");
        assert_eq!(a, b, "expected {f} byte-identical across two checks");
    }
}
