//! The kernel side sees every write-type operation of the container with
//! exact canonical paths and results (issue 3), in a writable and in a
//! read-only run, and reports loss instead of hiding it.

use roprof_tests::{
    ContainerGuard, WRITER_IMAGE, op_result, path_entry, profile_json, profile_json_env,
    require_privileged, roprof,
};

/// (path, op) pairs opsuite performs, with the canonical path the kernel
/// must report: relative, dirfd, symlinked-dir and `..` forms all fold here.
const CANONICAL: &[(&str, &str)] = &[
    ("/srv/app/abs.txt", "create"),
    ("/srv/app/rel.txt", "create"),
    ("/srv/app/dirfd.txt", "create"),
    ("/srv/app/via-symlink.txt", "create"),
    ("/srv/app/dotdot.txt", "create"),
    ("/srv/app/creat.txt", "create"),
    ("/srv/app/openat2.txt", "create"),
    ("/srv/app/newdir", "mkdir"),
    ("/srv/app/newdir/sub", "mkdir"),
    ("/srv/app/fifo", "mknod"),
    ("/srv/app/rel.txt", "rename_from"),
    ("/srv/app/renamed.txt", "rename_to"),
    ("/srv/app/dirfd.txt", "rename_from"),
    ("/srv/app/dirfd2.txt", "rename_to"),
    ("/srv/app/hard.txt", "link"),
    ("/srv/app/hard2.txt", "link"),
    ("/srv/app/sym.txt", "symlink"),
    ("/srv/app/sym2.txt", "symlink"),
    ("/srv/app/hard.txt", "unlink"),
    ("/srv/app/hard2.txt", "unlink"),
    ("/srv/app/newdir/sub", "rmdir"),
    ("/srv/app/newdir", "rmdir"),
    ("/run/app.sock", "bind"),
    ("/run/app.pid", "create"),
    ("/srv/owned/data.txt", "create"),
    ("/tmp/scratch.txt", "create"),
];

