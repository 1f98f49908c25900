//! Property tests of the planner over small random images and runs.

use proptest::prelude::*;

use super::{
    AnalysisInput, Settings, plan,
    tests::{entry, listing, obs},
};
use crate::model::{
    CPath, EntryKind, ImageConfig, ImageEntry, ImageListing, MountKind, MountPlan, MountRule, Op,
    PathObservation, RunOptions,
};

const NAMES: [&str; 4] = ["a", "b", "c", "d d"];
const OPS: [Op; 10] = [
    Op::Create,
    Op::Mkdir,
    Op::Write,
    Op::OpenWrite,
    Op::Unlink,
    Op::Chmod,
    Op::RenameTo,
    Op::AccessW,
    Op::Exec,
    Op::Bind,
];

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&NAMES[..]), 1..5)
        .prop_map(|c| format!("/{}", c.join("/")))
}

fn image() -> impl Strategy<Value = ImageListing> {
    (
        prop::collection::vec(path(), 0..8),
        prop::collection::vec(path(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(dirs, files, with_link)| {
            let mut es: Vec<ImageEntry> = dirs.iter().map(|p| entry(p, EntryKind::Dir)).collect();
            es.extend(files.iter().map(|p| entry(p, EntryKind::File)));
            let mut l = listing(es);
            if with_link && !l.entries.contains_key(&CPath::from("/a/l")) {
                l = listing(
                    l.entries
                        .into_values()
                        .chain([ImageEntry {
                            link_target: Some(CPath::from("/b")),
                            ..entry("/a/l", EntryKind::Symlink)
                        }])
                        .collect(),
                );
            }
            l
        })
}

fn observation() -> impl Strategy<Value = PathObservation> {
    (
        path(),
        prop::collection::btree_set(prop::sample::select(&OPS[..]), 1..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(p, ops, executed, fsynced)| {
            let ops: Vec<Op> = ops.into_iter().collect();
            PathObservation {
                executed,
                fsynced: fsynced && ops.contains(&Op::Write),
                ..obs(&p, &ops)
            }
        })
}

fn planned(l: &ImageListing, o: &[PathObservation], max: Option<usize>) -> MountPlan {
    plan(&AnalysisInput {
        observations: o,
        listing: l,
        config: &ImageConfig {
            volumes: vec![CPath::from("/c/c")],
            ..ImageConfig::default()
        },
        run_options: &RunOptions::default(),
        settings: Settings {
            max_mounts: max,
            ..Settings::default()
        },
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_write_is_covered_or_excluded(
        l in image(),
        o in prop::collection::vec(observation(), 0..10),
        max in prop::option::of(1usize..4),
    ) {
        let p = planned(&l, &o, max);
        for ob in &o {
            for (op, s) in &ob.ops {
                if !op.is_write() || s.ok == 0 {
                    continue;
                }
                let entry_op = op.creates_entry() || op.removes_entry();
                let covered = p.mounts.iter().any(|m| {
                    ob.path.starts_with(&m.target) && !(entry_op && ob.path == m.target)
                });
                let excluded = p.excluded.iter().any(|x| x.path == ob.path);
                prop_assert!(covered || excluded, "{:?} {:?} neither covered nor excluded: {:?}", ob.path, op, p);
            }
        }
    }

    #[test]
    fn mounts_are_valid_points_and_not_redundant(
        l in image(),
        o in prop::collection::vec(observation(), 0..10),
        max in prop::option::of(1usize..4),
    ) {
        let p = planned(&l, &o, max);
        for m in &p.mounts {
            prop_assert!(m.target != CPath::from("/"), "never mount /");
            let e = l.entries.get(&m.target);
            let declared = m.evidence.rule == MountRule::DeclaredVolume;
            prop_assert!(
                declared || e.is_some_and(|e| e.kind == EntryKind::Dir),
                "{:?} must be an image dir (or a declared VOLUME)", m.target
            );
            for n in &p.mounts {
                if n.target != m.target && n.target.starts_with(&m.target) {
                    let persistent_inside = n.kind == MountKind::PersistentVolume
                        && m.kind != MountKind::PersistentVolume;
                    let image_dir_in_tmpfs = n.kind == MountKind::Tmpfs
                        && m.kind == MountKind::Tmpfs
                        && n.evidence.rule == MountRule::ImageDirUnderTmpfs;
                    let declared_inside = n.evidence.rule == MountRule::DeclaredVolume;
                    prop_assert!(
                        persistent_inside || image_dir_in_tmpfs || declared_inside,
                        "{:?} nested in {:?} with no reason to differ", n.target, m.target
                    );
                }
            }
            if m.kind == MountKind::Tmpfs {
                let below: Vec<&ImageEntry> = l.entries.values()
                    .filter(|e| e.path != m.target && e.path.starts_with(&m.target))
                    .collect();
                prop_assert!(below.iter().all(|e| e.kind == EntryKind::Dir), "tmpfs {:?} hides files", m.target);
                // Directories that got a nested tmpfs of their own are not
                // hidden; the outermost tmpfs notes the rest.
                let hidden = below
                    .iter()
                    .any(|e| !p.mounts.iter().any(|n| n.target == e.path));
                if hidden && m.evidence.rule != MountRule::ImageDirUnderTmpfs {
                    let needle = format!("tmpfs at {}", m.target);
                    prop_assert!(p.warnings.iter().any(|w| w.contains(&needle)), "hidden empty dirs under {:?} must be noted", m.target);
                }
            }
        }
        if let Some(max) = max {
            prop_assert!(
                p.mounts.len() <= max || p.warnings.iter().any(|w| w.contains("could not merge")),
                "budget {} exceeded silently: {}", max, p.mounts.len()
            );
        }
    }

    #[test]
    fn plan_is_invariant_under_shuffling(
        l in image(),
        (o, shuffled) in prop::collection::vec(observation(), 0..10)
            .prop_flat_map(|o| (Just(o.clone()), Just(o).prop_shuffle())),
    ) {
        prop_assert_eq!(planned(&l, &o, None), planned(&l, &shuffled, None));
        prop_assert_eq!(planned(&l, &o, Some(2)), planned(&l, &shuffled, Some(2)));
    }
}
