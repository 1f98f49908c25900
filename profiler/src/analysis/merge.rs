//! One plan from several reports of the same image and run options
//! (`roprof merge`): runs with different exercises, or a watch's reports of
//! the replicas of one workload on several nodes.
//!
//! The observations are united with [`PathObservation::union`] (the merge
//! watch uses for replicas) and planned again with [`super::plan`] over
//! the image's listing: the plan of the union, not a union of plans (two
//! plans' mounts may nest, and a mount's kind and size depend on every
//! write below it). Reports whose image or write-relevant run options
//! differ are refused: their observations do not describe one container.

use std::collections::BTreeMap;

use super::{AnalysisInput, plan};
use crate::model::{
    CPath, ImageListing, Losses, PathObservation, PathSources, Report, RunMeta, RunMode,
    SCHEMA_VERSION, Settings, TraceStats,
};

/// A report and the name it was given by (its file name).
#[derive(Clone, Copy, Debug)]
pub struct Named<'a> {
    /// The name the merged report records as the source.
    pub name: &'a str,
    /// The report.
    pub report: &'a Report,
}

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Fewer than two reports.
    #[error("merge needs at least two reports (got {0})")]
    TooFew(usize),
    /// A report observed nothing (interrupted before its run).
    #[error(
        "report {report} observed nothing (no image id: the run never happened); it cannot be merged"
    )]
    Unobserved {
        /// The report.
        report: String,
    },
    /// Two reports differ in a field that changes what the container writes.
    #[error(
        "reports differ in {field}: {first} has {first_value}, {other} has {other_value}; only \
         reports of the same image run with the same write-relevant options can be merged"
    )]
    Mismatch {
        /// The field, as the report names it (`image.id`, `run_options.user`…).
        field: &'static str,
        /// The first report.
        first: String,
        /// Its value.
        first_value: String,
        /// The report that differs.
        other: String,
        /// Its value.
        other_value: String,
    },
}

