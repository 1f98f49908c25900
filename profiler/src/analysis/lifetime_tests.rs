//! The lifetime rules of the plan, one test each: what gets a tmpfs, a
//! volatile seeded volume, a persistent volume, or no mount at all.

use super::{
    AnalysisInput, PYCACHE_HINT, Settings, plan,
    tests::{dirs, entry, listing, obs},
};
use crate::model::{
    CPath, EntryKind, ImageConfig, ImageEntry, ImageListing, MountKind, MountPlan, MountRule, Op,
    PathObservation, RunOptions,
};

fn planned(l: &ImageListing, o: &[PathObservation]) -> MountPlan {
    plan(&AnalysisInput {
        observations: o,
        listing: l,
        config: &ImageConfig::default(),
        run_options: &RunOptions::default(),
        settings: Settings::default(),
    })
}

fn kinds(p: &MountPlan) -> Vec<(String, MountKind)> {
    p.mounts
        .iter()
        .map(|m| (m.target.display(), m.kind))
        .collect()
}

/// A log as servers write it: created if missing, appended to, never read
/// back through a write handle.
fn log(path: &str) -> PathObservation {
    PathObservation {
        append_opens: 2,
        ..obs(path, &[Op::Create, Op::Write])
    }
}

fn file(path: &str, mode: u32) -> ImageEntry {
    ImageEntry {
        mode,
        ..entry(path, EntryKind::File)
    }
}

#[test]
fn logs_the_application_recreates_need_no_seeding() {
    // nginx: /var/log/nginx ships access.log and error.log; nginx opens them
    // write-only with O_CREAT|O_APPEND, so an empty tmpfs does as well.
    let l = listing(vec![
        file("/var/log/nginx/access.log", 0o640),
        file("/var/log/nginx/error.log", 0o640),
    ]);
    let p = planned(
        &l,
        &[
            log("/var/log/nginx/access.log"),
            log("/var/log/nginx/error.log"),
        ],
    );
    assert_eq!(
        kinds(&p),
        [("/var/log/nginx".to_owned(), MountKind::Tmpfs)],
        "append-only logs: tmpfs, no named or seeded volume"
    );
    assert!(
        p.mounts[0].evidence.reason.contains("creates again"),
        "the evidence says why: {}",
        p.mounts[0].evidence.reason
    );
}

#[test]
fn a_log_read_back_or_truncated_is_seeded() {
    let l = listing(vec![file("/var/log/app/app.log", 0o640)]);
    let rdwr = PathObservation {
        other_write_opens: 1,
        ..log("/var/log/app/app.log")
    };
    assert_eq!(
        kinds(&planned(&l, &[rdwr])),
        [("/var/log/app".to_owned(), MountKind::SeededVolume)],
        "also opened O_RDWR: its content may be read back"
    );
    let rotated = obs("/var/log/app/app.log", &[Op::Create, Op::Truncate]);
    assert_eq!(
        kinds(&planned(&l, &[rotated])),
        [("/var/log/app".to_owned(), MountKind::SeededVolume)],
        "no append-only opens recorded (a version-1 report, or O_TRUNC): seeded"
    );
    let read = PathObservation {
        read_back: true,
        ..log("/var/log/app/app.log")
    };
    assert_eq!(
        kinds(&planned(&l, &[read])),
        [("/var/log/app".to_owned(), MountKind::SeededVolume)],
        "appended to and also opened read-only (a queue read back): seeded"
    );
}

#[test]
fn volatile_content_beside_image_files_is_seeded_never_persistent() {
    // An entrypoint renders conf.d/default.conf from a template, beside a
    // file the image ships there: fresh for every container, from the image.
    let l = listing(vec![
        file("/etc/nginx/conf.d/00-log.conf", 0o644),
        file("/etc/nginx/templates/default.conf.template", 0o644),
    ]);
    let p = planned(
        &l,
        &[obs(
            "/etc/nginx/conf.d/default.conf",
            &[Op::Create, Op::Truncate, Op::Write],
        )],
    );
    assert_eq!(
        kinds(&p),
        [("/etc/nginx/conf.d".to_owned(), MountKind::SeededVolume)]
    );
    assert!(p.mounts[0].shadows_image_content);
}

#[test]
fn pid_files_and_sockets_get_tmpfs_even_when_fsynced() {
    let l = listing(dirs(&["/run/app"]));
    let mut pid = obs("/run/app/app.pid", &[Op::Create, Op::Write, Op::Fsync]);
    pid.fsynced = true;
    let sock = obs("/run/app/app.sock", &[Op::Bind]);
    assert_eq!(
        kinds(&planned(&l, &[pid, sock])),
        [("/run/app".to_owned(), MountKind::Tmpfs)]
    );
}

