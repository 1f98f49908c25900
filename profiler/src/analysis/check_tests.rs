//! The gate's comparison, table-driven: a baseline plan and a new run in,
//! the findings out.

use std::sync::Arc;

use super::check::{compare, plan_diff, seed_digest};
use crate::model::{
    CPath, EntryKind, Evidence, FindingKind, ImageEntry, ImageListing, MountKind, MountOptions,
    MountRule, Op, OpStats, PathObservation, PlannedMount, ProcRef, Report, SeedDigest, Severity,
};

fn proc(comm: &str, uid: u32) -> Arc<ProcRef> {
    Arc::new(ProcRef {
        pid: 7,
        comm: comm.into(),
        uid,
        gid: uid,
    })
}

fn write(path: &str, op: Op, comm: &str, uid: u32) -> PathObservation {
    let p = proc(comm, uid);
    let mut o = PathObservation {
        path: CPath::from(path),
        first: p.clone(),
        last: p,
        ..PathObservation::default()
    };
    o.ops.insert(
        op,
        OpStats {
            ok: 1,
            ..OpStats::default()
        },
    );
    o
}

fn erofs(path: &str, comm: &str) -> PathObservation {
    let mut o = write(path, Op::Create, comm, 0);
    let mut s = OpStats::default();
    s.errors.insert("EROFS".into(), 1);
    o.ops.insert(Op::Create, s);
    o
}

fn mount(target: &str, kind: MountKind, uid: u32, mode: u32) -> PlannedMount {
    PlannedMount {
        target: CPath::from(target),
        kind,
        options: MountOptions {
            mode,
            uid,
            gid: uid,
            ..MountOptions::default()
        },
        shadows_image_content: false,
        evidence: Evidence {
            rule: MountRule::ParentOfNewEntry,
            ..Evidence::default()
        },
    }
}

fn digest(target: &str, sha: &str) -> SeedDigest {
    SeedDigest {
        target: CPath::from(target),
        sha256: sha.into(),
        ..SeedDigest::default()
    }
}

fn report(mounts: Vec<PlannedMount>, paths: Vec<PathObservation>) -> Report {
    let mut r = Report {
        paths,
        ..Report::default()
    };
    r.plan.mounts = mounts;
    r
}