/// The fields compared: each is part of what the container writes (the
/// image, who runs it, what it runs, where, and what is already mounted
/// or set). Ports, network, memory and security options are not: they do
/// not move writes, and replicas differ in them.
fn write_relevant(r: &Report) -> [(&'static str, String); 13] {
    let o = &r.run_options;
    let env: Vec<&str> = o.env.iter().map(|v| v.name.as_str()).collect();
    let s = &r.settings;
    [
        ("image.id", r.image.id.clone()),
        ("image.image", r.image.image.clone()),
        ("run_options.user", format!("{:?}", o.user)),
        ("run_options.workdir", format!("{:?}", o.workdir)),
        ("run_options.entrypoint", format!("{:?}", o.entrypoint)),
        ("run_options.command", format!("{:?}", o.command)),
        ("run_options.volumes", format!("{:?}", o.volumes)),
        ("run_options.tmpfs", format!("{:?}", o.tmpfs)),
        ("run_options.env (names)", format!("{env:?}")),
        ("run_options.env_files", format!("{:?}", o.env_files)),
        ("run_options.cap_add", format!("{:?}", o.cap_add)),
        ("run_options.group_add", format!("{:?}", o.group_add)),
        ("settings.max_mounts", format!("{:?}", s.max_mounts)),
    ]
}

/// Refuses reports that cannot be merged, naming the first difference.
pub fn check(reports: &[Named<'_>]) -> Result<(), MergeError> {
    let [first, rest @ ..] = reports else {
        return Err(MergeError::TooFew(0));
    };
    if rest.is_empty() {
        return Err(MergeError::TooFew(1));
    }
    for r in reports {
        if r.report.image.id.is_empty() {
            return Err(MergeError::Unobserved {
                report: r.name.to_owned(),
            });
        }
    }
    let want = write_relevant(first.report);
    for r in rest {
        for ((field, a), (_, b)) in want.iter().zip(write_relevant(r.report)) {
            if *a != b {
                return Err(MergeError::Mismatch {
                    field,
                    first: first.name.to_owned(),
                    first_value: a.clone(),
                    other: r.name.to_owned(),
                    other_value: b,
                });
            }
        }
    }
    Ok(())
}

/// The merged report of `reports` (checked with [`check`] first), planned
/// over `listing`, the image's filesystem. Its `sources` say which reports
/// observed each path; its plan is unverified (it has no rounds).
pub fn merge(reports: &[Named<'_>], listing: &ImageListing) -> Result<Report, MergeError> {
    check(reports)?;
    let first = reports[0].report;
    let sets: Vec<&[PathObservation]> = reports.iter().map(|r| &r.report.paths[..]).collect();
    let paths = PathObservation::union(&sets);
    let settings = merged_settings(reports);
    let plan = plan(&AnalysisInput {
        observations: &paths,
        listing,
        config: &first.image,
        run_options: &first.run_options,
        settings: settings.clone(),
    });
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        roprof_version: env!("CARGO_PKG_VERSION").into(),
        image: first.image.clone(),
        run_options: first.run_options.clone(),
        run: merged_meta(reports),
        losses: merged_losses(reports),
        stats: TraceStats {
            events: reports.iter().map(|r| r.report.stats.events).sum(),
            deduped: reports.iter().map(|r| r.report.stats.deduped).sum(),
            dedup_full: reports.iter().map(|r| r.report.stats.dedup_full).sum(),
            io_uring_setups: reports.iter().map(|r| r.report.stats.io_uring_setups).sum(),
            ..TraceStats::default()
        },
        sources: sources(reports),
        // The inputs were observed their own ways (their exercises
        // differ): `roprof check` of a merged baseline uses the default
        // window and says so.
        observe: None,
        seeds: super::check::seed_digests(&plan, listing),
        paths,
        plan,
        rounds: Vec::new(),
        settings,
    })
}

/// Repairs that describe the image (a tmpfs hid what it needed, a mount
/// point it creates) hold for every run: their union. Leave-one-out's
/// drops hold for one exercise only: a mount stays dropped only when every
/// report dropped it.
fn merged_settings(reports: &[Named<'_>]) -> Settings {
    let mut s = reports[0].report.settings.clone();
    for r in &reports[1..] {
        let o = &r.report.settings;
        s.force_seed.extend(o.force_seed.iter().cloned());
        s.forbid_points.extend(o.forbid_points.iter().cloned());
        s.drop.retain(|d| o.drop.contains(d));
        s.soft.retain(|d| o.soft.contains(d));
        s.min_size_bytes = s.min_size_bytes.max(o.min_size_bytes);
        s.size_factor = s.size_factor.max(o.size_factor);
        s.persist_data_service_workdir |= o.persist_data_service_workdir;
    }
    s
}

/// One value when every report agrees on it, `None` otherwise.
fn common<T: PartialEq + Clone>(
    reports: &[Named<'_>],
    f: impl Fn(&RunMeta) -> Option<T>,
) -> Option<T> {
    let v = f(&reports[0].report.run);
    reports[1..]
        .iter()
        .all(|r| f(&r.report.run) == v)
        .then_some(v)
        .flatten()
}

fn merged_meta(reports: &[Named<'_>]) -> RunMeta {
    let incomplete: Vec<String> = reports
        .iter()
        .filter(|r| r.report.run.incomplete)
        .map(|r| {
            format!(
                "{}: {}",
                r.name,
                r.report
                    .run
                    .incomplete_reason
                    .as_deref()
                    .unwrap_or("cut short")
            )
        })
        .collect();
    let inputs: Vec<String> = reports
        .iter()
        .map(|r| {
            let run = &r.report.run;
            let id = run.container_id.get(..12).unwrap_or(&run.container_id);
            format!("{} ({} of container {id})", r.name, run.mode.as_str())
        })
        .collect();
    let mut notes = vec![
        format!(
            "merged from {} reports: {}",
            reports.len(),
            inputs.join(", ")
        ),
        "the merged plan is not verified: run `roprof verify` on it with each exercise".into(),
    ];
    for r in reports {
        notes.extend(
            r.report
                .run
                .notes
                .iter()
                .map(|n| format!("{}: {n}", r.name)),
        );
    }
    RunMeta {
        mode: RunMode::Merge,
        read_only: reports.iter().all(|r| r.report.run.read_only),
        observed_secs: reports.iter().map(|r| r.report.run.observed_secs).sum(),
        ended: common(reports, |m| m.ended),
        exit_code: common(reports, |m| m.exit_code),
        oom_killed: reports.iter().any(|r| r.report.run.oom_killed),
        partial_start: reports.iter().any(|r| r.report.run.partial_start),
        incomplete: !incomplete.is_empty(),
        incomplete_reason: (!incomplete.is_empty())
            .then(|| format!("reports cut short: {}", incomplete.join("; "))),
        notes,
        health: common(reports, |m| m.health),
        exercise_exit: common(reports, |m| m.exercise_exit),
        ..RunMeta::default()
    }
}

fn merged_losses(reports: &[Named<'_>]) -> Losses {
    let mut l = Losses::default();
    for r in reports {
        let o = &r.report.losses;
        l.ringbuf_drops += o.ringbuf_drops;
        l.truncated_paths += o.truncated_paths;
        l.traced_full += o.traced_full;
        l.files_full += o.files_full;
        l.read_errors += o.read_errors;
        l.tail_call_fails += o.tail_call_fails;
    }
    l
}

/// Per path, the reports that observed it (a report that is itself a merge
/// contributes its own sources).
fn sources(reports: &[Named<'_>]) -> Vec<PathSources> {
    let mut by_path: BTreeMap<CPath, Vec<String>> = BTreeMap::new();
    for r in reports {
        let inner: BTreeMap<&CPath, &Vec<String>> = r
            .report
            .sources
            .iter()
            .map(|s| (&s.path, &s.reports))
            .collect();
        for o in &r.report.paths {
            let names = by_path.entry(o.path.clone()).or_default();
            match inner.get(&o.path) {
                Some(from) => names.extend(from.iter().map(|n| format!("{}/{n}", r.name))),
                None => names.push(r.name.to_owned()),
            }
        }
    }
    by_path
        .into_iter()
        .map(|(path, reports)| PathSources { path, reports })
        .collect()
}
