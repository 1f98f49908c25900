//! The closed loop: verify a plan by re-running the image read-only under
//! tracing, repair it when the run differs, iterate from nothing like the
//! manual method, and prove minimality by leave-one-out.

use std::collections::BTreeSet;

use super::{RunConfig, RunOutput, SessionError};
use crate::{
    analysis::{self, AnalysisInput, Settings},
    model::{CPath, MountKind, Op, PathObservation, PlannedMount, Report, Round},
    runtime::Engine,
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
            if let Some(n) = st.errors.get("EROFS") {
                v.erofs += n;
                if unmounted {
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
            if errs.contains(&"EROFS") {
                continue; // counted above
            }
            v.differences.push(format!(
                "{op:?} on {} succeeded before, now fails with {}",
                before.path,
                errs.join(",")
            ));
            if let Some(m) = owner(&observed.plan.mounts, &before.path) {
                if *op == Op::Mkdir && errs.contains(&"EEXIST") && before.path == m.target {
                    v.forbid.insert(m.target.clone());
                } else if m.kind == MountKind::Tmpfs {
                    v.seed.insert(m.target.clone());
                }
            }
        }
    }
    if observed.run.exit_code != ro.meta.exit_code {
        v.differences.push(format!(
            "exit code differs: observed {:?}, read-only {:?}",
            observed.run.exit_code, ro.meta.exit_code
        ));
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
    if observed.run.health.as_deref() == Some("healthy")
        && ro.meta.health.as_deref() != Some("healthy")
    {
        v.differences
            .push("the probe answered in the observed run but not read-only".into());
    }
    v.differences.sort();
    v.differences.dedup();
    v.passed = v.differences.is_empty();
    v
}

/// Runs `report`'s image read-only with `plan_of(report)` mounts.
async fn run_with_plan(
    engine: &Engine,
    report: &Report,
    mounts: &[PlannedMount],
    base: &RunConfig,
    kind: &'static str,
) -> Result<RunOutput, SessionError> {
    let mut cfg = base.clone();
    cfg.read_only = true;
    cfg.keep = false;
    cfg.mode = kind;
    cfg.extra_tmpfs.clear();
    cfg.extra_binds.clear();
    let tag = report
        .run
        .container_id
        .get(..12)
        .unwrap_or("run")
        .to_owned();
    let mut volumes = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let Some(target) = m.target.to_str() else {
            return Err(SessionError::Unrepresentable(m.target.display()));
        };
        match m.kind {
            MountKind::Tmpfs => cfg
                .extra_tmpfs
                .push((target.to_owned(), crate::render::docker::tmpfs_options(m))),
            MountKind::SeededVolume | MountKind::PersistentVolume => {
                let name = format!("roprof-{kind}-{tag}-{}-{i}", std::process::id());
                cfg.extra_binds.push(format!("{name}:{target}"));
                volumes.push(name);
            }
        }
    }
    let out = super::run(engine, &cfg).await;
    for v in &volumes {
        if let Err(e) = engine.remove_volume(v).await {
            eprintln!("roprof: {e}");
        }
    }
    let out = out?;
    if super::interrupt::interrupted() {
        return Err(super::interrupt::error());
    }
    if out.meta.incomplete && !out.meta.oom_killed {
        // The engine was lost: this round proves nothing either way.
        return Err(SessionError::RoundCutShort(
            out.meta
                .incomplete_reason
                .unwrap_or_else(|| "the run was cut short".into()),
        ));
    }
    Ok(out)
}

/// Why a closed-loop step did not finish, when the cause is one that
/// leaves a (partial) report worth printing: a signal, or a verification
/// run cut short by the loss of the engine. `None` for real errors.
#[must_use]
pub fn cut_short_reason(e: &SessionError) -> Option<String> {
    match e {
        SessionError::Interrupted { .. } => Some(super::interrupt::describe()),
        SessionError::RoundCutShort(_) => Some(e.to_string()),
        _ => None,
    }
}