type Row = (
    &'static str,
    Report,
    Report,
    Vec<(Severity, FindingKind, &'static str)>,
);

#[expect(clippy::too_many_lines, reason = "a table of cases")]
fn rows() -> Vec<Row> {
    let cache = || mount("/var/cache/app", MountKind::Tmpfs, 0, 0o755);
    vec![
        (
            "a covered write: nothing to say",
            report(vec![cache()], vec![]),
            report(
                vec![cache()],
                vec![write("/var/cache/app/x", Op::Create, "app", 0)],
            ),
            vec![],
        ),
        (
            "writes in a new directory: one failure at the new plan's mount",
            report(vec![cache()], vec![]),
            report(
                vec![cache(), mount("/var/spool", MountKind::Tmpfs, 0, 0o755)],
                vec![
                    write("/var/cache/app/x", Op::Create, "app", 0),
                    write("/var/spool/q", Op::Mkdir, "mkdir", 0),
                    write("/var/spool/q/job", Op::Create, "app", 0),
                ],
            ),
            vec![(Severity::Fail, FindingKind::WriteOutsidePlan, "/var/spool")],
        ),
        (
            "EROFS seen in a read-only run",
            report(vec![cache()], vec![]),
            {
                let mut r = report(
                    vec![cache()],
                    vec![
                        write("/var/cache/app/x", Op::Create, "app", 0),
                        erofs("/etc/app.lock", "app"),
                    ],
                );
                r.run.read_only = true;
                r
            },
            vec![(Severity::Fail, FindingKind::Erofs, "/etc/app.lock")],
        ),
        (
            "a non-root writer where the plan set root 0755",
            report(vec![cache()], vec![]),
            report(
                vec![mount("/var/cache/app", MountKind::Tmpfs, 1000, 0o755)],
                vec![write("/var/cache/app/x", Op::Create, "app", 1000)],
            ),
            vec![(
                Severity::Fail,
                FindingKind::MountOwnerMode,
                "/var/cache/app",
            )],
        ),
        (
            "a non-root writer in a 1777 tmpfs is fine",
            report(vec![mount("/tmp", MountKind::Tmpfs, 0, 0o1777)], vec![]),
            report(
                vec![mount("/tmp", MountKind::Tmpfs, 0, 0o1777)],
                vec![write("/tmp/x", Op::Create, "app", 1000)],
            ),
            vec![],
        ),
        (
            "data now fsynced under a tmpfs",
            report(
                vec![mount("/var/lib/app", MountKind::Tmpfs, 0, 0o755)],
                vec![],
            ),
            report(
                vec![mount("/var/lib/app", MountKind::PersistentVolume, 0, 0o755)],
                vec![{
                    let mut o = write("/var/lib/app/db", Op::Write, "app", 0);
                    o.fsynced = true;
                    o
                }],
            ),
            vec![(Severity::Fail, FindingKind::MountKind, "/var/lib/app")],
        ),
        (
            "a mount not written any more",
            report(
                vec![cache(), mount("/run", MountKind::Tmpfs, 0, 0o755)],
                vec![],
            ),
            report(
                vec![cache()],
                vec![write("/var/cache/app/x", Op::Create, "app", 0)],
            ),
            vec![(Severity::Warn, FindingKind::UnusedMount, "/run")],
        ),
        (
            "new image content under a seeded mount",
            {
                let mut r = report(
                    vec![mount("/srv/seed", MountKind::SeededVolume, 0, 0o755)],
                    vec![],
                );
                r.seeds = vec![digest("/srv/seed", "aa")];
                r
            },
            {
                let mut r = report(
                    vec![mount("/srv/seed", MountKind::SeededVolume, 0, 0o755)],
                    vec![write("/srv/seed/c", Op::OpenWrite, "app", 0)],
                );
                r.seeds = vec![digest("/srv/seed", "bb")];
                r
            },
            vec![(Severity::Warn, FindingKind::StaleSeed, "/srv/seed")],
        ),
        (
            "a coverage warning the baseline did not have, and one it had",
            {
                let mut r = report(vec![cache()], vec![]);
                r.plan.warnings = vec!["old".into()];
                r
            },
            {
                let mut r = report(
                    vec![cache()],
                    vec![write("/var/cache/app/x", Op::Create, "app", 0)],
                );
                r.plan.warnings = vec!["old".into(), "new".into()];
                r
            },
            vec![(Severity::Warn, FindingKind::Coverage, "")],
        ),
    ]
}

#[test]
fn each_case_finds_what_it_should() {
    for (name, baseline, new, want) in rows() {
        let got: Vec<(Severity, FindingKind, String)> = compare(&baseline, &new)
            .findings
            .into_iter()
            .map(|f| {
                (
                    f.severity,
                    f.kind,
                    f.path.map(|p| p.display()).unwrap_or_default(),
                )
            })
            .collect();
        let want: Vec<(Severity, FindingKind, String)> = want
            .into_iter()
            .map(|(s, k, p)| (s, k, p.to_owned()))
            .collect();
        assert_eq!(got, want, "case `{name}`");
    }
}

#[test]
fn a_failure_names_path_process_and_what_to_add() {
    let base = report(vec![], vec![]);
    let new = report(
        vec![mount("/var/spool", MountKind::Tmpfs, 0, 0o755)],
        vec![write("/var/spool/job", Op::Create, "worker", 0)],
    );
    let r = compare(&base, &new);
    let f = &r.findings[0];
    assert_eq!(f.processes, vec!["worker".to_owned()]);
    assert!(f.message.contains("/var/spool/job"), "{}", f.message);
    assert!(f.fix.contains("--tmpfs /var/spool:"), "{}", f.fix);
    assert!(r.failed(false));
    assert_eq!(r.diff.added.len(), 1);
}

#[test]
fn strict_fails_on_warnings_alone() {
    let base = report(vec![mount("/run", MountKind::Tmpfs, 0, 0o755)], vec![]);
    let r = compare(&base, &report(vec![], vec![]));
    assert!(!r.failed(false) && r.failed(true), "{:?}", r.findings);
}

#[test]
fn the_plan_diff_lists_added_removed_and_changed_mounts() {
    let old = report(
        vec![
            mount("/a", MountKind::Tmpfs, 0, 0o755),
            mount("/b", MountKind::Tmpfs, 0, 0o755),
        ],
        vec![],
    );
    let new = report(
        vec![
            mount("/b", MountKind::SeededVolume, 0, 0o755),
            mount("/c", MountKind::Tmpfs, 0, 0o755),
        ],
        vec![],
    );
    let d = plan_diff(&old.plan, &new.plan);
    assert_eq!(d.removed[0].target, CPath::from("/a"));
    assert_eq!(d.added[0].target, CPath::from("/c"));
    assert_eq!(d.changed[0].new.kind, MountKind::SeededVolume);
    assert!(plan_diff(&old.plan, &old.plan).is_empty());
}

#[test]
fn a_seed_digest_covers_what_is_below_the_target_only() {
    let entry = |p: &str, size: u64| ImageEntry {
        path: CPath::from(p),
        kind: EntryKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size,
        link_target: None,
    };
    let mut l = ImageListing::default();
    for e in [
        entry("/srv/seed", 0),
        entry("/srv/seed/a", 3),
        entry("/srv/seedling", 9),
    ] {
        l.entries.insert(e.path.clone(), e);
    }
    let d1 = seed_digest(&CPath::from("/srv/seed"), &l);
    assert_eq!((d1.entries, d1.bytes), (1, 3));
    let e = entry("/srv/seed/b", 5);
    l.entries.insert(e.path.clone(), e);
    let d2 = seed_digest(&CPath::from("/srv/seed"), &l);
    assert_ne!(d1.sha256, d2.sha256);
    assert_eq!(
        d2.sample,
        vec![CPath::from("/srv/seed/a"), CPath::from("/srv/seed/b")]
    );
    // The same listing digests the same.
    assert_eq!(d2, seed_digest(&CPath::from("/srv/seed"), &l));
}
