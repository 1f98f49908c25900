//! Helm values run where they are pasted (issue 34). Each server fixture is
//! profiled once; its `helm-values.yaml` is passed to a bitnami-style chart
//! of the tests' own (`tests/fixtures/charts/app`), and the output of
//! `roprof render report.json --format helm --helm-prefix server` to the
//! same chart with a `server` component (`charts/server`), both rendered
//! as `helm template -f` would render them (`tests/src/chart.rs`). Each
//! rendered Deployment must carry exactly `--format k8s`'s volumes, mounts
//! and initContainers beside the chart's own, pass the API server's checks,
//! and come up and serve under the kubelet emulation
//! (`tests/KUBELET_EMULATION.md`), a write included (redis `SAVE`, a
//! `PostgreSQL` `INSERT` and `CHECKPOINT`).

use std::path::Path;

use k8s_openapi::api::core::v1::PodSpec;
use roprof_tests::{
    ContainerGuard, NGINX_IMAGE, POSTGRESQL_IMAGE, REDIS_IMAGE, TempDir,
    chart::{self, Chart},
    health::{Check, healthy},
    kubelet, require_privileged, roprof, unique_name,
};

/// The chart's own pieces, which the values are appended to.
const CHART_VOLUME: &str = "empty-dir";
const CHART_INIT: &str = "chart-prepare";

struct Subject {
    image: &'static str,
    /// Host port published on 127.0.0.1, and the container port.
    port: Option<(u16, u16)>,
    check: Check,
    /// Extra `roprof profile` arguments (probe or exercise).
    profile: Vec<String>,
    duration: &'static str,
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

fn profile(s: &Subject) -> TempDir {
    let dir = TempDir(std::env::temp_dir().join(unique_name("helm")));
    let mut args: Vec<String> = ["profile", "--quiet", "--format", "json", "--duration"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    args.push(s.duration.into());
    args.push("-o".into());
    args.push(dir.0.display().to_string());
    if let Some((host, inner)) = s.port {
        args.push("-p".into());
        args.push(format!("127.0.0.1:{host}:{inner}"));
    }
    args.extend(s.profile.iter().cloned());
    args.push(s.image.into());
    let (code, _, err) = roprof(&args);
    assert_eq!(
        code,
        0,
        "expected `roprof {}` to exit 0; stderr:\n{err}",
        args.join(" ")
    );
    dir
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("expected {} in {}: {e}", file, dir.display()))
}

fn pod(yaml: &str) -> PodSpec {
    kubelet::pod_spec(yaml).unwrap_or_else(|e| panic!("expected a pod spec: {e}"))
}

/// The chart's pod minus the chart's own pieces is the k8s Deployment's
/// pod: the same volumes, mounts and initContainers, in order; the values'
/// initContainers run before the chart's; the container's root is
/// read-only.
fn same_parts_as_k8s(what: &str, rendered: &str, k8s: &str) -> Result<(), String> {
    let (got, want) = (pod(rendered), pod(k8s));
    let app = &got.containers[0];
    let mut errors = Vec::new();
    let volumes: Vec<_> = got
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.name != CHART_VOLUME)
        .cloned()
        .collect();
    if volumes != want.volumes.clone().unwrap_or_default() {
        errors.push("the volumes differ from k8s.yaml's");
    }
    let mounts: Vec<_> = app
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.name != CHART_VOLUME)
        .cloned()
        .collect();
    if mounts != want.containers[0].volume_mounts.clone().unwrap_or_default() {
        errors.push("the container's volumeMounts differ from k8s.yaml's");
    }
    let inits = got.init_containers.clone().unwrap_or_default();
    let (chart_own, values): (Vec<_>, Vec<_>) = inits.iter().partition(|c| c.name == CHART_INIT);
    if values.into_iter().cloned().collect::<Vec<_>>()
        != want.init_containers.clone().unwrap_or_default()
    {
        errors.push("the initContainers differ from k8s.yaml's");
    }
    if chart_own.len() != 1 || inits.last().map(|c| c.name.as_str()) != Some(CHART_INIT) {
        errors.push("the values' initContainers must all run before the chart's own");
    }
    if app
        .security_context
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem)
        != Some(true)
    {
        errors.push("the container's root is not read-only");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}; rendered:\n{rendered}\nk8s.yaml:\n{k8s}",
            errors.join("; ")
        ))
    }
}

