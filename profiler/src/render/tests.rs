//! Renderer tests: every format parses back and carries the same mounts,
//! hostile paths stay exact and inert, manifests are patched in place.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_yaml_ng::Value;

use super::{
    Format, compose, docker, json, k8s, markdown, patch::patch_manifests, render, unrepresentable,
    write_all,
};
use crate::model::{
    CPath, EnvValues, EnvVar, Evidence, MountKind, MountOptions, MountPlan, MountRule,
    PlannedMount, Report, RunMode, RunOptions, SCHEMA_VERSION,
};

const HOSTILE: &str = "/srv/it's $HOME `x` \"q\"";
const NEWLINE: &str = "/srv/new\nline";
const AWKWARD: &str = "/srv/a:b,c";

fn mount(target: &[u8], kind: MountKind) -> PlannedMount {
    PlannedMount {
        target: CPath::new(target.to_vec()),
        kind,
        options: MountOptions {
            mode: 0o755,
            uid: 101,
            gid: 101,
            size_bytes: Some(16 * 1024 * 1024),
            noexec: true,
            nosuid: true,
            nodev: true,
        },
        shadows_image_content: kind != MountKind::Tmpfs,
        evidence: Evidence {
            rule: MountRule::ParentOfNewEntry,
            reason: "test | with `pipes`".into(),
            paths: vec![CPath::new(target.to_vec()).join(b"f")],
            ..Evidence::default()
        },
    }
}

fn report(mounts: Vec<PlannedMount>) -> Report {
    let mut r = Report {
        schema_version: SCHEMA_VERSION,
        roprof_version: "0.1.0".into(),
        run_options: RunOptions {
            env: vec![
                EnvVar {
                    name: "A".into(),
                    value: Some("$(rm -rf /)".into()),
                },
                EnvVar {
                    name: "B".into(),
                    value: Some("two words".into()),
                },
            ],
            env_values: EnvValues::Revealed,
            volumes: vec!["/host:/data:ro".into()],
            publish: vec!["8080:80".into()],
            user: Some("101:101".into()),
            command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            ..RunOptions::default()
        },
        plan: MountPlan {
            mounts,
            ..MountPlan::default()
        },
        ..Report::default()
    };
    r.image.image = "docker.io/library/nginx:1.27".into();
    r.run.mode = RunMode::Profile;
    r
}

fn sample() -> Report {
    report(vec![
        mount(b"/tmp", MountKind::Tmpfs),
        mount(b"/var/cache/nginx", MountKind::SeededVolume),
        mount(b"/var/lib/db", MountKind::PersistentVolume),
        mount(HOSTILE.as_bytes(), MountKind::Tmpfs),
        mount(NEWLINE.as_bytes(), MountKind::SeededVolume),
        mount(AWKWARD.as_bytes(), MountKind::Tmpfs),
    ])
}

/// Is it a tmpfs (true) or a volume (false): what every format can tell.
type Set = BTreeSet<(String, bool)>;

fn expected(r: &Report) -> Set {
    r.plan
        .mounts
        .iter()
        .filter_map(|m| Some((m.target.to_str()?.to_owned(), m.kind == MountKind::Tmpfs)))
        .collect()
}

