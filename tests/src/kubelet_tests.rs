//! The emulation's own pure parts: quantities, `$(VAR)`, workload kinds,
//! and refusing what it does not emulate.

use super::*;

#[test]
fn dollar_references() {
    let vars = vec![("A".to_owned(), "x".to_owned())];
    assert_eq!(expand("-D$(A)/$(B)", &vars), "-Dx/$(B)");
    assert_eq!(expand("$$(A) $5 $(A", &vars), "$(A) $5 $(A");
}

#[test]
fn a_statefulset_gets_its_claim_templates() {
    let yaml = "kind: Service\nmetadata: {name: s}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  selector: {}\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x\n  volumeClaimTemplates:\n  - metadata: {name: data}\n";
    let spec = pod_spec(yaml).expect("parses");
    let v = spec.volumes.expect("a claim volume");
    assert_eq!(v[0].name, "data");
    assert!(v[0].persistent_volume_claim.is_some());
}

#[test]
fn quantities() {
    assert_eq!(quantity_bytes("16Mi"), Some(16 << 20));
    assert_eq!(quantity_bytes("2Gi"), Some(2 << 30));
    assert_eq!(quantity_bytes("4096"), Some(4096));
    assert_eq!(quantity_bytes("1.5Mi"), None);
}

#[test]
fn unknown_fields_are_refused() {
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers:\n      - name: a\n        image: x\n        tty: true\n      volumes:\n      - name: h\n        hostPath: {path: /etc}\n";
    let spec = pod_spec(yaml).expect("parses");
    let err = check_known(&spec).expect_err("must refuse").0;
    assert!(
        err.contains("volume h") && err.contains("container a"),
        "{err}"
    );
}