fn replan(
    report: &mut Report,
    extra: &[PathObservation],
    settings: &Settings,
    listing: &crate::model::ImageListing,
) {
    report.paths.extend(extra.iter().cloned());
    report.plan = analysis::plan(&AnalysisInput {
        observations: &report.paths,
        listing,
        config: &report.image,
        run_options: &report.run_options,
        settings: settings.clone(),
    });
}

fn targets(ms: &[PlannedMount]) -> Vec<CPath> {
    ms.iter().map(|m| m.target.clone()).collect()
}

/// Verifies `report`'s plan and repairs it until a read-only run matches the
/// observed one or `max_runs` container runs were spent. Rounds are appended
/// to `report.rounds`; returns whether the final plan verified.
pub async fn verify_and_repair(
    engine: &Engine,
    report: &mut Report,
    listing: &crate::model::ImageListing,
    base: &RunConfig,
    mut settings: Settings,
    max_runs: usize,
) -> Result<bool, SessionError> {
    for run in 0..max_runs.max(1) {
        let mounts = report.plan.mounts.clone();
        let ro = run_with_plan(engine, report, &mounts, base, "verify").await?;
        let v = compare(report, &ro);
        let last = run + 1 == max_runs.max(1);
        let mut round = Round {
            kind: if run == 0 {
                "verify".into()
            } else {
                "repair".into()
            },
            mounts: targets(&mounts),
            erofs: v.erofs,
            exit_code: ro.meta.exit_code,
            health: ro.meta.health.clone(),
            passed: v.passed,
            differences: v.differences.clone(),
            action: String::new(),
        };
        if v.passed {
            round.action = "verified".into();
            report.rounds.push(round);
            return Ok(true);
        }
        let progress = !v.failed.is_empty()
            || v.seed.iter().any(|t| settings.force_seed.insert(t.clone()))
            || v.forbid
                .iter()
                .any(|t| settings.forbid_points.insert(t.clone()));
        settings.force_seed.extend(v.seed.iter().cloned());
        settings.forbid_points.extend(v.forbid.iter().cloned());
        if !progress || last {
            round.action = if last {
                "gave up: run budget spent".into()
            } else {
                "gave up: no repair applies".into()
            };
            report.rounds.push(round);
            return Ok(false);
        }
        replan(report, &v.failed, &settings, listing);
        round.action = format!(
            "repaired: {} new EROFS path(s) covered, seeded {:?}, moved up from {:?}",
            v.failed.len(),
            v.seed.iter().map(CPath::display).collect::<Vec<_>>(),
            v.forbid.iter().map(CPath::display).collect::<Vec<_>>()
        );
        report.rounds.push(round);
    }
    Ok(false)
}

/// The manual method, automated: start read-only with no mounts, add mounts
/// for what failed with EROFS, rerun until clean or `max_runs`.
/// `report` holds the image, run options and listing of a first read-only
/// run; its plan and rounds are rewritten.
pub async fn iterate(
    engine: &Engine,
    report: &mut Report,
    first: &RunOutput,
    listing: &crate::model::ImageListing,
    base: &RunConfig,
    settings: &Settings,
    max_runs: usize,
) -> Result<bool, SessionError> {
    let mut all: Vec<PathObservation> = Vec::new();
    let mut last = first_round(first);
    report.rounds.push(last.0.clone());
    all.extend(last.1);
    let baseline_exit = first.meta.exit_code;
    for _ in 1..max_runs.max(1) {
        report.paths = all.clone();
        replan(report, &[], settings, listing);
        let mounts = report.plan.mounts.clone();
        let ro = run_with_plan(engine, report, &mounts, base, "iterate").await?;
        last = first_round(&ro);
        let mut round = last.0;
        round.mounts = targets(&mounts);
        let clean = round.erofs == 0;
        round.action = if clean {
            "clean: no EROFS".into()
        } else {
            "adding mounts for the new EROFS paths".into()
        };
        round.passed = clean;
        report.rounds.push(round);
        if clean {
            if ro.meta.exit_code == baseline_exit
                && first.observations.iter().any(PathObservation::any_erofs)
            {
                report.plan.warnings.push(
                    "the exit code was the same with no mounts at all: the failing writes may be optional \
                     (run --check-minimal to see which)"
                        .into(),
                );
            }
            return Ok(true);
        }
        all.extend(last.1);
    }
    Ok(false)
}