fn csv_dst(spec: &str) -> Option<String> {
    // Fields are `k=v`, a field may be "double-quoted" with "" escapes.
    let mut fields = Vec::new();
    let (mut cur, mut quoted, mut chars) = (String::new(), false, spec.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
        .iter()
        .find_map(|f| f.strip_prefix("dst=").map(str::to_owned))
}

fn docker_set(line: &str) -> Set {
    let words = shlex::split(line).unwrap_or_else(|| panic!("docker line must split: {line}"));
    let mut set = Set::new();
    let mut it = words.iter().skip(3);
    while let Some(w) = it.next() {
        if w == "nginx:1.27" || w.ends_with("nginx:1.27") {
            break;
        }
        let Some(v) = it.next() else { break };
        match w.as_str() {
            "--tmpfs" => {
                let (t, _) = v.split_once(':').unwrap_or((v, ""));
                set.insert((t.to_owned(), true));
            }
            "-v" if v.starts_with("roprof-") => {
                let (_, t) = v.split_once(':').unwrap_or(("", v));
                set.insert((t.to_owned(), false));
            }
            // An anonymous volume: the target alone.
            "-v" if !v.contains(':') => {
                set.insert((v.clone(), false));
            }
            "--mount" => {
                let dst = csv_dst(v).unwrap_or_else(|| panic!("--mount without dst: {v}"));
                set.insert((dst, v.starts_with("type=tmpfs")));
            }
            _ => {}
        }
    }
    set
}

/// The compose file's mounts, with compose's `$$` read as `$`.
fn compose_set(text: &str) -> Set {
    let f: compose::ComposeFile = serde_yaml_ng::from_str(text).expect("compose parses back");
    let unescape = |s: &str| s.replace("$$", "$");
    let svc = &f.services["app"];
    assert!(svc.read_only, "compose service must be read_only");
    let mut set = Set::new();
    for t in &svc.tmpfs {
        if t.starts_with("/tmp") || t.starts_with("/srv") {
            set.insert((
                unescape(t.split_once(':').map_or(t.as_str(), |x| x.0)),
                true,
            ));
        }
    }
    for v in &svc.volumes {
        if let compose::VolumeEntry::Long(l) = v {
            set.insert((unescape(&l.target), l.kind == "tmpfs"));
        }
    }
    set
}

fn k8s_set(text: &str) -> Set {
    let d: Value = serde_yaml_ng::from_str(text).expect("k8s parses back");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"],
        Value::Bool(true),
        "container must have readOnlyRootFilesystem"
    );
    let vols = pod["volumes"].as_sequence().cloned().unwrap_or_default();
    let mut set = Set::new();
    for m in c["volumeMounts"].as_sequence().cloned().unwrap_or_default() {
        let v = vols
            .iter()
            .find(|v| v["name"] == m["name"])
            .unwrap_or_else(|| panic!("volume for mount {m:?}"));
        let tmpfs = v["emptyDir"]["medium"].as_str() == Some("Memory");
        set.insert((
            m["mountPath"].as_str().unwrap_or_default().to_owned(),
            tmpfs,
        ));
    }
    set
}

#[test]
fn every_format_carries_the_same_mounts() {
    let r = sample();
    let want = expected(&r);
    assert_eq!(docker_set(&docker::docker_command(&r)), want, "docker");
    assert_eq!(
        compose_set(&compose::compose(&r).expect("compose")),
        want,
        "compose"
    );
    assert_eq!(
        k8s_set(&k8s::deployment(&r, &super::K8sNames::named("app")).expect("k8s")),
        want,
        "k8s"
    );
    assert_eq!(
        k8s_set(&k8s::kustomize_patch(&r, &super::K8sNames::named("app")).expect("kustomize")),
        want,
        "kustomize"
    );
    let back = json::load_report(&json::to_json(&r).expect("json")).expect("json loads back");
    assert_eq!(back, r, "json round-trips the whole report");
    let md = markdown::markdown(&r);
    assert_eq!(
        md.matches("\n| /").count(),
        r.plan.mounts.len(),
        "one Markdown table row per mount, hostile paths included:\n{md}"
    );
}

#[test]
fn docker_line_keeps_hostile_paths_exact() {
    let r = sample();
    let words = shlex::split(&docker::docker_command(&r)).expect("splits");
    assert_eq!(words, docker::docker_words(&r), "round trip through shlex");
    assert!(
        words
            .iter()
            .any(|w| w.starts_with(&format!("{HOSTILE}:rw,"))),
        "{words:?}"
    );
    assert!(
        words.iter().any(|w| w == NEWLINE),
        "the volatile seeded mount is an anonymous volume on the exact target: {words:?}"
    );
    assert!(
        words.contains(&"A=$(rm -rf /)".to_owned()),
        "user env kept verbatim"
    );
    assert_eq!(words[words.len() - 3..], ["nginx", "-g", "daemon off;"]);
}

