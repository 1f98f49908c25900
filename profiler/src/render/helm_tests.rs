//! Helm values tests: the fragment carries exactly `--format k8s`'s pod
//! parts under the chart keys, `--helm-prefix` nests it, and the comments
//! stay comments whatever the paths hold.

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Container, SecurityContext, Volume, VolumeMount},
};
use serde_yaml_ng::Value;

use super::{
    Format, RenderOptions,
    helm::{HelmPrefix, values},
    render, render_with, write_all_with,
};
use crate::model::{
    CPath, EnvVar, MountKind, MountOptions, MountPlan, PlannedMount, Report, SCHEMA_VERSION,
};

fn mount(target: &str, kind: MountKind, uid: u32) -> PlannedMount {
    PlannedMount {
        target: CPath::new(target.as_bytes().to_vec()),
        kind,
        options: MountOptions {
            mode: 0o700,
            uid,
            gid: uid,
            size_bytes: Some(16 * 1024 * 1024),
            noexec: kind == MountKind::Tmpfs,
            nosuid: false,
            nodev: false,
        },
        shadows_image_content: kind != MountKind::Tmpfs,
        evidence: crate::model::Evidence::default(),
    }
}

fn report(mounts: Vec<PlannedMount>) -> Report {
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        plan: MountPlan {
            mounts,
            ..MountPlan::default()
        },
        ..Report::default()
    };
    r.image.image = "roprof-fixture/postgresql:latest".into();
    r.run_options.user = Some("101:101".into());
    r
}

fn sample() -> Report {
    report(vec![
        mount("/run/postgresql", MountKind::Tmpfs, 101),
        mount("/var/cache/app", MountKind::SeededVolume, 101),
        mount(
            "/var/lib/postgresql/15/main",
            MountKind::PersistentVolume,
            101,
        ),
        mount(
            "/srv/new\nline {{ .Values.x }}",
            MountKind::PersistentVolume,
            0,
        ),
    ])
}

fn parse(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("expected YAML: {e}\n{text}"))
}

fn field<T: serde::de::DeserializeOwned>(v: &Value, key: &str) -> T {
    let f = v
        .get(key)
        .unwrap_or_else(|| panic!("expected the key {key} in {v:?}"))
        .clone();
    serde_yaml_ng::from_value(f).unwrap_or_else(|e| panic!("expected {key} to be valid: {e}"))
}

fn prefix(s: &str) -> HelmPrefix {
    s.parse()
        .unwrap_or_else(|e| panic!("expected {s:?} to parse: {e}"))
}

#[test]
fn the_fragment_carries_the_k8s_deployments_pod_parts() {
    let r = sample();
    let v = parse(&render(&r, Format::Helm).expect("renders"));
    let d: Deployment =
        serde_yaml_ng::from_str(&render(&r, Format::K8s).expect("renders")).expect("Deployment");
    let pod = d.spec.template.spec.expect("a pod spec");
    let app = &pod.containers[0];
    assert_eq!(
        field::<SecurityContext>(&v, "containerSecurityContext"),
        app.security_context
            .clone()
            .expect("the app's securityContext"),
    );
    assert_eq!(
        field::<SecurityContext>(&v, "containerSecurityContext").read_only_root_filesystem,
        Some(true)
    );
    assert_eq!(
        Some(field::<Vec<Volume>>(&v, "extraVolumes")),
        pod.volumes,
        "extraVolumes must be the Deployment's volumes"
    );
    assert_eq!(
        Some(field::<Vec<VolumeMount>>(&v, "extraVolumeMounts")),
        app.volume_mounts,
        "extraVolumeMounts must be the Deployment's container's mounts"
    );
    assert_eq!(
        Some(field::<Vec<Container>>(&v, "initContainers")),
        pod.init_containers,
        "initContainers must be the Deployment's"
    );
    let keys: Vec<&str> = v
        .as_mapping()
        .expect("a mapping")
        .keys()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "containerSecurityContext",
            "extraVolumes",
            "extraVolumeMounts",
            "initContainers"
        ],
        "nothing but the chart keys at the top"
    );
}

#[test]
fn mount_kinds_and_options_are_the_k8s_ones() {
    let v = parse(&values(&sample(), None).expect("renders"));
    let vols: Vec<Volume> = field(&v, "extraVolumes");
    let run = &vols[0];
    let ed = run.empty_dir.as_ref().expect("tmpfs is an emptyDir");
    assert_eq!(ed.medium.as_deref(), Some("Memory"));
    assert_eq!(ed.size_limit.as_ref().map(|q| q.0.as_str()), Some("16Mi"));
    assert!(
        vols[1]
            .empty_dir
            .as_ref()
            .is_some_and(|e| e.medium.is_none())
    );
    assert_eq!(
        vols[2]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some(vols[2].name.as_str()),
        "a persistent mount is a claim named like its volume"
    );
    let inits: Vec<Container> = field(&v, "initContainers");
    assert!(
        inits
            .iter()
            .any(|c| c.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0)),
        "the chown of a root-owned claim for uid 101 runs as root: {inits:?}"
    );
}

