//! The closed loop: verify a plan by re-running the image read-only under
//! tracing, repair it when the run differs, iterate from nothing like the
//! manual method, and prove minimality by leave-one-out.
//!
//! One value carries the planner's settings through every step: the
//! report's own `settings`. Repairs are added to it, leave-one-out drops
//! are added to it, and every re-plan reads it, so no step plans with a
//! copy that lacks an earlier step's findings. A plan is called verified
//! only after a read-only run of exactly that plan matched.

mod compare;
pub mod flow;

pub use self::compare::{Verdict, compare};
use super::{Context, RunConfig, RunOutput, SessionError};
use crate::{
    analysis::{self, AnalysisInput},
    model::{
        CPath, Health, ImageListing, MountKind, MountPlan, MountRule, PathObservation,
        PlannedMount, Report, Round, RoundKind, RunMode, Verification, errno,
    },
};

/// Runs `report`'s image read-only with `mounts`.
async fn run_with_plan(
    ctx: &mut Context,
    report: &Report,
    mounts: &[PlannedMount],
    base: &RunConfig,
    kind: RunMode,
) -> Result<RunOutput, SessionError> {
    let mut cfg = base.clone();
    cfg.read_only = true;
    cfg.keep = false;
    cfg.mode = kind;
    cfg.extra_tmpfs.clear();
    cfg.extra_binds.clear();
    cfg.label = Some(format!("round {}", report.rounds.len() + 1));
    let tag = report
        .run
        .container_id
        .get(..12)
        .unwrap_or("run")
        .to_owned();
    let round = ctx.next_seq();
    let mut volumes = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let Some(target) = m.target.to_str() else {
            return Err(SessionError::Unrepresentable(m.target.display()));
        };
        match m.kind {
            MountKind::Tmpfs => cfg
                .extra_tmpfs
                .push((target.to_owned(), m.options.tmpfs_options())),
            MountKind::SeededVolume | MountKind::PersistentVolume => {
                // Fresh per round: a seeded volume is filled from the image
                // only while empty.
                let name = format!(
                    "roprof-{}-{tag}-{}-{round}-{i}",
                    kind.as_str(),
                    std::process::id()
                );
                cfg.extra_binds.push(format!("{name}:{target}"));
                volumes.push(name);
            }
        }
    }
    let out = super::run(ctx, &cfg).await;
    match &out {
        Ok(o) if !o.meta.incomplete => {
            // The container is still there (stopped): remove it and its
            // volumes while the next round runs.
            ctx.remove_later(o.meta.container_id.clone(), volumes);
        }
        _ => {
            // `run` already removed the container.
            for v in &volumes {
                if let Err(e) = ctx.engine.remove_volume(v).await {
                    eprintln!("roprof: {e}");
                }
            }
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

/// Re-plans from the report's paths (plus `extra`) and its settings.
fn replan(report: &mut Report, extra: &[PathObservation], listing: &ImageListing) {
    report.paths.extend(extra.iter().cloned());
    report.plan = analysis::plan(&AnalysisInput {
        observations: &report.paths,
        listing,
        config: &report.image,
        run_options: &report.run_options,
        settings: report.settings.clone(),
    });
}

fn targets(ms: &[PlannedMount]) -> Vec<CPath> {
    ms.iter().map(|m| m.target.clone()).collect()
}

/// The round of read-only run `ro` with `mounts`, compared by `v`; its
/// action is still to be said.
#[must_use]
pub fn round_of(kind: RoundKind, mounts: &[PlannedMount], ro: &RunOutput, v: &Verdict) -> Round {
    Round {
        kind,
        mounts: targets(mounts),
        erofs: v.erofs,
        exit_code: ro.meta.exit_code,
        health: ro.meta.health,
        passed: v.passed,
        differences: v.differences.clone(),
        exceptions: v.exceptions.clone(),
        action: String::new(),
        ended: ro.meta.ended,
        phases: ro.stats.phases.clone(),
    }
}

/// Verifies `report`'s plan and repairs it until a read-only run matches the
/// observed one or `max_runs` container runs were spent. Repairs go into
/// `report.settings`; rounds are appended to `report.rounds`. Returns
/// whether the final plan verified.
pub async fn verify_and_repair(
    ctx: &mut Context,
    report: &mut Report,
    base: &RunConfig,
    max_runs: usize,
) -> Result<bool, SessionError> {
    let budget = max_runs.max(1);
    for run in 0..budget {
        let mounts = report.plan.mounts.clone();
        let ro = run_with_plan(ctx, report, &mounts, base, RunMode::Verify).await?;
        let v = compare(report, &ro);
        let last = run + 1 == budget;
        let mut round = round_of(
            if run == 0 {
                RoundKind::Verify
            } else {
                RoundKind::Repair
            },
            &mounts,
            &ro,
            &v,
        );
        if v.passed {
            round.action = "verified".into();
            record(report, round);
            set_verification(report, true);
            return Ok(true);
        }
        let settings = &mut report.settings;
        let mut progress = !v.failed.is_empty();
        for t in &v.seed {
            progress |= settings.force_seed.insert(t.clone());
        }
        for t in &v.forbid {
            progress |= settings.forbid_points.insert(t.clone());
        }
        if !progress || last {
            round.action = if last {
                "gave up: run budget spent".into()
            } else {
                "gave up: no repair applies".into()
            };
            record(report, round);
            set_verification(report, false);
            return Ok(false);
        }
        replan(report, &v.failed, &ro.listing);
        round.action = format!(
            "repaired: {} new EROFS path(s) covered, seeded {:?}, moved up from {:?}",
            v.failed.len(),
            v.seed.iter().map(CPath::display).collect::<Vec<_>>(),
            v.forbid.iter().map(CPath::display).collect::<Vec<_>>()
        );
        record(report, round);
    }
    set_verification(report, false);
    Ok(false)
}

/// Appends `round` to the report's rounds and prints it on stderr as it
/// ends (a result, not progress: `--quiet` keeps it), numbered.
pub fn record(report: &mut Report, round: Round) {
    for (i, l) in round.lines(report.rounds.len() + 1).iter().enumerate() {
        if i == 0 {
            eprintln!("roprof: {l}");
        } else {
            eprintln!("{l}");
        }
    }
    report.rounds.push(round);
}

/// Records the verdict of the final plan's read-only run: with writes the
/// plan leaves to fail on purpose, it is verified with exceptions (they
/// fail with EROFS, and the application may say so), never plainly
/// verified.
pub fn set_verification(report: &mut Report, passed: bool) {
    report.run.verification = Some(if !passed {
        Verification::Failed
    } else if report.plan.unmounted.is_empty() {
        Verification::Verified
    } else {
        Verification::VerifiedWithExceptions
    });
}

/// The manual method, automated: start read-only with no mounts, add mounts
/// for what failed with EROFS, rerun while each round's plan adds or
/// changes a mount, until a round is clean and its plan is the plan of
/// everything seen (but for the sizes it takes from the clean round's
/// writes), or `max_runs` container runs were spent.
///
/// Every round's observations count, not only its EROFS paths: a write that
/// succeeds inside a round's mount (a log the application appends to) is
/// what `profile` sees in its writable run, so the plan of the union is
/// planned by the same rules (a log directory whose files the application
/// recreates is a tmpfs, not a seeded volume). `report` holds the image,
/// run options, settings and listing of a first read-only run; its paths,
/// plan and rounds are rewritten. The final plan is the one the last
/// clean round ran.
pub async fn iterate(
    ctx: &mut Context,
    report: &mut Report,
    first: &RunOutput,
    base: &RunConfig,
    max_runs: usize,
) -> Result<bool, SessionError> {
    let budget = max_runs.max(1);
    let round = iterate_round(first, &[]);
    let mut clean = round.passed;
    record(report, round);
    report.paths = PathObservation::union(&[&first.observations]);
    let mut ran: Vec<PlannedMount> = Vec::new();
    let mut ran_plan = report.plan.clone();
    ran_plan.mounts.clear();
    loop {
        replan(report, &[], &first.listing);
        let mounts = report.plan.mounts.clone();
        if same_mounts(&mounts, &ran) {
            if clean {
                warn_if_optional(report, first);
                return Ok(true);
            }
            stop(report, "gave up: no mount covers the new EROFS paths");
            return Ok(false);
        }
        if report.rounds.len() >= budget {
            if clean {
                // The plan of everything seen differs from the one that
                // ran clean, and no run is left to try it: keep the one
                // that ran.
                report.plan = ran_plan;
                warn_if_optional(report, first);
                return Ok(true);
            }
            stop(report, "gave up: run budget spent (see --max-runs)");
            return Ok(false);
        }
        if clean {
            stop(
                report,
                "the plan of every round's writes changes a mount: running it",
            );
        }
        let ro = run_with_plan(ctx, report, &mounts, base, RunMode::Iterate).await?;
        let round = iterate_round(&ro, &mounts);
        clean = round.passed;
        record(report, round);
        report.paths = PathObservation::union(&[&report.paths, &ro.observations]);
        ran = mounts;
        ran_plan = report.plan.clone();
    }
}

/// Same targets, kinds and options but the size limit: what a container
/// is run with (the evidence grows with every round and is not part of
/// it). A size limit is not compared: the plan of a clean round's writes
/// sizes each mount from them, with headroom (`size_factor`, at least
/// `min_size_bytes`), where the round before had seen no bytes (its writes
/// failed); a run with that limit is the clean run, so it is not repeated.
fn same_mounts(a: &[PlannedMount], b: &[PlannedMount]) -> bool {
    let key = |m: &PlannedMount| {
        let mut o = m.options.clone();
        o.size_bytes = None;
        (m.target.clone(), m.kind, o)
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
}

/// Records why the loop stopped on its last round.
fn stop(report: &mut Report, why: &str) {
    let n = report.rounds.len();
    if let Some(r) = report.rounds.last_mut() {
        r.action = format!("{}; {why}", r.action);
        eprintln!("roprof: round {n}: {why}");
    }
}

/// The warning of an iterate whose clean run exited as the run with no
/// mounts did: the failing writes may be optional.
fn warn_if_optional(report: &mut Report, first: &RunOutput) {
    let last = report.rounds.last().and_then(|r| r.exit_code);
    if report.rounds.len() > 1
        && last == first.meta.exit_code
        && first.observations.iter().any(PathObservation::any_erofs)
    {
        report.plan.warnings.push(
            "the exit code was the same with no mounts at all: the failing writes may be optional \
             (run --check-minimal to see which)"
                .into(),
        );
    }
}

/// The round of an iterate run with `mounts`.
fn iterate_round(out: &RunOutput, mounts: &[PlannedMount]) -> Round {
    let failed: Vec<&PathObservation> = out.observations.iter().filter(|o| o.any_erofs()).collect();
    let erofs = failed
        .iter()
        .flat_map(|o| o.ops.values())
        .filter_map(|s| s.errors.get(errno::EROFS))
        .sum();
    let v = Verdict {
        passed: erofs == 0,
        erofs,
        differences: failed
            .iter()
            .map(|o| format!("EROFS on {}", o.path))
            .collect(),
        ..Verdict::default()
    };
    let mut round = round_of(RoundKind::Iterate, mounts, out, &v);
    round.action = if erofs == 0 {
        "clean: no EROFS".into()
    } else if mounts.is_empty() {
        "adding mounts for the EROFS paths".into()
    } else {
        "adding mounts for the new EROFS paths".into()
    };
    round
}

/// Leave-one-out over a verified plan's mounts, each tried without the
/// mounts already dropped: a mount whose removal changes nothing (no EROFS,
/// same exit code, health and exercise status) is dropped; one whose removal
/// only makes writes fail without changing the outcome is reported as
/// optional and kept. When something was dropped, the re-planned plan is run
/// once more; should it not match, the drops are undone. Returns whether
/// the final plan verified (it is the verified input plan when nothing was
/// dropped).
pub async fn check_minimal(
    ctx: &mut Context,
    report: &mut Report,
    base: &RunConfig,
) -> Result<bool, SessionError> {
    let all = report.plan.mounts.clone();
    let mut dropped: Vec<CPath> = Vec::new();
    let mut soft: Vec<CPath> = Vec::new();
    let mut listing = ImageListing::default();
    // A declared VOLUME's mount is not tested: without it Docker mounts an
    // anonymous volume there, so the run would look the same, but a kubelet
    // mounts nothing and the data would not outlive the container.
    for m in all
        .iter()
        .filter(|m| m.evidence.rule != MountRule::DeclaredVolume)
    {
        let rest: Vec<PlannedMount> = all
            .iter()
            .filter(|x| {
                x.target != m.target && !dropped.contains(&x.target) && !soft.contains(&x.target)
            })
            .cloned()
            .collect();
        let ro = run_with_plan(ctx, report, &rest, base, RunMode::Verify).await?;
        let v = compare(report, &ro);
        listing.clone_from(&ro.listing);
        let same_outcome = ro.meta.exit_code == report.run.exit_code
            && ro.meta.exercise_exit == report.run.exercise_exit
            && (report.run.health != Some(Health::Healthy)
                || ro.meta.health == Some(Health::Healthy));
        let mut round = round_of(RoundKind::LeaveOneOut, &rest, &ro, &v);
        round.action = if v.passed {
            dropped.push(m.target.clone());
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
            soft.push(m.target.clone());
            format!(
                "{} is optional: writes fail softly without it: dropped",
                m.target
            )
        } else {
            format!("{} is needed", m.target)
        };
        record(report, round);
    }
    if dropped.is_empty() && soft.is_empty() {
        return Ok(true);
    }
    let verified = report.plan.clone();
    let undo = |report: &mut Report, verified: MountPlan| {
        for d in &dropped {
            report.settings.drop.remove(d);
        }
        for d in &soft {
            report.settings.soft.remove(d);
        }
        report.plan = verified;
    };
    report.settings.drop.extend(dropped.iter().cloned());
    report.settings.soft.extend(soft.iter().cloned());
    replan_keeping_warnings(report, &listing, &verified.warnings);
    let mounts = report.plan.mounts.clone();
    let ro = match run_with_plan(ctx, report, &mounts, base, RunMode::Verify).await {
        Ok(ro) => ro,
        Err(e) => {
            // Cut short: the plan that stands is the one that verified.
            undo(report, verified);
            return Err(e);
        }
    };
    let v = compare(report, &ro);
    let mut round = round_of(RoundKind::Verify, &mounts, &ro, &v);
    if v.passed {
        round.action = "verified the plan without the dropped mounts".into();
        record(report, round);
        // Writes that now fail softly are writes left to fail on purpose.
        set_verification(report, true);
        return Ok(true);
    }
    // Each drop passed alone but the plan without all of them does not:
    // keep the plan that verified.
    round.action = format!(
        "the plan without {} did not verify: they are kept",
        dropped
            .iter()
            .chain(&soft)
            .map(CPath::display)
            .collect::<Vec<_>>()
            .join(", ")
    );
    record(report, round);
    undo(report, verified);
    set_verification(report, true);
    Ok(true)
}

fn replan_keeping_warnings(report: &mut Report, listing: &ImageListing, warnings: &[String]) {
    replan(report, &[], listing);
    for w in warnings {
        if !report.plan.warnings.contains(w) {
            report.plan.warnings.push(w.clone());
        }
    }
}
