//! A fresh host mounts neither tracefs nor debugfs (issue 14): a whole
//! profile, verification included, runs in a private mount namespace where
//! both are unmounted, so a host someone prepared by hand cannot hide a
//! dependency on them.

use roprof_tests::{ContainerGuard, WRITER_IMAGE, owner, require_privileged, roprof_bin};

#[test]
fn a_full_profile_with_verification_needs_no_tracefs_or_debugfs() {
    require_privileged();
    let _g = ContainerGuard::new();
    // Lazy unmounts (the host may have them mounted, or not); then prove
    // they are gone from this namespace before running roprof.
    let script = r#"
        set -u
        for m in /sys/kernel/debug/tracing /sys/kernel/tracing /sys/kernel/debug; do
            umount -l "$m" 2>/dev/null
        done
        if grep -Eq ' (tracefs|debugfs) ' /proc/self/mounts; then
            echo "tracefs or debugfs still mounted:" >&2
            grep -E ' (tracefs|debugfs) ' /proc/self/mounts >&2
            exit 97
        fi
        exec "$ROPROF" profile --quiet --format json --verify --duration 5s "$IMAGE"
    "#;
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .env("ROPROF", roprof_bin())
        .env("ROPROF_TEST_LABEL", owner())
        .env("IMAGE", WRITER_IMAGE)
        .output()
        .expect("expected to run unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(97),
        "could not unmount tracefs/debugfs in a private namespace:\n{stderr}"
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "roprof profile --verify without tracefs/debugfs must succeed; stderr:\n{stderr}"
    );
    let r: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("a JSON report on stdout");
    let paths = r["paths"].as_array().expect("paths");
    assert!(
        paths
            .iter()
            .any(|p| p["path"].as_str() == Some("/srv/app/abs.txt")),
        "the container's writes were traced (cgroup learnt without tracefs)"
    );
    let rounds = r["rounds"].as_array().expect("rounds");
    assert!(
        rounds
            .last()
            .is_some_and(|x| x["passed"].as_bool() == Some(true)),
        "the read-only verification ran and passed: {}",
        r["rounds"]
    );
}
