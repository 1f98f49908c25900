//! Tests of the environment in every format: names by default, values only
//! when revealed, env files by path, Secrets in Kubernetes, 0600 files,
//! schema 1 reports still rendered.

use std::os::unix::fs::PermissionsExt as _;

use serde_yaml_ng::Value;

use super::{Format, compose, docker, json, k8s, render, write_all};
use crate::{
    environment::{ContainerEnv, apply_policy},
    model::{
        CPath, EnvValues, EnvVar, MountKind, MountOptions, PlannedMount, Report, RunOptions,
        SCHEMA_VERSION,
    },
};

const SECRET: &str = "hunter2-secret";
const ENV_FILE: &str = "/home/me/app.env";

/// What a `profile -e DB_PASSWORD=hunter2-secret -e PASSED --env-file …`
/// report holds before the policy is applied.
fn revealed() -> Report {
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        run_options: RunOptions {
            env: vec![
                EnvVar {
                    name: "DB_PASSWORD".into(),
                    value: Some(SECRET.into()),
                },
                EnvVar {
                    name: "PASSED".into(),
                    value: None,
                },
            ],
            env_files: vec![ENV_FILE.into()],
            env_values: EnvValues::Revealed,
            ..RunOptions::default()
        },
        ..Report::default()
    };
    r.image.image = "roprof-fixture/busybox:latest".into();
    r.plan.mounts.push(PlannedMount {
        target: CPath::from("/run"),
        kind: MountKind::Tmpfs,
        options: MountOptions {
            mode: 0o755,
            ..MountOptions::default()
        },
        shadows_image_content: false,
        evidence: crate::model::Evidence::default(),
    });
    r
}

fn withheld() -> Report {
    let mut r = revealed();
    apply_policy(&mut r, &ContainerEnv::default(), false);
    r
}

#[test]
fn docker_line_passes_variables_through_by_name() {
    let r = withheld();
    let words = docker::docker_words(&r);
    let at = |flag: &str| -> Vec<&str> {
        words
            .windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    };
    assert_eq!(at("-e"), ["DB_PASSWORD", "PASSED"]);
    assert_eq!(at("--env-file"), [ENV_FILE]);
    let body = docker::docker_script_body(&r);
    let comments: Vec<&str> = body.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        comments,
        [
            "# roprof: export DB_PASSWORD PASSED before running this: roprof does not write \
          the values it was given (see roprof --reveal-env)"
        ],
        "one comment line names what to export:\n{body}"
    );
    assert!(!body.contains(SECRET), "{body}");
}

#[test]
fn revealed_docker_line_carries_the_values_and_asks_only_for_the_rest() {
    let r = revealed();
    let body = docker::docker_script_body(&r);
    let line = body.lines().last().expect("a line");
    let words = shlex::split(line).expect("splits");
    assert!(
        words.contains(&format!("DB_PASSWORD={SECRET}")),
        "{words:?}"
    );
    assert!(
        body.starts_with("# roprof: export PASSED before running this"),
        "the pass-through variable still has to be exported:\n{body}"
    );
}

#[test]
fn compose_uses_bare_names_and_env_file() {
    let text = compose::compose(&withheld()).expect("renders");
    let y: Value = serde_yaml_ng::from_str(&text).expect("parses");
    let svc = &y["services"][compose::SERVICE];
    let strings = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(strings(&svc["environment"]), ["DB_PASSWORD", "PASSED"]);
    assert_eq!(strings(&svc["env_file"]), [ENV_FILE]);
    assert!(text.contains("\n# roprof: export DB_PASSWORD PASSED before running this"));
    assert!(!text.contains(SECRET), "{text}");
}

#[test]
fn compose_escapes_dollars_of_revealed_values() {
    let mut r = revealed();
    r.run_options.env[0].value = Some("pa$word".into());
    let y: Value =
        serde_yaml_ng::from_str(&compose::compose(&r).expect("renders")).expect("parses");
    assert_eq!(
        y["services"][compose::SERVICE]["environment"][0].as_str(),
        Some("DB_PASSWORD=pa$$word"),
        "compose would interpolate a single $"
    );
}