fn run_all(s: &Subject) {
    require_privileged();
    let _g = ContainerGuard::new();
    let tmp = profile(s);
    let dir = tmp.0.clone();
    let k8s = read(&dir, "k8s.yaml");
    let port = s.port.map(|(h, _)| h);
    let publish = s.port.map(|(h, c)| format!("127.0.0.1:{h}:{c}"));
    let app_args: Vec<&str> = publish.iter().flat_map(|p| ["-p", p.as_str()]).collect();

    let values = read(&dir, "helm-values.yaml");
    let report = dir.join("report.json").display().to_string();
    let (code, prefixed, err) = roprof([
        "render",
        &report,
        "--format",
        "helm",
        "--helm-prefix",
        "server",
    ]);
    assert_eq!(
        code, 0,
        "expected `roprof render --format helm` to exit 0: {err}"
    );
    let top = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&prefixed)
        .unwrap_or_else(|e| panic!("expected the prefixed values to be YAML: {e}\n{prefixed}"));
    assert_eq!(
        top.as_mapping()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["server".into()]),
        "--helm-prefix server puts everything under server:\n{prefixed}"
    );

    let app_image = format!("image: {}\n", s.image);
    let server_image = format!("server:\n  image: {}\n", s.image);
    let mut failures = Vec::new();
    for (what, chart_dir, layers) in [
        (
            "helm-values.yaml on the app chart",
            "app",
            [values.as_str(), app_image.as_str()],
        ),
        (
            "render --helm-prefix server on the server chart",
            "server",
            [prefixed.as_str(), server_image.as_str()],
        ),
    ] {
        let chart = Chart::load(&chart::fixture(chart_dir))
            .unwrap_or_else(|e| panic!("expected the {chart_dir} chart to load: {e}"));
        let rendered = match chart.render(&layers) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{what}: {e}\nvalues:\n{}", layers[0]));
                continue;
            }
        };
        if let Err(e) = same_parts_as_k8s(what, &rendered, &k8s) {
            failures.push(e);
            continue;
        }
        match kubelet::run_deployment(&rendered, &app_args) {
            Ok(pod) => {
                if let Err(e) = healthy(s.check, &pod.app, port) {
                    failures.push(format!("{what}:\n{rendered}\n=> {e}"));
                }
            }
            Err(e) => failures.push(format!("{what}:\n{rendered}\n=> {e}")),
        }
    }
    drop(tmp);
    assert!(
        failures.is_empty(),
        "expected {} to run healthy from its Helm values in both charts; failed:\n\n{}",
        s.image,
        failures.join("\n\n")
    );
}

#[test]
fn nginx_runs_from_its_helm_values() {
    run_all(&Subject {
        image: NGINX_IMAGE,
        port: Some((18491, 80)),
        check: Check::Http,
        profile: vec!["--probe".into(), "http://127.0.0.1:18491/".into()],
        duration: "6s",
    });
}

#[test]
fn redis_runs_and_saves_from_its_helm_values() {
    let exercise = fixtures().join("redis/exercise.sh");
    run_all(&Subject {
        image: REDIS_IMAGE,
        port: Some((18494, 6379)),
        check: Check::Redis,
        profile: vec![
            "--exercise".into(),
            format!("bash {} 18494", exercise.display()),
        ],
        duration: "8s",
    });
}

/// Non-root with seeded data on a claim: the seeding and ownership
/// initContainers must survive the trip through the chart.
#[test]
fn postgresql_runs_and_writes_from_its_helm_values() {
    let exercise = fixtures().join("postgresql/exercise.sh");
    run_all(&Subject {
        image: POSTGRESQL_IMAGE,
        port: None,
        check: Check::Postgres,
        profile: vec![
            "--exercise".into(),
            format!("bash {} {POSTGRESQL_IMAGE}", exercise.display()),
        ],
        duration: "15s",
    });
}
