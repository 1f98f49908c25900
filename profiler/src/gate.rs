//! The CI gate (`roprof check`): profile a new version of an image with
//! the run options, window, probe and exercise its baseline report was
//! made with, and compare the new observation with the baseline's plan
//! ([`crate::analysis::check`]).

use crate::{
    analysis,
    environment::{self, ContainerEnv, EnvError},
    model::{CheckResult, Report, RunMode},
    request::Observe,
    session::{
        Context, RunConfig, SessionError,
        closed::flow::{self, Loop},
    },
};

/// The new run of a check and its verdict.
#[derive(Debug)]
pub struct Checked {
    /// The new run's report (its plan is what `--update` commits).
    pub report: Report,
    /// The comparison with the baseline.
    pub result: CheckResult,
}

/// The configuration of the new run: `image` (default: the baseline's
/// reference) with the baseline's run options and observation; `-e`
/// values the report withholds are taken from roprof's environment and
/// the env files read again, as `verify` does. Returns the notes to show
/// (observation defaults used for a baseline that does not record it).
pub fn config(
    baseline: &Report,
    image: Option<String>,
) -> Result<(RunConfig, Vec<String>), EnvError> {
    let mut run = baseline.run_options.clone();
    let env = ContainerEnv::resolve(&run.env, &run.env_files, environment::from_process)?;
    run.withhold_env_values();
    let mut notes = Vec::new();
    let observe = if let Some(o) = &baseline.observe {
        Observe::from(o)
    } else {
        notes.push(
            "the baseline does not record how it was observed (a report of an earlier roprof): \
             the new run uses the default window (10s, settle 2s), no probe and no exercise"
                .to_owned(),
        );
        Observe::default()
    };
    let read_only = baseline.observe.as_ref().is_some_and(|o| o.read_only);
    let image = image.unwrap_or_else(|| baseline.image.image.clone());
    let cfg = RunConfig {
        read_only,
        ..observe.config(image, run, env, RunMode::Profile)
    };
    Ok((cfg, notes))
}

/// Profiles `cfg.image` once (the planner continues from the baseline's
/// settings, so its budget and repairs carry over) and compares it with
/// the baseline.
pub async fn check(
    ctx: &mut Context,
    baseline: &Report,
    cfg: &RunConfig,
) -> Result<Checked, SessionError> {
    let profiled = flow::profile(ctx, cfg, baseline.settings.clone(), Loop::None, 1).await?;
    let result = analysis::check::compare(baseline, &profiled.report);
    Ok(Checked {
        report: profiled.report,
        result,
    })
}