#[test]
fn only_fsynced_data_is_persistent() {
    let l = listing(dirs(&["/var/lib/app", "/var/lib/db"]));
    let cache = obs("/var/lib/app/cache.bin", &[Op::Create, Op::Write]);
    let mut wal = obs("/var/lib/db/wal", &[Op::Create, Op::Write, Op::Fsync]);
    wal.fsynced = true;
    assert_eq!(
        kinds(&planned(&l, &[cache, wal])),
        [
            ("/var/lib/app".to_owned(), MountKind::Tmpfs),
            ("/var/lib/db".to_owned(), MountKind::PersistentVolume)
        ],
        "written but never fsynced: not persistent data"
    );
}

#[test]
fn used_empty_image_dirs_under_a_tmpfs_get_nested_tmpfs_with_their_mode() {
    // Apache: `mkdir -p /run/apache2 /run/lock/apache2` and a pid file in
    // /run/apache2; the image's /run/lock (1777) must exist again.
    let mut l = listing(dirs(&["/run/mount"]));
    l.entries.insert(
        CPath::from("/run/lock"),
        ImageEntry {
            mode: 0o1777,
            ..entry("/run/lock", EntryKind::Dir)
        },
    );
    let p = planned(
        &l,
        &[
            obs("/run/apache2", &[Op::Mkdir]),
            obs("/run/apache2/apache2.pid", &[Op::Create, Op::Write]),
            obs("/run/lock/apache2", &[Op::Mkdir]),
        ],
    );
    assert_eq!(
        kinds(&p),
        [
            ("/run".to_owned(), MountKind::Tmpfs),
            ("/run/lock".to_owned(), MountKind::Tmpfs)
        ],
        "no volume of any kind for /run"
    );
    assert_eq!(p.mounts[1].options.mode, 0o1777, "the image's mode");
    assert_eq!(p.mounts[1].evidence.rule, MountRule::ImageDirUnderTmpfs);
    assert!(
        p.warnings.iter().any(|w| w.contains("/run/mount")),
        "the unused one is noted: {:?}",
        p.warnings
    );
}

#[test]
fn a_mount_budget_seeds_instead_of_nesting() {
    let l = listing(dirs(&["/run/lock"]));
    let p = plan(&AnalysisInput {
        observations: &[
            obs("/run/x.pid", &[Op::Create]),
            obs("/run/lock/x", &[Op::Create]),
        ],
        listing: &l,
        config: &ImageConfig::default(),
        run_options: &RunOptions::default(),
        settings: Settings {
            max_mounts: Some(1),
            ..Settings::default()
        },
    });
    assert_eq!(kinds(&p), [("/run".to_owned(), MountKind::SeededVolume)]);
}

