//! Renderer tests of mount lifetimes and of the Kubernetes preparation:
//! volatile seeded mounts are anonymous, persistent ones named; initContainers
//! set owner and mode, as root only when they must; the restricted variant
//! never uses root; what cannot be expressed is said in comments.

use serde_yaml_ng::Value;

use super::{Format, compose, docker, k8s, pod::identity, render};
use crate::model::{
    CPath, Evidence, MountKind, MountOptions, MountPlan, PathObservation, PlannedMount, ProcRef,
    Report, SCHEMA_VERSION, Unmounted,
};

fn mount(target: &str, kind: MountKind, uid: u32, gid: u32, mode: u32) -> PlannedMount {
    PlannedMount {
        target: CPath::from(target),
        kind,
        options: MountOptions {
            mode,
            uid,
            gid,
            size_bytes: Some(16 * 1024 * 1024),
            noexec: true,
            nosuid: true,
            nodev: true,
        },
        shadows_image_content: kind != MountKind::Tmpfs,
        evidence: Evidence::default(),
    }
}

/// A PostgreSQL-like report: `USER postgres` (uid 100, gid 102 in the run).
fn postgres() -> Report {
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        plan: MountPlan {
            mounts: vec![
                mount("/run/postgresql", MountKind::Tmpfs, 100, 102, 0o2775),
                mount(
                    "/var/lib/postgresql/15/main",
                    MountKind::PersistentVolume,
                    100,
                    102,
                    0o700,
                ),
            ],
            ..MountPlan::default()
        },
        ..Report::default()
    };
    r.image.image = "roprof-fixture/postgresql:latest".into();
    r.image.user = "postgres".into();
    let who = ProcRef {
        pid: 9,
        comm: "postgres".into(),
        uid: 100,
        gid: 102,
    };
    r.paths.push(PathObservation {
        path: CPath::from("/run/postgresql/x"),
        first: who.clone().into(),
        last: who.into(),
        ..PathObservation::default()
    });
    r
}

/// An nginx-like report: runs as root, a seeded conf.d.
fn nginx() -> Report {
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        plan: MountPlan {
            mounts: vec![
                mount("/etc/nginx/conf.d", MountKind::SeededVolume, 0, 0, 0o755),
                mount("/run", MountKind::Tmpfs, 0, 0, 0o755),
            ],
            unmounted: vec![Unmounted {
                dir: CPath::from("/app"),
                paths: vec![CPath::from("/app/__pycache__/x.pyc")],
                reason: "a mount at /app would cover application code".into(),
                hint: Some("set PYTHONDONTWRITEBYTECODE=1".into()),
            }],
            ..MountPlan::default()
        },
        ..Report::default()
    };
    r.image.image = "roprof-fixture/nginx:latest".into();
    r
}

fn pod(text: &str) -> Value {
    let d: Value = serde_yaml_ng::from_str(text).expect("the Deployment parses");
    d["spec"]["template"]["spec"].clone()
}

fn init_named<'a>(pod: &'a Value, volume_suffix: &str) -> &'a Value {
    pod["initContainers"]
        .as_sequence()
        .and_then(|s| {
            s.iter()
                .find(|c| c["name"].as_str() == Some(&format!("init-{volume_suffix}")))
        })
        .unwrap_or_else(|| panic!("an initContainer init-{volume_suffix} in {pod:?}"))
}

fn script(c: &Value) -> String {
    c["command"][2].as_str().unwrap_or_default().to_owned()
}

#[test]
fn docker_and_compose_use_anonymous_volumes_for_volatile_content_only() {
    let mut r = nginx();
    r.plan.mounts.push(mount(
        "/var/lib/db",
        MountKind::PersistentVolume,
        0,
        0,
        0o700,
    ));
    let words = docker::docker_words(&r);
    assert!(
        words.windows(2).any(|w| w == ["-v", "/etc/nginx/conf.d"]),
        "anonymous volume: {words:?}"
    );
    assert!(
        words
            .iter()
            .any(|w| w.starts_with("roprof-") && w.ends_with(":/var/lib/db")),
        "named volume for persistent data only: {words:?}"
    );
    let c = compose::compose_file(&r);
    assert_eq!(
        c.volumes.keys().collect::<Vec<_>>(),
        [&super::volume_name(&r, 2, &r.plan.mounts[2])],
        "one top-level named volume: the persistent one"
    );
    let svc = &c.services[compose::SERVICE];
    assert!(
        svc.volumes.iter().any(|v| matches!(
            v,
            compose::VolumeEntry::Long(l) if l.target == "/etc/nginx/conf.d" && l.source.is_none()
        )),
        "compose: anonymous volume for conf.d"
    );
}

#[test]
fn unmounted_writes_and_their_hint_are_stated_in_every_pasted_format() {
    let r = nginx();
    for f in [
        Format::Docker,
        Format::Compose,
        Format::K8s,
        Format::K8sRestricted,
        Format::Kustomize,
    ] {
        let text = render(&r, f).expect("renders");
        assert!(
            text.contains("# roprof: no mount for 1 write(s) below /app")
                && text.contains("# roprof:   hint: set PYTHONDONTWRITEBYTECODE=1"),
            "{f}: states the unmounted write and the hint:\n{text}"
        );
    }
}