#[test]
fn a_prefix_nests_the_same_fragment() {
    let r = sample();
    let plain = parse(&values(&r, None).expect("renders"));
    for (p, path) in [
        ("server", vec!["server"]),
        ("controller", vec!["controller"]),
        ("argo-cd.repoServer", vec!["argo-cd", "repoServer"]),
    ] {
        let text = render_with(
            &r,
            Format::Helm,
            &RenderOptions {
                helm_prefix: Some(prefix(p)),
                ..RenderOptions::default()
            },
        )
        .expect("renders");
        let mut v = parse(&text);
        for key in &path {
            let m = v.as_mapping().expect("a mapping");
            assert_eq!(m.len(), 1, "{p}: only {key} at this level: {m:?}");
            v = m
                .get(*key)
                .unwrap_or_else(|| panic!("{p}: expected the key {key}:\n{text}"))
                .clone();
        }
        assert_eq!(
            v, plain,
            "{p}: the fragment under the prefix is the plain one"
        );
        assert!(
            text.contains(&format!("`{p}.extraVolumes`")),
            "{p}: the comment names the prefixed keys:\n{text}"
        );
    }
}

#[test]
fn bad_prefixes_are_refused_naming_the_key() {
    for (bad, says) in [
        ("", "key 1 is empty"),
        ("server.", "key 2 is empty"),
        ("a..b", "key 2 is empty"),
        ("my server", "\"my server\""),
        ("x.{{y}}", "\"{{y}}\""),
        ("ctl\nx", "\\x0a"),
    ] {
        let e = bad
            .parse::<HelmPrefix>()
            .expect_err("must be refused")
            .to_string();
        assert!(
            e.contains(says) && e.contains("--helm-prefix"),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(prefix("server").to_string(), "server");
    assert_eq!(prefix("a.b_c-1").keys(), ["a", "b_c-1"]);
}

#[test]
fn comments_stay_comments_and_say_what_the_chart_must_support() {
    let mut r = sample();
    r.run_options.env.push(EnvVar {
        name: "POSTGRES_PASSWORD".into(),
        value: None,
    });
    let text = values(&r, None).expect("renders");
    let (head, body): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('#'));
    assert!(
        body.first()
            .is_some_and(|l| l.starts_with("containerSecurityContext:")),
        "the values start after the comments:\n{text}"
    );
    let head = head.join("\n");
    for want in [
        "extraVolumes",
        "Helm replaces lists",
        "without extraVolumes",
        "empty-dir",
        "extraInitContainers",
        "controller.image.readOnlyRootFilesystem",
        "containerSecurityContext.enabled",
        "extraEnvVars",
        "`tpl`",
        "srv/new\\x0aline",
        "roprof-fixture/postgresql:latest",
        "noexec",
    ] {
        assert!(
            head.contains(want),
            "expected {want:?} in the comments:\n{head}"
        );
    }
    // The newline in a path must not have ended a comment.
    assert!(
        !body.iter().any(|l| l.starts_with("line")),
        "a path's newline broke out of a comment:\n{text}"
    );
}

#[test]
fn an_empty_plan_is_the_flag_alone() {
    let text = values(&report(Vec::new()), None).expect("renders");
    let v = parse(&text);
    assert_eq!(
        v.as_mapping().map(serde_yaml_ng::Mapping::len),
        Some(1),
        "{text}"
    );
    assert_eq!(
        field::<SecurityContext>(&v, "containerSecurityContext").read_only_root_filesystem,
        Some(true)
    );
    assert!(
        !text.contains("`tpl`") && !text.contains("extraEnvVars"),
        "{text}"
    );
}

#[test]
fn write_all_writes_the_prefixed_values() {
    let dir = std::env::temp_dir().join(format!("roprof-helm-test-{}", std::process::id()));
    let files = write_all_with(
        &sample(),
        &dir,
        &RenderOptions {
            helm_prefix: Some(prefix("server")),
            ..RenderOptions::default()
        },
    )
    .expect("writes");
    let path = dir.join("helm-values.yaml");
    assert!(files.contains(&path), "{files:?}");
    let text = std::fs::read_to_string(&path).expect("reads");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(parse(&text).get("server").is_some(), "{text}");
}
