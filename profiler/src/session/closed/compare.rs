//! Comparing a read-only run of a plan with the observed run: what differs,
//! and which repairs the differences point to.

use std::collections::BTreeSet;

use super::super::RunOutput;
use crate::{
    analysis,
    model::{CPath, Health, MountKind, Op, PathObservation, PlannedMount, Report, errno},
};

/// Outcome of comparing a read-only run with the observed one.
#[derive(Debug, Default)]
pub struct Verdict {
    /// No difference.
    pub passed: bool,
    /// Differences, for humans.
    pub differences: Vec<String>,
    /// Operations that failed with EROFS.
    pub erofs: u64,
    /// Mount targets that hid something (ENOENT/EACCES below them): seed them.
    pub seed: BTreeSet<CPath>,
    /// Mount targets the application mkdir'ed (EEXIST): move up.
    pub forbid: BTreeSet<CPath>,
    /// The read-only run's failed observations, to feed back into the plan.
    pub failed: Vec<PathObservation>,
    /// What differed only because of writes the plan leaves to fail on
    /// purpose: their EROFS, and the application's log lines about them.
    /// No repair applies and `passed` does not change, but a run with any
    /// is verified with exceptions, not verified.
    pub exceptions: Vec<String>,
}

/// The owning mount of `path` in `mounts`.
fn owner<'a>(mounts: &'a [PlannedMount], path: &CPath) -> Option<&'a PlannedMount> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.target))
        .max_by_key(|m| m.target.as_bytes().len())
}

/// Compares a read-only run (`ro`) of `observed`'s plan with the observed run.
#[must_use]
pub fn compare(observed: &Report, ro: &RunOutput) -> Verdict {
    let mut v = Verdict::default();
    erofs_of(observed, ro, &mut v);
    for before in observed.paths.iter().filter(|o| o.any_write_ok()) {
        let Some(now) = ro.observations.iter().find(|o| o.path == before.path) else {
            continue;
        };
        for (op, st) in &before.ops {
            let Some(after) = now.ops.get(op) else {
                continue;
            };
            if st.ok == 0 || !op.is_write() || after.ok > 0 || after.errors.is_empty() {
                continue;
            }
            let errs: Vec<&str> = after.errors.keys().map(String::as_str).collect();
            if errs.contains(&errno::EROFS) {
                continue; // counted above
            }
            v.differences.push(format!(
                "{op:?} on {} succeeded before, now fails with {}",
                before.path,
                errs.join(",")
            ));
            if let Some(m) = owner(&observed.plan.mounts, &before.path) {
                if *op == Op::Mkdir && errs.contains(&errno::EEXIST) && before.path == m.target {
                    v.forbid.insert(m.target.clone());
                } else if m.kind == MountKind::Tmpfs {
                    v.seed.insert(m.target.clone());
                }
            }
        }
    }
    let mut outcome_differs = observed.run.exit_code != ro.meta.exit_code;
    if outcome_differs {
        v.differences.push(format!(
            "exit code differs: observed {:?}, read-only {:?}",
            observed.run.exit_code, ro.meta.exit_code
        ));
    }
    for d in exit_differences(observed, ro) {
        outcome_differs = true;
        v.differences.push(d);
    }
    v.differences.extend(erofs_log_lines(observed, ro));
    v.exceptions.extend(by_design_log_lines(observed, ro));
    if outcome_differs {
        // Without a path-level clue, a tmpfs that hides image content is the
        // likeliest culprit: seed those.
        if v.seed.is_empty() && v.forbid.is_empty() && v.failed.is_empty() {
            for m in &observed.plan.mounts {
                if m.kind == MountKind::Tmpfs
                    && analysis::paths::entries_below(&ro.listing, &m.target)
                        .next()
                        .is_some()
                {
                    v.seed.insert(m.target.clone());
                }
            }
        }
    }
    if observed.run.health == Some(Health::Healthy) && ro.meta.health != Some(Health::Healthy) {
        v.differences
            .push("the probe answered in the observed run but not read-only".into());
    }
    if observed.run.exercise_exit != ro.meta.exercise_exit {
        let show = |e: Option<i64>| {
            e.map_or_else(|| "did not finish".to_owned(), |c| format!("exited {c}"))
        };
        v.differences.push(format!(
            "the exercise {} in the observed run, {} read-only",
            show(observed.run.exercise_exit),
            show(ro.meta.exercise_exit)
        ));
    }
    v.differences.sort();
    v.differences.dedup();
    v.exceptions.sort();
    v.exceptions.dedup();
    v.passed = v.differences.is_empty();
    v
}

