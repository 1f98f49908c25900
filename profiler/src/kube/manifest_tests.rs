//! Manifest parsing: workloads found, errors naming file, line and key.

use std::path::Path;

use super::Manifest;
use crate::kube::KubeError;

fn parse(text: &str) -> Result<Manifest, KubeError> {
    Manifest::parse(Path::new("db.yaml"), text.to_owned())
}

const STS: &str = "\
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {ports: [{port: 5432}]}
---
# the database
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: postgres
        image: roprof-fixture/postgresql:latest
      - name: sidecar
        image: roprof-fixture/busybox:latest
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce]}
";

#[test]
fn finds_the_statefulset_its_containers_and_claims() {
    let m = parse(STS).expect("parses");
    assert_eq!(m.workloads.len(), 1);
    let (w, c) = m.select(Some("sidecar")).expect("sidecar exists");
    assert_eq!(w.describe(), "StatefulSet/db");
    assert_eq!(c.name, "sidecar");
    assert_eq!(w.claims, vec!["data"]);
    let (_, first) = m.select(None).expect("first container");
    assert_eq!(first.name, "postgres");
}

#[test]
fn an_unknown_container_names_file_line_key_and_the_containers() {
    let e = parse(STS)
        .expect("parses")
        .select(Some("pg"))
        .expect_err("no pg")
        .to_string();
    assert!(
        e.starts_with("db.yaml:17: spec.template.spec.containers:")
            && e.contains("\"pg\"")
            && e.contains("StatefulSet/db [postgres, sidecar]"),
        "{e}"
    );
}

#[test]
fn bad_yaml_names_the_line_in_the_file() {
    let text = format!("{STS}---\nkind: Pod\nmetadata:\n  name: x\n   bad: [\n");
    let e = parse(&text).expect_err("bad yaml").to_string();
    // The broken line is line 29 of the file (line 4 of the third document).
    assert!(e.starts_with("db.yaml:2"), "{e}");
    assert!(e.contains("YAML"), "{e}");
    let line: usize = e
        .split(':')
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a line number");
    assert!((28..=30).contains(&line), "line {line} in {e}");
    // The parser's own `at line N` counts from the file's start too.
    assert!(!e.contains("at line 4 "), "document-relative line in {e}");
}

#[test]
fn a_kind_without_pod_template_is_refused_naming_its_line() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
    let e = parse(text)
        .expect("parses")
        .select(None)
        .expect_err("no workload")
        .to_string();
    assert!(
        e.starts_with("db.yaml:7: kind: Service/s has no pod template"),
        "{e}"
    );
}

#[test]
fn a_workload_with_a_wrong_field_type_names_the_line() {
    let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x\n        command: sh -c true\n";
    let e = parse(text).expect_err("command must be a list").to_string();
    assert!(e.starts_with("db.yaml:11:"), "{e}");
    assert!(e.contains("Deployment/d"), "{e}");
}

#[test]
fn only_the_profiled_workload_is_patched_even_when_another_has_the_same_container() {
    let one = "# first\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers: [{name: app, image: x}]\n";
    let two = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers: [{name: app, image: x}]\n";
    let m = parse(&format!("{one}---\n{two}")).expect("parses");
    let w = m.workload_at(1).expect("the second document's workload");
    assert_eq!(w.describe(), "Deployment/b");
    let out = m
        .patch(w, &crate::model::Report::default(), "app")
        .expect("patches");
    let (first, second) = out.split_once("---\n").expect("two documents");
    assert_eq!(first, one, "the other workload is untouched, byte for byte");
    assert!(
        second.contains("readOnlyRootFilesystem: true"),
        "the profiled workload is patched:\n{second}"
    );
}