#[test]
fn non_utf8_targets_are_omitted_with_a_comment_never_mangled() {
    let r = report(vec![
        mount(b"/tmp", MountKind::Tmpfs),
        mount(b"/srv/caf\xe9", MountKind::SeededVolume),
    ]);
    assert_eq!(
        unrepresentable(&r).len(),
        1,
        "one warning for the non-UTF-8 target"
    );
    for f in [
        Format::Docker,
        Format::Compose,
        Format::K8s,
        Format::Kustomize,
    ] {
        let text = render(&r, f).expect("renders");
        assert!(text.starts_with("# roprof:"), "{f}: starts with a comment");
        assert!(
            text.contains("2f7372762f636166e9"),
            "{f}: names the bytes in hex"
        );
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            !text.contains('\u{fffd}') && !body.iter().any(|l| l.contains("/srv/caf")),
            "{f}: the path appears only in the comment, never mangled:\n{text}"
        );
    }
    let back = json::load_report(&json::to_json(&r).expect("json")).expect("loads");
    assert_eq!(
        back.plan.mounts[1].target.as_bytes(),
        b"/srv/caf\xe9",
        "json keeps the bytes"
    );
}

#[test]
fn memory_limit_is_kept_without_swap_in_docker_and_compose() {
    let mut r = sample();
    r.run_options.memory = Some("64m".into());
    let words = docker::docker_words(&r);
    let at = |flag: &str| {
        words
            .iter()
            .position(|w| w == flag)
            .map(|i| words[i + 1].as_str())
    };
    assert_eq!(at("--memory"), Some("64m"));
    assert_eq!(
        at("--memory-swap"),
        Some("64m"),
        "no swap on top, as profiled"
    );
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&compose::compose(&r).expect("compose renders"))
            .expect("YAML parses");
    let svc = &yaml["services"][compose::SERVICE];
    assert_eq!(svc["mem_limit"].as_str(), Some("64m"));
    assert_eq!(svc["memswap_limit"].as_str(), Some("64m"));
}

#[test]
fn load_report_checks_the_schema_version() {
    let mut r = sample();
    r.schema_version = SCHEMA_VERSION + 1;
    let err = json::load_report(&json::to_json(&r).expect("json")).expect_err("must refuse");
    assert!(err.to_string().contains("schema_version"), "{err}");
    assert!(json::load_report("{}").is_err(), "no version, no report");
}