#[test]
fn no_mount_over_code_and_a_hint_for_python_bytecode() {
    // A Python app in /app writes its bytecode cache into /app/__pycache__
    // (which it creates): the only mount point would be /app, its code.
    let l = listing(vec![
        file("/app/main.py", 0o644),
        file("/app/lib/util.py", 0o644),
    ]);
    let o = [
        obs("/app/__pycache__", &[Op::Mkdir]),
        obs(
            "/app/__pycache__/main.cpython-311.pyc",
            &[Op::Create, Op::Write, Op::RenameTo],
        ),
    ];
    let p = planned(&l, &o);
    assert!(p.mounts.is_empty(), "no mount over /app: {:?}", kinds(&p));
    assert_eq!(p.unmounted.len(), 1, "{:?}", p.unmounted);
    let u = &p.unmounted[0];
    assert_eq!(u.dir, CPath::from("/app"));
    assert!(u.reason.contains("application code"), "{}", u.reason);
    assert_eq!(u.hint.as_deref(), Some(PYCACHE_HINT));
    assert!(
        p.excluded
            .iter()
            .any(|x| x.path == CPath::from("/app/__pycache__/main.cpython-311.pyc")),
        "the write is excluded with its reason"
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("PYTHONDONTWRITEBYTECODE=1")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn writable_code_mounts_over_code_only_when_asked_and_says_it_weakens_the_root() {
    // A binary in /opt/app rewrites a lock file beside itself.
    let l = listing(vec![file("/opt/app/run", 0o755)]);
    let o = [obs("/opt/app/app.lock", &[Op::Create, Op::Write])];
    let refused = planned(&l, &o);
    assert!(refused.mounts.is_empty() && refused.writable_code.is_empty());
    let u = &refused.unmounted[0];
    assert!(
        u.reason.contains("writable") && u.reason.contains("--writable-code"),
        "the real reason (the code would become writable) and the opt-in: {}",
        u.reason
    );
    assert!(
        !u.reason.contains("stale copy"),
        "not the named-volume reason: {}",
        u.reason
    );

    let p = plan(&AnalysisInput {
        observations: &o,
        listing: &l,
        config: &ImageConfig::default(),
        run_options: &RunOptions::default(),
        settings: Settings {
            writable_code: true,
            ..Settings::default()
        },
    });
    assert!(p.unmounted.is_empty(), "{:?}", p.unmounted);
    assert_eq!(
        kinds(&p),
        [("/opt/app".to_owned(), MountKind::SeededVolume)],
        "seeded: a tmpfs would hide the code"
    );
    assert!(!p.mounts[0].options.noexec, "the code runs from it");
    assert_eq!(
        p.writable_code,
        [crate::model::WritableCode {
            dir: CPath::from("/opt/app"),
            code: CPath::from("/opt/app/run"),
        }]
    );
    assert!(
        p.warnings.iter().any(|w| w.contains("WEAKENS")),
        "named in a warning: {:?}",
        p.warnings
    );
}

#[test]
fn code_is_known_by_exec_bit_and_by_what_the_run_executed() {
    let by_mode = listing(vec![file("/srv/tool/run", 0o755)]);
    let p = planned(&by_mode, &[obs("/srv/tool/state", &[Op::Create])]);
    assert!(p.mounts.is_empty() && p.unmounted.len() == 1, "exec bit");
    assert!(p.unmounted[0].hint.is_none(), "no known hint for this one");

    let by_run = listing(vec![file("/srv/plugin/x.bin", 0o644)]);
    let mut loaded = obs("/srv/plugin/x.bin", &[Op::MmapExec]);
    loaded.executed = true;
    let p = planned(&by_run, &[loaded, obs("/srv/plugin/state", &[Op::Create])]);
    assert!(p.mounts.is_empty(), "mapped executable in the run");

    let data = listing(vec![file("/srv/data/table.csv", 0o644)]);
    let p = planned(&data, &[obs("/srv/data/new.csv", &[Op::Create])]);
    assert_eq!(
        kinds(&p),
        [("/srv/data".to_owned(), MountKind::SeededVolume)],
        "data files are not code"
    );
}

#[test]
fn merging_for_a_budget_never_mounts_over_code() {
    let l = listing(vec![
        file("/srv/bin/tool", 0o755),
        entry("/srv/a", EntryKind::Dir),
        entry("/srv/b", EntryKind::Dir),
    ]);
    let p = plan(&AnalysisInput {
        observations: &[
            obs("/srv/a/x", &[Op::Create]),
            obs("/srv/b/y", &[Op::Create]),
        ],
        listing: &l,
        config: &ImageConfig::default(),
        run_options: &RunOptions::default(),
        settings: Settings {
            max_mounts: Some(1),
            ..Settings::default()
        },
    });
    assert!(
        !p.mounts.iter().any(|m| m.target == CPath::from("/srv")),
        "/srv holds /srv/bin/tool: {:?}",
        kinds(&p)
    );
    assert!(
        p.warnings.iter().any(|w| w.contains("could not merge")),
        "the budget is not met, and it says so: {:?}",
        p.warnings
    );
}

#[test]
fn writes_leave_one_out_showed_soft_get_no_mount_and_a_hint() {
    let l = listing(dirs(&["/srv/app/__pycache__", "/var/cache/app"]));
    let o = [
        obs(
            "/srv/app/__pycache__/m.cpython-311.pyc",
            &[Op::Create, Op::Write],
        ),
        obs("/var/cache/app/c", &[Op::Create]),
    ];
    let mut settings = Settings::default();
    settings.soft.insert(CPath::from("/srv/app/__pycache__"));
    settings.soft.insert(CPath::from("/var/cache/app"));
    let p = plan(&AnalysisInput {
        observations: &o,
        listing: &l,
        config: &ImageConfig::default(),
        run_options: &RunOptions::default(),
        settings,
    });
    assert!(p.mounts.is_empty(), "{:?}", kinds(&p));
    let hints: Vec<(String, Option<&str>)> = p
        .unmounted
        .iter()
        .map(|u| (u.dir.display(), u.hint.as_deref()))
        .collect();
    assert_eq!(
        hints,
        [
            ("/srv/app/__pycache__".to_owned(), Some(PYCACHE_HINT)),
            ("/var/cache/app".to_owned(), None)
        ]
    );
    assert!(p.unmounted.iter().all(|u| u.reason.contains("fail softly")));
}
