//! A whole `profile`: one observed run, the plan, and the closed loop the
//! user asked for (verify and repair, leave-one-out, or iterate), with the
//! time of each phase in `stats.phases`.

use super::{check_minimal, cut_short_reason, iterate, verify_and_repair};
use crate::{
    model::{Phase, Report, RoundKind},
    model::{RunMode, Settings},
    session::{self, Context, RunConfig, RunOutput, SessionError, Stopwatch, interrupt},
};

/// Which closed loop follows the observed run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loop {
    /// None: the plan of the observed run.
    #[default]
    None,
    /// Verify (and repair) the plan read-only.
    Verify,
    /// Verify, then leave-one-out over the verified plan.
    VerifyMinimal,
    /// The manual method: read-only runs from no mounts, adding mounts.
    Iterate,
}

/// How a profile ended.
#[derive(Debug)]
pub struct Profiled {
    /// The report to print.
    pub report: Report,
    /// `Some(passed)` when a closed loop ran to its end; `None` without one,
    /// or when a signal or the loss of the engine cut it short (the report
    /// is then marked incomplete).
    pub verdict: Option<bool>,
}

/// Profiles `cfg.image`: observes it once, plans with `settings`, then runs
/// the closed loop `how` with at most `max_runs` container runs for the
/// verify/repair or iterate loop.
pub async fn profile(
    ctx: &mut Context,
    cfg: &RunConfig,
    settings: Settings,
    how: Loop,
    max_runs: usize,
) -> Result<Profiled, SessionError> {
    let out = match session::run(ctx, cfg).await {
        Ok(out) => out,
        Err(SessionError::Interrupted { .. }) => {
            // Interrupted before anything was observed: say so in a report
            // that plans nothing, rather than printing nothing at all.
            return Ok(Profiled {
                report: session::unobserved_report(cfg, &interrupt::describe()),
                verdict: None,
            });
        }
        Err(e) => return Err(e),
    };
    let mut sw = Stopwatch::default();
    sw.enter(Phase::Analyse).await;
    let first = (how == Loop::Iterate && !out.meta.incomplete).then(|| copy(&out));
    let mut report = session::report(out, cfg.run.clone(), settings);
    report.observe = Some(cfg.observe_options());
    let mut verdict = None;
    if !report.run.incomplete {
        // No closed loop over a plan made from a partial run.
        let res = match (how, first) {
            (Loop::None, _) => Ok(None),
            (Loop::Iterate, Some(first)) => {
                report.run.mode = RunMode::Iterate;
                sw.enter(Phase::Verify).await;
                iterate(ctx, &mut report, &first, cfg, max_runs)
                    .await
                    .map(Some)
            }
            _ => {
                sw.enter(Phase::Verify).await;
                verify_then_minimise(ctx, &mut report, cfg, how, max_runs).await
            }
        };
        verdict = fold(&mut report, res)?;
    }
    if interrupt::interrupted() && !report.run.incomplete {
        report.run.incomplete = true;
        report.run.incomplete_reason = Some(interrupt::describe());
    }
    report.stats.phases.extend(sw.finish());
    Ok(Profiled { report, verdict })
}

/// Verify and repair; with [`Loop::VerifyMinimal`], leave-one-out over the
/// verified plan. The verdict note names the read-only runs it took.
async fn verify_then_minimise(
    ctx: &mut Context,
    report: &mut Report,
    cfg: &RunConfig,
    how: Loop,
    max_runs: usize,
) -> Result<Option<bool>, SessionError> {
    let mut ok = verify_and_repair(ctx, report, cfg, max_runs).await?;
    if ok && how == Loop::VerifyMinimal {
        match check_minimal(ctx, report, cfg).await {
            Ok(v) => ok = v,
            Err(e) => {
                let why = cut_short_reason(&e).ok_or(e)?;
                let runs = verification_runs(report);
                report.run.incomplete = true;
                report.run.notes.push(format!(
                    "{why}: the plan was verified after {runs} read-only run(s); the leave-one-out check did not finish"
                ));
                report.run.incomplete_reason = Some(why);
                return Ok(None);
            }
        }
    }
    report.run.notes.push(if ok {
        format!(
            "verified after {} read-only run(s)",
            verification_runs(report)
        )
    } else {
        "verification failed".into()
    });
    Ok(Some(ok))
}

/// Read-only runs of whole plans (leave-one-out runs of partial plans are
/// not counted).
fn verification_runs(report: &Report) -> usize {
    report
        .rounds
        .iter()
        .filter(|r| r.kind != RoundKind::LeaveOneOut)
        .count()
}

/// Folds the result of a closed loop into the report: `Some(passed)`, or
/// `None` when a signal or the loss of the engine cut it short (the report
/// is then marked incomplete and its plan unverified).
fn fold(
    report: &mut Report,
    res: Result<Option<bool>, SessionError>,
) -> Result<Option<bool>, SessionError> {
    let why = match res {
        Ok(v) => return Ok(v),
        Err(e) => cut_short_reason(&e).ok_or(e)?,
    };
    report.run.incomplete = true;
    let runs = verification_runs(report);
    report.run.notes.push(format!(
        "{why}: the plan is UNVERIFIED ({runs} read-only run(s) finished)"
    ));
    report.run.incomplete_reason = Some(why);
    Ok(None)
}

fn copy(out: &RunOutput) -> RunOutput {
    RunOutput {
        image: out.image.clone(),
        listing: out.listing.clone(),
        observations: out.observations.clone(),
        meta: out.meta.clone(),
        losses: out.losses.clone(),
        stats: out.stats.clone(),
    }
}
