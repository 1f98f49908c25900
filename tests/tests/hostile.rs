//! Hostile paths (issue 9): deep, long, and shell/YAML metacharacters are
//! recorded exactly or flagged truncated, and every output format stays
//! valid and inert.

use std::process::Command;

use serde::Deserialize as _;

use roprof_tests::{
    ContainerGuard, TRAPS_IMAGE, path_entry, profile_json, require_privileged, roprof, unique_name,
};

const ODD_DIR: &str = "/srv/odd $(id) `id` \"dq\" x";

#[test]
fn deep_long_and_odd_paths_are_exact_and_every_format_is_inert() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = std::env::temp_dir().join(unique_name("hostile"));
    let r = profile_json(&[
        "--duration",
        "5s",
        "-o",
        dir.to_str().unwrap(),
        TRAPS_IMAGE,
        "hostile",
    ]);
    assert_eq!(
        r["losses"]["truncated_paths"].as_u64(),
        Some(0),
        "nothing truncated: {}",
        r["losses"]
    );
    let deep = format!("/tmp/{}leaf.txt", "d/".repeat(200));
    assert!(
        path_entry(&r, &deep).is_some(),
        "the 200-level path is recorded exactly"
    );
    let seg = "abcdefghij".repeat(20);
    let long = format!("/tmp/{}/tail.txt", vec![seg.as_str(); 19].join("/"));
    assert!(long.len() > 3800);
    assert!(
        path_entry(&r, &long).is_some(),
        "the {}-byte path is recorded exactly",
        long.len()
    );
    assert!(
        path_entry(&r, "/tmp/new\nline.txt").is_some(),
        "a newline in a name is kept"
    );
    assert!(
        path_entry(&r, &format!("{ODD_DIR}/f.txt")).is_some(),
        "shell metacharacters are kept"
    );
    let targets: Vec<&str> = r["plan"]["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&ODD_DIR),
        "the odd directory is a mount target: {targets:?}"
    );

    // The docker line, evaluated by a real shell as arguments to printf:
    // the odd target arrives as one literal word and nothing is executed.
    let line = std::fs::read_to_string(dir.join("docker.sh")).unwrap();
    let cmd = line
        .lines()
        .find(|l| l.starts_with("docker run"))
        .expect("a docker run line");
    let words = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s\\0' {}",
            cmd.trim_start_matches("docker ")
        ))
        .output()
        .expect("sh runs");
    let words: Vec<String> = String::from_utf8_lossy(&words.stdout)
        .split('\0')
        .map(str::to_owned)
        .collect();
    assert!(
        words.iter().any(|w| w.starts_with(&format!("{ODD_DIR}:"))),
        "odd target is one word: {words:?}"
    );
    assert!(
        !words.iter().any(|w| w.contains("uid=")),
        "nothing was executed: {words:?}"
    );

    // Compose and Kubernetes YAML parse, and carry the exact target
    // (compose with its `$` written `$$`, which compose reads back as `$`).
    for f in ["compose.yaml", "k8s.yaml", "kustomize.yaml"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let want = if f == "compose.yaml" {
            "odd $$(id)"
        } else {
            "odd $(id)"
        };
        let mut found = false;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = serde_yaml_ng::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{f} is valid YAML: {e}\n{text}"));
            found |= serde_yaml_ng::to_string(&v).unwrap().contains(want);
        }
        assert!(found, "{f} carries the odd target:\n{text}");
    }
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        !md.contains("\nline.txt"),
        "a newline in a path never breaks a Markdown line"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn paths_deeper_than_the_kernel_walk_are_flagged_not_cut_silently() {
    require_privileged();
    let _g = ContainerGuard::new();
    let (code, out, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "json",
        "--duration",
        "8s",
        TRAPS_IMAGE,
        "toodeep",
    ]);
    assert_eq!(
        code, 3,
        "a truncated path makes the profile incomplete; stderr:\n{err}"
    );
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(r["losses"]["truncated_paths"].as_u64().unwrap() > 0);
    let flagged = r["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["truncated"] == true)
        .count();
    assert!(flagged > 0, "the truncated paths are marked in the report");
}
