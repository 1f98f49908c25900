//! Table-driven tests of the planner, plus builders shared with the property
//! tests.

use super::{AnalysisInput, NO_WRITES, Settings, plan};
use crate::model::{
    CPath, EntryKind, ErrorCounts, ImageConfig, ImageEntry, ImageListing, MountKind, MountPlan,
    MountRule, Op, OpStats, PathObservation, ProcRef, RunOptions,
};

pub(super) fn entry(path: &str, kind: EntryKind) -> ImageEntry {
    ImageEntry {
        path: CPath::from(path),
        kind,
        mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
        uid: 0,
        gid: 0,
        size: if kind == EntryKind::File { 100 } else { 0 },
        link_target: None,
    }
}

/// A listing with every ancestor of every path as a directory.
pub(super) fn listing(entries: Vec<ImageEntry>) -> ImageListing {
    let mut l = ImageListing::default();
    l.entries
        .insert(CPath::from("/"), entry("/", EntryKind::Dir));
    for e in entries {
        let mut p = e.path.parent();
        while !l.entries.contains_key(&p) {
            l.entries.insert(
                p.clone(),
                ImageEntry {
                    path: p.clone(),
                    ..entry("/", EntryKind::Dir)
                },
            );
            p = p.parent();
        }
        l.entries.insert(e.path.clone(), e);
    }
    l
}

pub(super) fn dirs(paths: &[&str]) -> Vec<ImageEntry> {
    paths.iter().map(|p| entry(p, EntryKind::Dir)).collect()
}

pub(super) fn obs(path: &str, ops: &[Op]) -> PathObservation {
    let proc_ = ProcRef {
        pid: 7,
        comm: "app".into(),
        uid: 1000,
        gid: 1000,
    };
    PathObservation {
        path: CPath::from(path),
        ops: ops
            .iter()
            .map(|op| {
                (
                    *op,
                    OpStats {
                        ok: 1,
                        errors: ErrorCounts::default(),
                    },
                )
            })
            .collect(),
        bytes_written: u64::from(ops.contains(&Op::Write)) * 1000,
        max_size: u64::from(ops.contains(&Op::Write)) * 1000,
        first: proc_.clone().into(),
        last: proc_.into(),
        ..PathObservation::default()
    }
}

fn run(
    l: &ImageListing,
    config: &ImageConfig,
    run_options: &RunOptions,
    o: &[PathObservation],
) -> MountPlan {
    plan(&AnalysisInput {
        observations: o,
        listing: l,
        config,
        run_options,
        settings: Settings::default(),
    })
}

fn targets(p: &MountPlan) -> Vec<(String, MountKind)> {
    p.mounts
        .iter()
        .map(|m| (m.target.display(), m.kind))
        .collect()
}