/// The read-only run's EROFS: a difference to repair, or an exception where
/// the plan leaves the write to fail on purpose.
fn erofs_of(observed: &Report, ro: &RunOutput, v: &mut Verdict) {
    for o in &ro.observations {
        // Writes the plan leaves without a mount on purpose are expected to
        // fail: only the outcome (exit code, probe) can show they mattered.
        let unmounted = observed
            .plan
            .unmounted
            .iter()
            .any(|u| o.path.starts_with(&u.dir));
        let mut failed = false;
        for (op, st) in &o.ops {
            // `access(W_OK)` is a probe, never a need (no mount is planned
            // for it), so its EROFS cannot be repaired and is no difference:
            // the application's exit code and health say whether it mattered.
            if !op.is_write() {
                continue;
            }
            if let Some(n) = st.errors.get(errno::EROFS) {
                v.erofs += n;
                if unmounted {
                    v.exceptions.push(format!(
                        "EROFS: {op:?} on {} ({n}x): fails by design",
                        o.path
                    ));
                    continue;
                }
                failed = true;
                v.differences
                    .push(format!("EROFS: {op:?} on {} ({n}x)", o.path));
            }
        }
        if failed {
            v.failed.push(o.clone());
        }
    }
}

/// Programs that ended with a status (non-zero, or a signal) in the
/// read-only run that none of their processes ended with in the observed
/// one. Exits during the stop are timing, not outcome; a report without
/// exits (older roprof) compares none.
fn exit_differences(observed: &Report, ro: &RunOutput) -> Vec<String> {
    let (Some(before), Some(now)) = (&observed.run.process_exits, &ro.meta.process_exits) else {
        return Vec::new();
    };
    now.iter()
        .filter(|e| !e.at_stop)
        .filter(|e| {
            !before
                .iter()
                .any(|b| b.program == e.program && b.status == e.status)
        })
        .map(|e| {
            format!(
                "{} {} read-only ({}x), never in the observed run",
                e.program, e.status, e.count
            )
        })
        .collect()
}

/// Lines of the read-only run's log tail that mention a read-only file
/// system (`EROFS`'s message, as libc and most runtimes print it), that the
/// observed run did not log, and that no traced EROFS explains: a line
/// naming a file whose write the tracer saw refused is that write (a
/// difference above, or a soft failure the plan leaves unmounted on
/// purpose); a line naming none is a refusal the tracer did not see.
fn erofs_log_lines(observed: &Report, ro: &RunOutput) -> Vec<String> {
    let mentions = |l: &str| l.to_ascii_lowercase().contains("read-only file system");
    let refused = refused_leaves(ro, |_| true);
    ro.meta
        .logs_tail
        .iter()
        .filter(|l| mentions(l))
        .filter(|l| !observed.run.logs_tail.contains(l))
        .filter(|l| !refused.iter().any(|leaf| l.contains(leaf.as_str())))
        .map(|l| format!("the read-only run logged: {}", l.trim()))
        .collect()
}

/// Leaf names of the read-only run's paths refused with EROFS that `keep`
/// selects: a message may name the file relative to its working directory.
fn refused_leaves(ro: &RunOutput, keep: impl Fn(&CPath) -> bool) -> Vec<String> {
    ro.observations
        .iter()
        .filter(|o| o.any_erofs() && keep(&o.path))
        .filter_map(|o| {
            let p = o.path.display();
            let leaf = p.rsplit('/').next().unwrap_or_default().to_owned();
            (!leaf.is_empty()).then_some(leaf)
        })
        .collect()
}