#[test]
fn kubernetes_refers_to_secrets_and_never_holds_values() {
    for r in [withheld(), revealed()] {
        for (what, text) in [
            (
                "k8s",
                k8s::deployment(&r, &super::K8sNames::named("web")).expect("renders"),
            ),
            (
                "kustomize",
                k8s::kustomize_patch(&r, &super::K8sNames::named("web")).expect("renders"),
            ),
        ] {
            assert!(!text.contains(SECRET), "{what}:\n{text}");
            let y: Value = serde_yaml_ng::from_str(&text).expect("parses");
            let c = &y["spec"]["template"]["spec"]["containers"][0];
            let env = &c["env"];
            assert_eq!(env[0]["name"].as_str(), Some("DB_PASSWORD"), "{what}");
            let key_ref = &env[0]["valueFrom"]["secretKeyRef"];
            assert_eq!(key_ref["name"].as_str(), Some("web-env"), "{what}");
            assert_eq!(key_ref["key"].as_str(), Some("DB_PASSWORD"), "{what}");
            assert_eq!(
                c["envFrom"][0]["secretRef"]["name"].as_str(),
                Some("web-env-file"),
                "{what}"
            );
            assert!(
                text.contains("kubectl create secret generic web-env \"--from-literal=DB_PASSWORD=$DB_PASSWORD\"")
                    && text.contains(&format!("--from-env-file={ENV_FILE}")),
                "{what}: says how to create the Secrets:\n{text}"
            );
        }
    }
}

#[test]
fn no_format_of_a_withheld_report_holds_the_value() {
    let r = withheld();
    for f in Format::ALL {
        let text = render(&r, f).expect("renders");
        assert!(!text.contains(SECRET), "{f}:\n{text}");
        assert!(text.contains("DB_PASSWORD"), "{f} keeps the name:\n{text}");
    }
}

#[test]
fn revealed_files_are_0600_even_when_they_existed() {
    let dir = std::env::temp_dir().join(format!("roprof-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let old = dir.join("docker.sh");
    std::fs::write(&old, "old and longer than what replaces it, much longer\n").expect("old file");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let files = write_all(&revealed(), &dir).expect("writes");
    for f in &files {
        let mode = std::fs::metadata(f).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", f.display());
    }
    let sh = std::fs::read_to_string(&old).expect("docker.sh");
    assert!(sh.contains(SECRET) && !sh.contains("much longer"), "{sh}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The nginx report checked in before schema 2, as `roprof` wrote it,
/// frozen here: `reports/` is regenerated with each schema, so it cannot
/// be relied on to keep a schema 1 report.
const V1_REPORT: &str = include_str!("../../../tests/fixtures/v1-reports/nginx.json");

#[test]
fn schema_1_reports_still_load_and_render() {
    assert!(
        V1_REPORT.contains("\"schema_version\": 1"),
        "still a v1 report"
    );
    let r = json::load_report(V1_REPORT).expect("a v1 report loads");
    assert_eq!(r.schema_version, SCHEMA_VERSION, "upgraded in memory");
    assert!(!r.plan.mounts.is_empty());
    for f in Format::ALL {
        render(&r, f).unwrap_or_else(|e| panic!("{f} renders a v1 report: {e}"));
    }
}

#[test]
fn schema_1_env_values_are_read_then_withheld() {
    let mut v: serde_json::Value = serde_json::from_str(V1_REPORT).expect("json");
    v["run_options"]["env"] = serde_json::json!([format!("DB_PASSWORD={SECRET}"), "PASSED"]);
    let mut r = json::load_report(&v.to_string()).expect("loads");
    assert_eq!(r.run_options.env_values, EnvValues::Revealed);
    assert_eq!(r.run_options.env[0].value.as_deref(), Some(SECRET));
    assert_eq!(r.run_options.env[1].value, None);
    assert!(
        render(&r, Format::Docker)
            .expect("renders")
            .contains(SECRET)
    );
    apply_policy(&mut r, &ContainerEnv::default(), false);
    for f in Format::ALL {
        let text = render(&r, f).expect("renders");
        assert!(!text.contains(SECRET), "{f}:\n{text}");
    }
    v["run_options"]["env"] = serde_json::json!("A=1");
    assert!(
        json::load_report(&v.to_string()).is_err(),
        "env must be a list"
    );
}

#[test]
fn newer_schemas_are_refused_by_name() {
    let mut v: serde_json::Value = serde_json::from_str(V1_REPORT).expect("json");
    v["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
    let e = json::load_report(&v.to_string())
        .expect_err("refused")
        .to_string();
    assert!(
        e.contains("schema_version 3") && e.contains("1 to 2"),
        "{e}"
    );
}

#[test]
fn a_newline_in_a_name_cannot_end_the_comment() {
    let mut r = withheld();
    r.run_options.env[0].name = "A\nrm -rf /".into();
    let body = docker::docker_script_body(&r);
    let (head, _) = body.split_once("docker run").expect("the command");
    assert!(
        head.lines().all(|l| l.starts_with("# roprof: ")) && head.contains("A\\x0arm"),
        "only comment lines before the command, the newline escaped:\n{body}"
    );
}