struct Case {
    name: &'static str,
    listing: ImageListing,
    config: ImageConfig,
    run: RunOptions,
    obs: Vec<PathObservation>,
    want: Vec<(&'static str, MountKind)>,
    excluded: Vec<&'static str>,
    warning: Option<&'static str>,
}

impl Default for Case {
    fn default() -> Self {
        Self {
            name: "",
            listing: listing(vec![]),
            config: ImageConfig::default(),
            run: RunOptions::default(),
            obs: vec![],
            want: vec![],
            excluded: vec![],
            warning: None,
        }
    }
}

#[test]
#[expect(clippy::too_many_lines, reason = "one table")]
fn planner_table() {
    use MountKind::{PersistentVolume, SeededVolume, Tmpfs};
    let mut symlinked = listing(dirs(&["/run", "/var"]));
    symlinked.entries.insert(
        CPath::from("/var/run"),
        ImageEntry {
            link_target: Some(CPath::from("../run")),
            ..entry("/var/run", EntryKind::Symlink)
        },
    );
    let cases = vec![
        Case {
            name: "write into an existing empty dir",
            listing: listing(dirs(&["/var/cache"])),
            obs: vec![obs("/var/cache/x", &[Op::Create, Op::Write])],
            want: vec![("/var/cache", Tmpfs)],
            ..Case::default()
        },
        Case {
            name: "app-created nested dirs mount at the nearest pre-existing ancestor",
            listing: listing(dirs(&["/var/cache"])),
            obs: vec![
                obs("/var/cache/app", &[Op::Mkdir]),
                obs("/var/cache/app/a", &[Op::Mkdir]),
                obs("/var/cache/app/a/b", &[Op::Mkdir]),
                obs("/var/cache/app/a/b/f", &[Op::Create, Op::Write]),
            ],
            want: vec![("/var/cache", Tmpfs)],
            ..Case::default()
        },
        Case {
            name: "symlinked dir: mount the canonical /run, never /var/run",
            listing: symlinked,
            obs: vec![obs("/run/x.pid", &[Op::Create, Op::Write])],
            want: vec![("/run", Tmpfs)],
            ..Case::default()
        },
        Case {
            name: "image subdirectory used beside the write gets a nested tmpfs, not a seed",
            listing: listing(dirs(&["/srv/app/sock"])),
            obs: vec![
                obs("/srv/app/log.txt", &[Op::Create, Op::Write]),
                obs("/srv/app/sock/s", &[Op::Bind]),
            ],
            want: vec![("/srv/app", Tmpfs), ("/srv/app/sock", Tmpfs)],
            ..Case::default()
        },
        Case {
            name: "unused empty image subdirectory: tmpfs with a note",
            listing: listing(dirs(&["/srv/app/empty"])),
            obs: vec![obs("/srv/app/log.txt", &[Op::Create, Op::Write])],
            want: vec![("/srv/app", Tmpfs)],
            warning: Some("hides 1 empty image directory"),
            ..Case::default()
        },
        Case {
            name: "image file modified in place is seeded",
            listing: listing(vec![entry("/etc/app/app.conf", EntryKind::File)]),
            obs: vec![obs("/etc/app/app.conf", &[Op::OpenWrite, Op::Write])],
            want: vec![("/etc/app", SeededVolume)],
            ..Case::default()
        },
        Case {
            name: "image file deleted is seeded",
            listing: listing(vec![entry("/etc/app/old.pid", EntryKind::File)]),
            obs: vec![obs("/etc/app/old.pid", &[Op::Unlink])],
            want: vec![("/etc/app", SeededVolume)],
            ..Case::default()
        },
        Case {
            name: "fsynced data is persistent",
            listing: listing(dirs(&["/var/lib/db"])),
            obs: vec![PathObservation {
                fsynced: true,
                ..obs("/var/lib/db/wal", &[Op::Create, Op::Write, Op::Fsync])
            }],
            want: vec![("/var/lib/db", PersistentVolume)],
            warning: Some("fsynced"),
            ..Case::default()
        },
        Case {
            name: "a declared VOLUME written to gets a persistent volume of its own",
            listing: listing(dirs(&["/data"])),
            config: ImageConfig {
                volumes: vec![CPath::from("/data")],
                ..ImageConfig::default()
            },
            obs: vec![obs("/data/x", &[Op::Create, Op::Write])],
            want: vec![("/data", PersistentVolume)],
            excluded: vec!["/data/x"],
            ..Case::default()
        },
        Case {
            name: "a declared VOLUME nobody writes to gets nothing",
            listing: listing(dirs(&["/data", "/var/cache"])),
            config: ImageConfig {
                volumes: vec![CPath::from("/data")],
                ..ImageConfig::default()
            },
            obs: vec![obs("/var/cache/x", &[Op::Create])],
            want: vec![("/var/cache", Tmpfs)],
            ..Case::default()
        },
        Case {
            name: "no writes at all",
            obs: vec![obs("/usr/bin/app", &[Op::Exec])],
            warning: Some(NO_WRITES),
            ..Case::default()
        },
        Case {
            name: "kernel filesystems and engine files are excluded",
            listing: listing(dirs(&["/etc"])),
            obs: vec![
                obs("/dev/shm/x", &[Op::Create]),
                obs("/proc/self/attr", &[Op::OpenWrite]),
                obs("/etc/hosts", &[Op::OpenWrite]),
            ],
            excluded: vec!["/dev/shm/x", "/etc/hosts", "/proc/self/attr"],
            ..Case::default()
        },
        Case {
            name: "access(W_OK) probe is never a need",
            listing: listing(dirs(&["/var/log"])),
            obs: vec![obs("/var/log", &[Op::AccessW])],
            excluded: vec!["/var/log"],
            warning: Some(NO_WRITES),
            ..Case::default()
        },
        Case {
            name: "user -v and --tmpfs targets are excluded",
            listing: listing(dirs(&["/data", "/scratch"])),
            run: RunOptions {
                volumes: vec!["vol:/data:rw".into()],
                tmpfs: vec!["/scratch:size=1m".into()],
                ..RunOptions::default()
            },
            obs: vec![
                obs("/data/a", &[Op::Create]),
                obs("/scratch/b", &[Op::Create]),
            ],
            excluded: vec!["/data/a", "/scratch/b"],
            ..Case::default()
        },
        Case {
            name: "write directly in / gets a warning and no mount",
            obs: vec![obs("/app.pid", &[Op::Create])],
            excluded: vec!["/app.pid"],
            warning: Some("written directly in /"),
            ..Case::default()
        },
        Case {
            name: "nested candidates fold into the ancestor",
            listing: listing(dirs(&["/var/cache/app"])),
            obs: vec![
                obs("/var/cache/x", &[Op::Create]),
                obs("/var/cache/app/y", &[Op::Create]),
            ],
            want: vec![("/var/cache", Tmpfs), ("/var/cache/app", Tmpfs)],
            ..Case::default()
        },
    ];
    for c in cases {
        let p = run(&c.listing, &c.config, &c.run, &c.obs);
        let want: Vec<(String, MountKind)> =
            c.want.iter().map(|(t, k)| ((*t).to_owned(), *k)).collect();
        assert_eq!(targets(&p), want, "{}: mounts", c.name);
        for e in &c.excluded {
            assert!(
                p.excluded.iter().any(|x| x.path == CPath::from(*e)),
                "{}: expected {e} excluded, got {:?}",
                c.name,
                p.excluded
            );
        }
        if let Some(w) = c.warning {
            assert!(
                p.warnings.iter().any(|x| x.contains(w)),
                "{}: expected a warning containing {w:?}, got {:?}",
                c.name,
                p.warnings
            );
        }
        for m in &p.mounts {
            assert!(
                !m.evidence.paths.is_empty(),
                "{}: every mount carries evidence, got {m:?}",
                c.name
            );
            assert_eq!(
                m.shadows_image_content,
                m.kind != Tmpfs
                    && c.listing
                        .entries
                        .keys()
                        .any(|k| *k != m.target && k.starts_with(&m.target)),
                "{}: shadows_image_content of {}",
                c.name,
                m.target
            );
        }
    }
}

#[test]
fn options_are_copied_from_the_image_dir() {
    let mut l = listing(dirs(&["/home/app"]));
    if let Some(e) = l.entries.get_mut(&CPath::from("/home/app")) {
        e.mode = 0o700;
        e.uid = 1000;
        e.gid = 1001;
    }
    let p = run(
        &l,
        &ImageConfig::default(),
        &RunOptions::default(),
        &[obs("/home/app/.history", &[Op::Create, Op::Write])],
    );
    let m = &p.mounts[0];
    assert_eq!(
        (m.options.mode, m.options.uid, m.options.gid),
        (0o700, 1000, 1001),
        "mode/uid/gid copied from the image dir"
    );
    assert_eq!(m.options.size_bytes, Some(16 * 1024 * 1024), "min 16 MiB");
    assert!(m.options.noexec && m.options.nosuid && m.options.nodev);
}

#[test]
fn executed_files_clear_noexec_and_sizes_scale() {
    let mut tmp = entry("/tmp", EntryKind::Dir);
    tmp.mode = 0o1777;
    let l = listing(vec![tmp]);
    let big = PathObservation {
        max_size: 20 * 1024 * 1024,
        ..obs("/tmp/big", &[Op::Create, Op::Write])
    };
    let so = PathObservation {
        executed: true,
        ..obs("/tmp/jit.so", &[Op::Create, Op::Write, Op::MmapExec])
    };
    let p = run(
        &l,
        &ImageConfig::default(),
        &RunOptions::default(),
        &[big, so],
    );
    let m = &p.mounts[0];
    assert_eq!(m.target, CPath::from("/tmp"));
    assert!(
        !m.options.noexec,
        "a file below was executed: noexec must be off"
    );
    assert_eq!(m.options.mode, 0o1777, "sticky /tmp mode copied");
    assert_eq!(
        m.options.size_bytes,
        Some(41 * 1024 * 1024),
        "(20 MiB + 1000 B) x 2 rounded up to MiB"
    );
}

#[test]
fn max_mounts_merges_cheapest_first() {
    let l = listing(dirs(&[
        "/var/cache/a",
        "/var/cache/b",
        "/var/log",
        "/opt/x",
    ]));
    let o = [
        obs("/var/cache/a/1", &[Op::Create]),
        obs("/var/cache/b/2", &[Op::Create]),
        obs("/var/log/3", &[Op::Create]),
    ];
    let p = plan(&AnalysisInput {
        observations: &o,
        listing: &l,
        config: &ImageConfig::default(),
        run_options: &RunOptions::default(),
        settings: Settings {
            max_mounts: Some(2),
            ..Settings::default()
        },
    });
    let t: Vec<String> = p.mounts.iter().map(|m| m.target.display()).collect();
    assert_eq!(
        t,
        ["/var/cache", "/var/log"],
        "a and b merge into /var/cache"
    );
    assert_eq!(p.mounts[0].evidence.rule, MountRule::MaxMountsMerge);
}

#[test]
fn erofs_in_a_verify_round_is_a_need() {
    let l = listing(dirs(&["/var/log"]));
    let mut o = obs("/var/log/x", &[]);
    o.ops.insert(
        Op::Create,
        OpStats {
            ok: 0,
            errors: [("EROFS".to_owned(), 1)].into_iter().collect(),
        },
    );
    let p = run(&l, &ImageConfig::default(), &RunOptions::default(), &[o]);
    assert_eq!(targets(&p), [("/var/log".to_owned(), MountKind::Tmpfs)]);
}

/// The repair knobs the closed loop sets: force a seed, forbid a mount point,
/// drop a redundant mount.
#[test]
fn repair_settings_change_the_plan_as_asked() {
    let l = listing(dirs(&["/var/lib/app", "/var/cache/x"]));
    let o = vec![
        obs("/var/lib/app/state", &[Op::Create]),
        obs("/var/cache/x/c", &[Op::Create]),
    ];
    let with = |s: Settings| {
        plan(&AnalysisInput {
            observations: &o,
            listing: &l,
            config: &ImageConfig::default(),
            run_options: &RunOptions::default(),
            settings: s,
        })
    };
    let base = with(Settings::default());
    assert_eq!(
        targets(&base),
        [
            ("/var/cache/x".to_owned(), MountKind::Tmpfs),
            ("/var/lib/app".to_owned(), MountKind::Tmpfs)
        ]
    );
    let mut s = Settings::default();
    s.force_seed.insert(CPath::from("/var/lib/app"));
    assert!(targets(&with(s)).contains(&("/var/lib/app".to_owned(), MountKind::SeededVolume)));
    let mut s = Settings::default();
    s.forbid_points.insert(CPath::from("/var/lib/app"));
    // Moved up to the parent, which then has image content the write needs
    // (/var/lib/app itself) that cannot be a mount point of its own: seeded.
    let moved = targets(&with(s));
    assert!(
        moved.contains(&("/var/lib".to_owned(), MountKind::SeededVolume)),
        "moved up to the parent: {moved:?}"
    );
    let mut s = Settings::default();
    s.drop.insert(CPath::from("/var/cache/x"));
    let dropped = with(s);
    assert_eq!(
        targets(&dropped),
        [("/var/lib/app".to_owned(), MountKind::Tmpfs)]
    );
    assert!(
        dropped
            .excluded
            .iter()
            .any(|e| e.path == CPath::from("/var/cache/x")),
        "the drop is recorded"
    );
}

#[test]
fn fsync_of_a_lock_file_under_run_is_not_persistent_data() {
    let l = listing(dirs(&["/run/postgresql", "/var/lib/db"]));
    let mut lock = obs("/run/postgresql/.s.PGSQL.5432.lock", &[Op::Create]);
    lock.fsynced = true;
    let mut data = obs("/var/lib/db/base.dat", &[Op::Create]);
    data.fsynced = true;
    let p = run(
        &l,
        &ImageConfig::default(),
        &RunOptions::default(),
        &[lock, data],
    );
    assert_eq!(
        targets(&p),
        [
            ("/run/postgresql".to_owned(), MountKind::Tmpfs),
            ("/var/lib/db".to_owned(), MountKind::PersistentVolume)
        ]
    );
}

/// Name, image, observations, settings, wanted mounts.
type DataServiceCase<'a> = (
    &'a str,
    ImageConfig,
    &'a [PathObservation],
    Settings,
    Vec<(&'a str, MountKind)>,
);

/// The data-service rule: an image that declares a VOLUME is a data
/// service, and what it writes under its WORKDIR is its data (postgres
/// writes its files under `WORKDIR`, fsyncing only some of them), so it gets
/// a persistent volume even without an fsync. Without a declared VOLUME the
/// same writes are scratch.
#[test]
fn data_service_workdir_writes_persist_only_when_a_volume_is_declared() {
    use MountKind::{PersistentVolume, Tmpfs};
    let l = listing(dirs(&["/data", "/var/lib/db", "/var/cache"]));
    let image = |volumes: &[&str], workdir: &str| ImageConfig {
        volumes: volumes.iter().map(|v| CPath::from(*v)).collect(),
        workdir: workdir.to_owned(),
        ..ImageConfig::default()
    };
    let db = [obs("/var/lib/db/base/1", &[Op::Create, Op::Write])];
    let both = [
        obs("/var/lib/db/base/1", &[Op::Create, Op::Write]),
        obs("/var/cache/x", &[Op::Create, Op::Write]),
    ];
    let off = Settings {
        persist_data_service_workdir: false,
        ..Settings::default()
    };
    let cases: [DataServiceCase<'_>; 5] = [
        (
            "VOLUME and WORKDIR /var/lib/db: writes there persist",
            image(&["/data"], "/var/lib/db"),
            &db,
            Settings::default(),
            vec![("/var/lib/db", PersistentVolume)],
        ),
        (
            "no VOLUME: the same writes are scratch",
            image(&[], "/var/lib/db"),
            &db,
            Settings::default(),
            vec![("/var/lib/db", Tmpfs)],
        ),
        (
            "VOLUME: writes outside the WORKDIR stay scratch",
            image(&["/data"], "/var/lib/db"),
            &both,
            Settings::default(),
            vec![("/var/cache", Tmpfs), ("/var/lib/db", PersistentVolume)],
        ),
        (
            "VOLUME but WORKDIR /: the rule would cover everything, so it is off",
            image(&["/data"], "/"),
            &db,
            Settings::default(),
            vec![("/var/lib/db", Tmpfs)],
        ),
        (
            "the setting turns the rule off",
            image(&["/data"], "/var/lib/db"),
            &db,
            off,
            vec![("/var/lib/db", Tmpfs)],
        ),
    ];
    for (name, config, o, settings, want) in cases {
        let p = plan(&AnalysisInput {
            observations: o,
            listing: &l,
            config: &config,
            run_options: &RunOptions::default(),
            settings,
        });
        let want: Vec<(String, MountKind)> =
            want.into_iter().map(|(t, k)| (t.to_owned(), k)).collect();
        assert_eq!(targets(&p), want, "{name}: {p:#?}");
    }
}