#[test]
fn root_variant_prepares_volumes_as_root_only_for_a_non_root_image() {
    let text = k8s::deployment(&postgres(), &super::K8sNames::named("app")).expect("renders");
    let p = pod(&text);
    let data = init_named(&p, "postgresql-var-lib-postgresql-15-main-1");
    assert_eq!(
        data["securityContext"]["runAsUser"].as_i64(),
        Some(0),
        "a fresh claim is root:root 0755: only root can seed it and give it to postgres"
    );
    let s = script(data);
    assert!(
        s.contains("chown 100:102 /roprof-seed") && s.contains("chmod 0700 /roprof-seed"),
        "{s}"
    );
    assert!(
        s.contains("grep -vx lost+found") && s.contains("-exec cp -a --"),
        "seeded entry by entry, only while empty: {s}"
    );
    let run = init_named(&p, "postgresql-run-postgresql-0");
    assert!(script(run).contains("chmod 2775 /roprof-seed"));
    assert!(
        !script(run).contains("cp -a"),
        "a tmpfs has nothing to seed"
    );
    assert!(
        text.contains("noexec/nosuid/nodev")
            && text.contains("/run/postgresql (noexec, nosuid, nodev)"),
        "mount options Kubernetes cannot express are named:\n{text}"
    );
    assert!(text.contains("request at least 16Mi"), "{text}");

    let nginx = pod(&k8s::deployment(&nginx(), &super::K8sNames::named("app")).expect("renders"));
    for c in nginx["initContainers"]
        .as_sequence()
        .expect("initContainers")
    {
        assert_eq!(
            c["securityContext"]["runAsUser"],
            Value::Null,
            "the image runs as root already: no runAsUser on {c:?}"
        );
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"],
            Value::Bool(true)
        );
    }
}

#[test]
fn restricted_variant_never_uses_root_and_owns_mounts_through_subpaths() {
    let text = k8s::deployment_for(
        &postgres(),
        &super::K8sNames::named("app"),
        k8s::Security::Restricted,
    )
    .expect("renders");
    let p = pod(&text);
    let sc = &p["securityContext"];
    assert_eq!(sc["runAsUser"].as_i64(), Some(100));
    assert_eq!(sc["runAsGroup"].as_i64(), Some(102));
    assert_eq!(sc["fsGroup"].as_i64(), Some(102));
    assert_eq!(sc["runAsNonRoot"], Value::Bool(true));
    assert_eq!(sc["fsGroupChangePolicy"].as_str(), Some("OnRootMismatch"));
    assert_eq!(
        sc["seccompProfile"]["type"].as_str(),
        Some("RuntimeDefault")
    );
    let app = &p["containers"][0];
    for m in app["volumeMounts"].as_sequence().expect("mounts") {
        assert_eq!(m["subPath"].as_str(), Some("data"), "postgres owns {m:?}");
    }
    for c in p["initContainers"]
        .as_sequence()
        .expect("initContainers")
        .iter()
        .chain([app])
    {
        let s = &c["securityContext"];
        assert_eq!(s["runAsUser"], Value::Null, "no root in {c:?}");
        assert_eq!(s["allowPrivilegeEscalation"], Value::Bool(false));
        assert_eq!(s["capabilities"]["drop"][0].as_str(), Some("ALL"));
    }
    let data = script(init_named(&p, "postgresql-var-lib-postgresql-15-main-1"));
    assert!(
        data.contains("mkdir -p /roprof-seed/data")
            && data.contains("chmod 0700 /roprof-seed/data"),
        "{data}"
    );

    let root = k8s::deployment_for(
        &nginx(),
        &super::K8sNames::named("app"),
        k8s::Security::Restricted,
    )
    .expect("renders");
    assert!(
        root.contains("the image runs as root: Pod Security `restricted` refuses it"),
        "{root}"
    );
}

#[test]
fn identity_comes_from_the_user_or_the_observed_processes() {
    let r = postgres();
    assert_eq!(
        identity(&r),
        super::pod::Identity::User { uid: 100, gid: 102 }
    );
    let mut numeric = nginx();
    numeric.run_options.user = Some("1000:1000".into());
    assert_eq!(
        identity(&numeric),
        super::pod::Identity::User {
            uid: 1000,
            gid: 1000
        }
    );
    assert_eq!(identity(&nginx()), super::pod::Identity::Root);
    let mut unknown = nginx();
    unknown.image.user = "app".into();
    assert_eq!(
        identity(&unknown),
        super::pod::Identity::Unknown("app".into())
    );
}

#[test]
fn version_1_reports_still_load_and_render() {
    let mut r = nginx();
    r.schema_version = 1;
    let text = super::json::to_json(&r).expect("json");
    let back = super::json::load_report(&text).expect("a version 1 report loads");
    let words = docker::docker_words(&back);
    assert!(
        words.windows(2).any(|w| w == ["-v", "/etc/nginx/conf.d"]),
        "its seeded volume renders as an anonymous volume: {words:?}"
    );
}