/// Minimal structural validation: `$ref`, `required`, `properties`,
/// `items`, `oneOf`, `enum`/`const`.
pub(super) fn validate(
    schema: &serde_json::Value,
    root: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) {
    use serde_json::Value as J;
    let schema = match schema.get("$ref").and_then(J::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/$defs/");
            &root["$defs"][name]
        }
        None => schema,
    };
    if let Some(alts) = schema.get("oneOf").and_then(J::as_array) {
        let ok = alts
            .iter()
            .any(|a| std::panic::catch_unwind(|| validate(a, root, v, at)).is_ok());
        assert!(ok, "{at}: matches no alternative");
        return;
    }
    if let Some(c) = schema.get("const") {
        assert_eq!(v, c, "{at}: const");
    }
    if let Some(e) = schema.get("enum").and_then(J::as_array) {
        assert!(e.contains(v), "{at}: {v} not in enum");
    }
    if let Some(t) = schema.get("type").and_then(J::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "boolean" => v.is_boolean(),
            "number" => v.is_number(),
            _ => true,
        };
        assert!(ok, "{at}: expected {t}, got {v}");
    }
    for k in schema
        .get("required")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
    {
        let k = k.as_str().unwrap_or_default();
        assert!(v.get(k).is_some(), "{at}: required key {k} missing");
    }
    if let (Some(props), Some(obj)) = (schema.get("properties"), v.as_object()) {
        for (k, sub) in obj {
            if let Some(s) = props.get(k) {
                validate(s, root, sub, &format!("{at}.{k}"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            validate(items, root, x, &format!("{at}[{i}]"));
        }
    }
}

#[test]
fn rendered_report_satisfies_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(json::SCHEMA).expect("schema is JSON");
    let mut r = sample();
    r.plan.mounts.push(mount(b"/srv/\xff", MountKind::Tmpfs));
    let v: serde_json::Value =
        serde_json::from_str(&json::to_json(&r).expect("json")).expect("report is JSON");
    validate(&schema, &schema, &v, "report");
}

#[test]
fn timings_settings_and_rounds_satisfy_the_schema() {
    use crate::model::{Ended, Health, Phase, PhaseTime, Round, RoundKind};
    let schema: serde_json::Value = serde_json::from_str(json::SCHEMA).expect("schema is JSON");
    let mut r = sample();
    r.run.ended = Some(Ended::EngineLost);
    r.run.exercise_exit = Some(0);
    r.stats.phases = vec![PhaseTime {
        phase: Phase::Listing,
        secs: 0.25,
    }];
    r.stats.bpf_load_secs = 1.5;
    r.settings.force_seed.insert(CPath::from("/srv/site"));
    r.run.health = Some(Health::Unhealthy);
    r.run.process_exits = Some(vec![
        crate::model::ProcessExit {
            program: "worker.sh".into(),
            status: crate::model::ExitStatus::Code(1),
            count: 4,
            at_stop: false,
        },
        crate::model::ProcessExit {
            program: "sleep".into(),
            status: crate::model::ExitStatus::Signal(9),
            count: 1,
            at_stop: true,
        },
    ]);
    for (kind, health) in [
        (RoundKind::Verify, Some(Health::Healthy)),
        (RoundKind::Repair, Some(Health::Unhealthy)),
        (RoundKind::Iterate, None),
        (RoundKind::LeaveOneOut, Some(Health::Healthy)),
    ] {
        r.rounds.push(Round {
            kind,
            health,
            ended: Some(Ended::Settled),
            phases: r.stats.phases.clone(),
            ..Round::default()
        });
    }
    let text = json::to_json(&r).expect("json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(v["run"]["ended"], "engine-lost");
    assert_eq!(v["stats"]["phases"][0]["phase"], "listing");
    assert_eq!(v["run"]["health"], "unhealthy");
    assert_eq!(v["rounds"][2]["health"], serde_json::Value::Null);
    assert_eq!(v["rounds"][3]["kind"], "leave-one-out");
    assert_eq!(v["run"]["process_exits"][0]["status"]["code"], 1);
    assert_eq!(v["run"]["process_exits"][1]["status"]["signal"], 9);
    validate(&schema, &schema, &v, "report");
    assert_eq!(
        json::load_report(&text).expect("loads back"),
        r,
        "round trip"
    );
}

const MANIFESTS: &str = "# config first, with a comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg   # odd spacing kept\ndata:\n  a: \"1\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: sidecar\n        image: busybox\n      - name: web\n        image: nginx:1.27\n        volumeMounts:\n        - name: own\n          mountPath: /data\n      volumes:\n      - name: own\n        emptyDir: {}\n---\napiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: job\n            image: docker.io/library/nginx:1.27\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n";

#[test]
fn patch_keeps_other_documents_and_patches_workloads() {
    let r = report(vec![
        mount(b"/tmp", MountKind::Tmpfs),
        mount(b"/var/cache/nginx", MountKind::SeededVolume),
    ]);
    let out = patch_manifests(MANIFESTS, &r, None).expect("patches");
    let docs: Vec<&str> = out.split("\n---\n").collect();
    let orig: Vec<&str> = MANIFESTS.split("\n---\n").collect();
    assert_eq!(docs.len(), 4, "same number of documents");
    assert_eq!(docs[0], orig[0], "ConfigMap kept byte-for-byte");
    assert_eq!(docs[3], orig[3], "Service kept byte-for-byte");

    let d: Value = serde_yaml_ng::from_str(docs[1]).expect("Deployment parses");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["securityContext"],
        Value::Null,
        "sidecar untouched"
    );
    let web = &pod["containers"][1];
    assert_eq!(
        web["securityContext"]["readOnlyRootFilesystem"],
        Value::Bool(true)
    );
    let paths: Vec<&str> = web["volumeMounts"]
        .as_sequence()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["/data", "/tmp", "/var/cache/nginx"],
        "own mount kept, plan added"
    );
    assert_eq!(pod["volumes"].as_sequence().map(Vec::len), Some(3));
    assert_eq!(
        pod["initContainers"].as_sequence().map(Vec::len),
        Some(2),
        "one initContainer per volume whose root the kubelet makes differently (both are \
         owned by 101 in the plan)"
    );

    let c: Value = serde_yaml_ng::from_str(docs[2]).expect("CronJob parses");
    let job = &c["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(
        job["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
        Value::Bool(true),
        "CronJob container patched through jobTemplate"
    );
    assert_eq!(c["spec"]["schedule"].as_str(), Some("0 3 * * *"));

    let by_name = patch_manifests(MANIFESTS, &r, Some("job")).expect("by name");
    assert!(
        by_name.contains(orig[1]),
        "Deployment untouched when only `job` is asked"
    );
    assert_eq!(
        super::patch::image_mismatches(MANIFESTS, &r, "job"),
        Vec::<String>::new(),
        "job runs the report's image (another spelling of it): no warning"
    );
    let warned = super::patch::image_mismatches(MANIFESTS, &r, "sidecar");
    assert!(
        warned.len() == 1
            && warned[0].contains("container sidecar of Deployment/web")
            && warned[0].contains("busybox"),
        "--container sidecar runs another image than the report's: warned {warned:?}"
    );
    let err = patch_manifests(MANIFESTS, &r, Some("nope")).expect_err("no such container");
    let msg = err.to_string();
    assert!(
        msg.contains("\"nope\"") && msg.contains("Deployment/web"),
        "{msg}"
    );
}

#[test]
fn formats_parse_from_their_names_and_write_all_writes_files() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().ok(), Some(f));
    }
    assert!("yaml".parse::<Format>().is_err());
    let dir = std::env::temp_dir().join(format!("roprof-render-{}", std::process::id()));
    let files = write_all(&sample(), &dir).expect("writes");
    assert_eq!(files.len(), Format::ALL.len());
    let sh = std::fs::read_to_string(dir.join("docker.sh")).expect("docker.sh");
    assert!(sh.starts_with("#!/bin/sh\n"), "{sh}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn target() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(&b"ab $'\"`\\\n\t:,;&|*?!~#-=%{}()<>"[..]),
        1..12,
    )
    .prop_map(|mut v| {
        v.insert(0, b'/');
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn docker_line_round_trips(
        ms in prop::collection::vec((target(), 0u8..3), 0..6),
        env in prop::collection::vec("[ -~\n]{0,12}", 0..3),
    ) {
        let kinds = [MountKind::Tmpfs, MountKind::SeededVolume, MountKind::PersistentVolume];
        let mut r = report(ms.iter().map(|(t, k)| mount(t, kinds[usize::from(*k)])).collect());
        r.run_options.env = env
            .into_iter()
            .enumerate()
            .map(|(i, v)| EnvVar { name: format!("V{i}"), value: Some(v) })
            .collect();
        let line = docker::docker_command(&r);
        let words = shlex::split(&line);
        prop_assert_eq!(words, Some(docker::docker_words(&r)));
        prop_assert_eq!(docker_set(&line), expected(&r));
    }
}

#[test]
fn check_fields_satisfy_the_schema() {
    use crate::model::{ObserveOptions, SeedDigest};
    let schema: serde_json::Value = serde_json::from_str(json::SCHEMA).expect("schema is JSON");
    let mut r = sample();
    r.observe = Some(ObserveOptions {
        duration_secs: 10.0,
        settle_secs: Some(2.0),
        stop_timeout: 10,
        exercise: Some("true".into()),
        probe: None,
        read_only: false,
    });
    r.seeds = vec![SeedDigest {
        target: CPath::from("/srv/seed"),
        entries: 1,
        bytes: 3,
        sha256: "0".repeat(64),
        sample: vec![CPath::from("/srv/seed/a")],
    }];
    let v: serde_json::Value =
        serde_json::from_str(&json::to_json(&r).expect("json")).expect("report is JSON");
    validate(&schema, &schema, &v, "report");
}