/// Each path's operations as (path, op, succeeded at least once, errors).
fn outcomes(r: &serde_json::Value) -> std::collections::BTreeSet<(String, String, bool, String)> {
    let mut out = std::collections::BTreeSet::new();
    for p in r["paths"].as_array().expect("paths array") {
        let path = p["path"].to_string();
        for (op, o) in p["ops"].as_object().expect("ops object") {
            let errs = o["errors"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            out.insert((
                path.clone(),
                op.clone(),
                o["ok"].as_u64().unwrap_or(0) > 0,
                errs,
            ));
        }
    }
    out
}

/// The kernel side has a fast path and the fallback other hosts take; the
/// fallback, forced, must give the same report: the current task's fd
/// table and compat flag are read through its BTF pointer (Linux 5.11+),
/// or with `bpf_probe_read_kernel` on 5.8–5.10: `ROPROF_TASK_BTF=0`.
#[test]
fn the_kernel_fallback_paths_give_the_same_report_as_the_fast_ones() {
    require_privileged();
    let _g = ContainerGuard::new();
    let fast = profile_json(&["--duration", "8s", WRITER_IMAGE]);
    let expected = outcomes(&fast);
    let env = ("ROPROF_TASK_BTF", "0");
    let r = profile_json_env(&["--duration", "8s", WRITER_IMAGE], &[env]);
    for (path, op) in CANONICAL {
        let (ok, errs) = op_result(&r, path, op);
        assert!(
            ok >= 1 && errs.is_empty(),
            "with {env:?}, expected {op} on {path} to succeed, got ok={ok} errors={errs:?}"
        );
    }
    let got = outcomes(&r);
    assert_eq!(
        expected.symmetric_difference(&got).collect::<Vec<_>>(),
        Vec::<&(String, String, bool, String)>::new(),
        "with {env:?}, the same operations and outcomes as the fast paths"
    );
    assert_eq!(
        r["stats"]["task_reads"].as_str(),
        Some("probe_read"),
        "with {env:?}, the probe-read variant ran: {}",
        r["stats"]
    );
}

#[test]
fn writable_run_reports_every_operation_at_its_canonical_path() {
    require_privileged();
    let _g = ContainerGuard::new();
    let r = profile_json(&["--duration", "8s", WRITER_IMAGE]);
    for (path, op) in CANONICAL {
        let (ok, errs) = op_result(&r, path, op);
        assert!(
            ok >= 1 && errs.is_empty(),
            "expected {op} on {path} to succeed once, got ok={ok} errors={errs:?}"
        );
    }
    // fd-based and in-place operations on the same file, resolved through the fd.
    for op in ["truncate", "chmod", "chown", "utimes"] {
        let (ok, _) = op_result(&r, "/srv/app/abs.txt", op);
        assert!(
            ok >= 2,
            "expected path and fd forms of {op} on /srv/app/abs.txt, got ok={ok}"
        );
    }
    let abs = path_entry(&r, "/srv/app/abs.txt").expect("abs.txt observed");
    assert_eq!(
        abs["bytes_written"].as_u64(),
        Some(6),
        "opsuite writes \"hello\\n\": {abs}"
    );
    assert_eq!(
        abs["fsynced"].as_bool(),
        Some(true),
        "abs.txt was fsync'ed: {abs}"
    );
    // A name with a space, quotes and byte 0xff is kept exactly (hex in JSON).
    let odd = hex(b"/srv/app/sp ace\xff'q\".txt");
    assert!(
        r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"]["hex"].as_str() == Some(&odd)),
        "expected the non-UTF-8 name as hex {odd}"
    );
    // access(W_OK) is a probe, recorded with its result.
    let (ok, _) = op_result(&r, "/etc/passwd", "access_w");
    assert_eq!(
        ok, 1,
        "access(/etc/passwd, W_OK) succeeds in a writable run"
    );
    // The symlink and the symlinked directory are never reported as such.
    for p in [
        "/var/run/app.pid",
        "/srv/link/via-symlink.txt",
        "/srv/app/../app/dotdot.txt",
    ] {
        assert!(
            path_entry(&r, p).is_none(),
            "{p} must be reported canonically"
        );
    }
    // Nothing written by the runtime before the entrypoint's exec.
    for p in r["paths"].as_array().unwrap() {
        let s = p["path"].as_str().unwrap_or("");
        assert!(
            !s.starts_with("/proc/") && !s.starts_with("/sys/"),
            "runtime setup write leaked into the profile: {s}"
        );
    }
    assert_eq!(r["losses"]["ringbuf_drops"].as_u64(), Some(0));
}

#[test]
fn read_only_run_reports_erofs_on_the_same_canonical_paths() {
    require_privileged();
    let _g = ContainerGuard::new();
    let r = profile_json(&["--read-only", "--duration", "8s", WRITER_IMAGE]);
    assert_eq!(r["run"]["read_only"].as_bool(), Some(true));
    for (path, op) in CANONICAL {
        // Operations on names that could never be created fail earlier (ENOENT).
        if matches!(*op, "rename_from" | "unlink" | "rmdir" | "link") || path.contains("newdir/sub")
        {
            continue;
        }
        let (ok, errs) = op_result(&r, path, op);
        assert!(
            ok == 0 && errs == ["EROFS"],
            "expected {op} on {path} to fail with EROFS, got ok={ok} errors={errs:?}"
        );
    }
    let (_, errs) = op_result(&r, "/etc/passwd", "access_w");
    assert_eq!(
        errs,
        ["EROFS"],
        "access(W_OK) on a read-only root reports EROFS"
    );
}

#[test]
fn hot_loop_on_one_file_is_deduplicated_in_the_kernel_with_exact_counts() {
    require_privileged();
    let _g = ContainerGuard::new();
    let r = profile_json(&[
        "--duration",
        "20s",
        WRITER_IMAGE,
        "loop",
        "20000",
        "/tmp/hot",
    ]);
    let (ok, _) = op_result(&r, "/tmp/hot", "create");
    assert_eq!(ok, 20000, "every one of the 20000 opens is counted");
    let events = r["stats"]["events"].as_u64().unwrap();
    assert!(
        events < 100,
        "a hot loop must send O(1) records, sent {events}"
    );
    assert!(r["stats"]["deduped"].as_u64().unwrap() >= 19_999);
}

#[test]
fn loss_is_reported_and_fails_the_run_unless_allowed() {
    require_privileged();
    let _g = ContainerGuard::new();
    let args = [
        "profile",
        "--quiet",
        "--format",
        "json",
        "--ringbuf-bytes",
        "8192",
        "--duration",
        "30s",
        WRITER_IMAGE,
        "many",
        "30000",
        "/tmp",
    ];
    let (code, out, err) = roprof(args);
    assert_eq!(code, 3, "a lossy profile must exit 3; stderr:\n{err}");
    assert!(
        err.contains("INCOMPLETE"),
        "stderr must say the profile is incomplete:\n{err}"
    );
    let r: serde_json::Value = serde_json::from_str(&out).expect("the report is still printed");
    assert!(
        r["losses"]["ringbuf_drops"].as_u64().unwrap() > 0,
        "drops are counted: {}",
        r["losses"]
    );
    let mut allowed = args.to_vec();
    allowed.insert(1, "--allow-loss");
    let (code, _, err) = roprof(&allowed);
    assert_eq!(
        code, 0,
        "--allow-loss accepts a lossy profile; stderr:\n{err}"
    );
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}