/// Lines of the read-only run's log tail, not logged by the observed run,
/// that name a file whose write failed with EROFS below a directory the
/// plan leaves without a mount on purpose: the application reporting a
/// write that fails by design (its output differs from the writable run's).
fn by_design_log_lines(observed: &Report, ro: &RunOutput) -> Vec<String> {
    let leaves = refused_leaves(ro, |p| {
        observed
            .plan
            .unmounted
            .iter()
            .any(|u| p.starts_with(&u.dir))
    });
    ro.meta
        .logs_tail
        .iter()
        .filter(|l| !observed.run.logs_tail.contains(l))
        .filter(|l| leaves.iter().any(|leaf| l.contains(leaf.as_str())))
        .map(|l| format!("the read-only run logged: {}", l.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{ImageListing, MountOptions, OpStats, ProcessExit, RunMeta};

    fn obs(path: &str, op: Op, ok: u64, err: Option<&str>) -> PathObservation {
        let mut errors = BTreeMap::new();
        if let Some(e) = err {
            errors.insert(e.to_owned(), 1);
        }
        let mut ops = BTreeMap::new();
        ops.insert(
            op,
            OpStats {
                ok,
                errors: errors.into(),
            },
        );
        PathObservation {
            path: CPath::from(path),
            ops: ops.into_iter().collect(),
            ..Default::default()
        }
    }

    fn mount(target: &str, kind: MountKind) -> PlannedMount {
        PlannedMount {
            target: CPath::from(target),
            kind,
            options: MountOptions::default(),
            shadows_image_content: false,
            evidence: crate::model::Evidence::default(),
        }
    }

    fn ro(observations: Vec<PathObservation>, exit: i64) -> RunOutput {
        RunOutput {
            image: crate::model::ImageConfig::default(),
            listing: ImageListing::default(),
            observations,
            meta: RunMeta {
                exit_code: Some(exit),
                ..RunMeta::default()
            },
            losses: crate::model::Losses::default(),
            stats: crate::model::TraceStats::default(),
        }
    }

    fn observed(paths: Vec<PathObservation>, mounts: Vec<PlannedMount>) -> Report {
        let mut r = Report {
            paths,
            ..Report::default()
        };
        r.plan.mounts = mounts;
        r.run.exit_code = Some(0);
        r
    }

    #[test]
    fn identical_outcome_passes() {
        let rep = observed(
            vec![obs("/run/x.pid", Op::Create, 1, None)],
            vec![mount("/run", MountKind::Tmpfs)],
        );
        let v = compare(&rep, &ro(vec![obs("/run/x.pid", Op::Create, 1, None)], 0));
        assert!(v.passed, "{:?}", v.differences);
    }

    #[test]
    fn erofs_is_fed_back_as_a_new_need() {
        let rep = observed(vec![], vec![]);
        let v = compare(
            &rep,
            &ro(vec![obs("/var/cache/a", Op::Create, 0, Some("EROFS"))], 0),
        );
        assert!(!v.passed);
        assert_eq!(v.erofs, 1);
        assert_eq!(v.failed.len(), 1);
    }

    #[test]
    fn erofs_below_an_unmounted_code_dir_is_expected_but_the_outcome_counts() {
        let mut rep = observed(vec![], vec![]);
        rep.plan.unmounted.push(crate::model::Unmounted {
            dir: CPath::from("/app"),
            paths: vec![CPath::from("/app/__pycache__/m.pyc")],
            reason: "code".into(),
            hint: None,
        });
        let pyc = || obs("/app/__pycache__/m.pyc", Op::Create, 0, Some("EROFS"));
        let v = compare(&rep, &ro(vec![pyc()], 0));
        assert!(v.passed, "a soft failure, as planned: {:?}", v.differences);
        assert_eq!(v.erofs, 1, "still counted");
        assert!(v.failed.is_empty(), "not fed back as a need");
        let v = compare(&rep, &ro(vec![pyc()], 1));
        assert!(
            !v.passed,
            "the app did not tolerate it: the exit code differs"
        );
    }

    #[test]
    fn erofs_of_an_access_probe_is_no_difference() {
        // access(/etc/passwd, W_OK) answers EROFS read-only: a probe is
        // never planned a mount, so flagging it would loop until the run
        // budget is spent.
        let rep = observed(vec![obs("/etc/passwd", Op::AccessW, 1, None)], vec![]);
        let v = compare(
            &rep,
            &ro(vec![obs("/etc/passwd", Op::AccessW, 0, Some("EROFS"))], 0),
        );
        assert!(v.passed, "{:?}", v.differences);
        assert_eq!(v.erofs, 0);
    }

    #[test]
    fn eacces_under_a_tmpfs_asks_for_seeding() {
        let rep = observed(
            vec![obs("/srv/owned/d", Op::Create, 1, None)],
            vec![mount("/srv/owned", MountKind::Tmpfs)],
        );
        let v = compare(
            &rep,
            &ro(vec![obs("/srv/owned/d", Op::Create, 0, Some("EACCES"))], 4),
        );
        assert!(v.seed.contains(&CPath::from("/srv/owned")), "{v:?}");
        assert_eq!(
            v.differences.len(),
            2,
            "the EACCES and the exit code: {:?}",
            v.differences
        );
    }

    #[test]
    fn a_different_exercise_exit_status_is_a_difference() {
        let mut rep = observed(vec![], vec![]);
        rep.run.exercise_exit = Some(0);
        let mut run = ro(vec![], 0);
        run.meta.exercise_exit = Some(1);
        let v = compare(&rep, &run);
        assert!(!v.passed, "a failing exercise must fail verification");
        assert_eq!(
            v.differences,
            ["the exercise exited 0 in the observed run, exited 1 read-only"]
        );
        run.meta.exercise_exit = Some(0);
        assert!(compare(&rep, &run).passed, "the same status passes");
    }

    #[test]
    fn eexist_on_mkdir_of_the_mount_point_moves_it_up() {
        let rep = observed(
            vec![obs("/var/lib/app", Op::Mkdir, 1, None)],
            vec![mount("/var/lib/app", MountKind::Tmpfs)],
        );
        let v = compare(
            &rep,
            &ro(vec![obs("/var/lib/app", Op::Mkdir, 0, Some("EEXIST"))], 0),
        );
        assert!(v.forbid.contains(&CPath::from("/var/lib/app")), "{v:?}");
    }

    fn exit(program: &str, status: crate::model::ExitStatus, at_stop: bool) -> ProcessExit {
        ProcessExit {
            program: program.into(),
            status,
            count: 3,
            at_stop,
        }
    }

    #[test]
    fn a_helper_failing_only_read_only_is_a_difference_that_seeds() {
        use crate::model::{EntryKind, ExitStatus, ImageEntry};
        let mut rep = observed(vec![], vec![mount("/app/queue", MountKind::Tmpfs)]);
        rep.run.process_exits = Some(vec![exit("sleep", ExitStatus::Signal(9), true)]);
        let mut run = ro(vec![], 0);
        run.listing.entries.insert(
            CPath::from("/app/queue/q.txt"),
            ImageEntry {
                path: CPath::from("/app/queue/q.txt"),
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: 8,
                link_target: None,
            },
        );
        run.meta.process_exits = Some(vec![
            exit("worker.sh", ExitStatus::Code(1), false),
            exit("sleep", ExitStatus::Signal(9), true),
        ]);
        let v = compare(&rep, &run);
        assert_eq!(
            v.differences,
            ["worker.sh exited 1 read-only (3x), never in the observed run"],
            "the worker's exit names the program and code; the stop's kill is no difference"
        );
        assert!(
            v.seed.contains(&CPath::from("/app/queue")),
            "the tmpfs hiding image content is seeded: {v:?}"
        );
        run.meta.process_exits = Some(vec![exit("worker.sh", ExitStatus::Code(1), false)]);
        rep.run.process_exits = Some(vec![exit("worker.sh", ExitStatus::Code(1), false)]);
        assert!(
            compare(&rep, &run).passed,
            "failing in both runs is no difference"
        );
    }

    #[test]
    fn exits_during_the_stop_and_reports_without_exits_compare_nothing() {
        use crate::model::ExitStatus;
        let mut rep = observed(vec![], vec![]);
        let mut run = ro(vec![], 0);
        run.meta.process_exits = Some(vec![exit("nginx", ExitStatus::Signal(15), true)]);
        rep.run.process_exits = Some(vec![]);
        assert!(compare(&rep, &run).passed, "killed by the stop: timing");
        run.meta.process_exits = Some(vec![exit("worker", ExitStatus::Code(2), false)]);
        rep.run.process_exits = None;
        assert!(
            compare(&rep, &run).passed,
            "a report of an older roprof recorded no exits: nothing to compare"
        );
    }

    #[test]
    fn read_only_file_system_log_lines_the_tracer_did_not_explain_are_differences() {
        let mut rep = observed(vec![], vec![]);
        rep.run.logs_tail = vec!["started".into()];
        let mut run = ro(vec![], 0);
        run.meta.logs_tail = vec![
            "started".into(),
            "worker: cannot save state: Read-only file system".into(),
        ];
        let v = compare(&rep, &run);
        assert_eq!(
            v.differences,
            ["the read-only run logged: worker: cannot save state: Read-only file system"]
        );
        rep.run.logs_tail.clone_from(&run.meta.logs_tail);
        assert!(compare(&rep, &run).passed, "logged in both runs");
    }

    #[test]
    fn a_log_line_naming_a_soft_failure_left_unmounted_is_expected() {
        // busybox sh reports a refused redirection even with 2>/dev/null.
        let mut rep = observed(vec![], vec![]);
        rep.plan.unmounted.push(crate::model::Unmounted {
            dir: CPath::from("/var/cache/app"),
            paths: vec![CPath::from("/var/cache/app/optional.cache")],
            reason: "fails softly".into(),
            hint: None,
        });
        let mut run = ro(
            vec![obs(
                "/var/cache/app/optional.cache",
                Op::Create,
                0,
                Some("EROFS"),
            )],
            0,
        );
        run.meta.logs_tail = vec![
            "trap.sh: line 24: can't create /var/cache/app/optional.cache: Read-only file system"
                .into(),
        ];
        let v = compare(&rep, &run);
        assert!(v.passed, "the traced, planned soft failure");
        assert_eq!(
            v.exceptions,
            [
                "EROFS: Create on /var/cache/app/optional.cache (1x): fails by design",
                "the read-only run logged: trap.sh: line 24: can't create \
                 /var/cache/app/optional.cache: Read-only file system",
            ],
            "not a plain pass: the failing write and the application's line about it are named"
        );
    }

    #[test]
    fn an_application_line_about_a_write_failing_by_design_is_an_exception() {
        let mut rep = observed(vec![], vec![]);
        rep.plan.unmounted.push(crate::model::Unmounted {
            dir: CPath::from("/opt/app"),
            paths: vec![CPath::from("/opt/app/app.lock")],
            reason: "code".into(),
            hint: None,
        });
        rep.run.logs_tail = vec!["app: app.lock written".into()];
        let mut run = ro(
            vec![obs("/opt/app/app.lock", Op::Write, 0, Some("EROFS"))],
            0,
        );
        run.meta.logs_tail = vec!["app: app.lock NOT written".into()];
        let v = compare(&rep, &run);
        assert!(v.passed, "no repair applies: {:?}", v.differences);
        assert!(
            v.exceptions
                .contains(&"the read-only run logged: app: app.lock NOT written".to_owned()),
            "the output that differs from the writable run is named: {:?}",
            v.exceptions
        );
    }
}