fn first_round(out: &RunOutput) -> (Round, Vec<PathObservation>) {
    let failed: Vec<PathObservation> = out
        .observations
        .iter()
        .filter(|o| o.any_erofs())
        .cloned()
        .collect();
    let erofs = failed
        .iter()
        .flat_map(|o| o.ops.values())
        .filter_map(|s| s.errors.get("EROFS"))
        .sum();
    (
        Round {
            kind: "iterate".into(),
            mounts: Vec::new(),
            erofs,
            exit_code: out.meta.exit_code,
            health: out.meta.health.clone(),
            passed: erofs == 0,
            differences: failed
                .iter()
                .map(|o| format!("EROFS on {}", o.path))
                .collect(),
            action: if erofs == 0 {
                "clean: no EROFS".into()
            } else {
                "adding mounts for the EROFS paths".into()
            },
        },
        failed,
    )
}

/// Leave-one-out over the plan's mounts. A mount whose removal changes
/// nothing (no EROFS, same exit code and health) is dropped; one whose
/// removal only makes writes fail without changing the outcome is reported
/// as optional and kept.
pub async fn check_minimal(
    engine: &Engine,
    report: &mut Report,
    listing: &crate::model::ImageListing,
    base: &RunConfig,
    mut settings: Settings,
) -> Result<(), SessionError> {
    let all = report.plan.mounts.clone();
    // A declared VOLUME's mount is not tested: without it Docker mounts an
    // anonymous volume there, so the run would look the same, but a kubelet
    // mounts nothing and the data would not outlive the container.
    for m in all.iter().filter(|m| m.evidence.rule != "declared-volume") {
        let rest: Vec<PlannedMount> = all
            .iter()
            .filter(|x| x.target != m.target)
            .cloned()
            .collect();
        let ro = run_with_plan(engine, report, &rest, base, "verify").await?;
        let v = compare(report, &ro);
        let same_outcome = ro.meta.exit_code == report.run.exit_code
            && (report.run.health.as_deref() != Some("healthy")
                || ro.meta.health.as_deref() == Some("healthy"));
        let action = if v.passed {
            settings.drop.insert(m.target.clone());
            format!("{} is redundant: dropped", m.target)
        } else if same_outcome && v.differences.iter().all(|d| d.starts_with("EROFS")) {
            let paths: Vec<String> = v.failed.iter().map(|o| o.path.display()).collect();
            report.plan.warnings.push(format!(
                "mount {} is optional: without it, writes to {} fail with EROFS but the exit code and health do not change",
                m.target,
                paths.join(", ")
            ));
            // Writes that fail softly get no mount (issue 15): the mount is
            // redundant, and over code it would hide the next image's.
            settings.soft.insert(m.target.clone());
            format!(
                "{} is optional: writes fail softly without it: dropped",
                m.target
            )
        } else {
            format!("{} is needed", m.target)
        };
        report.rounds.push(Round {
            kind: "leave-one-out".into(),
            mounts: targets(&rest),
            erofs: v.erofs,
            exit_code: ro.meta.exit_code,
            health: ro.meta.health.clone(),
            passed: v.passed,
            differences: v.differences,
            action,
        });
    }
    if !settings.drop.is_empty() || !settings.soft.is_empty() {
        let warnings = report.plan.warnings.clone();
        replan(report, &[], &settings, listing);
        for w in warnings {
            if !report.plan.warnings.contains(&w) {
                report.plan.warnings.push(w);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{ImageListing, MountOptions, OpStats, RunMeta};

    fn obs(path: &str, op: Op, ok: u64, err: Option<&str>) -> PathObservation {
        let mut errors = BTreeMap::new();
        if let Some(e) = err {
            errors.insert(e.to_owned(), 1);
        }
        let mut ops = BTreeMap::new();
        ops.insert(op, OpStats { ok, errors });
        PathObservation {
            path: CPath::from(path),
            ops,
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
}
