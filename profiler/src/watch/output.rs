//! Reports of `watch`: one directory per container (`DIR/<name>/`, every
//! format, as `profile -o` writes them) and one per workload whose
//! replicas were seen (`DIR/<workload>/`, see [`super::workload`]).

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
};

use super::{WatchError, source::ImageFacts, workload};
use crate::{
    model::{Ended, Losses, PathObservation, Report, RunMeta, RunOptions, TraceStats},
    model::{RunMode, Settings},
    render,
    session::{self, RunOutput},
};

/// One container's observations, once it is done.
pub struct Finished {
    /// Container name.
    pub name: String,
    /// Container id.
    pub id: String,
    /// Image facts.
    pub image: ImageFacts,
    /// How the container was started, as run options (empty when the
    /// runtime could not be asked).
    pub run: RunOptions,
    /// Observations.
    pub observations: Vec<PathObservation>,
    /// Run metadata.
    pub meta: RunMeta,
}

/// Where reports go, and the workloads seen so far.
pub struct Outputs {
    dir: PathBuf,
    used: HashSet<String>,
    workloads: BTreeMap<String, Vec<Finished>>,
    /// Directories written, per container.
    pub containers: Vec<PathBuf>,
    /// Directories written, per workload (rewritten as replicas finish).
    pub merged: BTreeMap<String, PathBuf>,
}

impl Outputs {
    /// Creates `dir` (it may exist: reports of earlier runs stay).
    pub fn new(dir: &Path) -> Result<Self, WatchError> {
        std::fs::create_dir_all(dir).map_err(|source| WatchError::Output {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Outputs {
            dir: dir.to_path_buf(),
            used: HashSet::new(),
            workloads: BTreeMap::new(),
            containers: Vec::new(),
            merged: BTreeMap::new(),
        })
    }

    /// A directory name not used yet in this watch (a reused container
    /// name, a restarted pod container, gets `-2`, `-3`, …).
    fn fresh(&mut self, name: &str) -> String {
        let base = workload::dir_name(name);
        let mut n = 1;
        let mut cand = base.clone();
        while !self.used.insert(cand.clone()) {
            n += 1;
            cand = format!("{base}-{n}");
        }
        cand
    }

    /// Writes `f`'s report, and its workload's merged plan when it is the
    /// second replica or later.
    pub fn write(
        &mut self,
        f: Finished,
        labels: &BTreeMap<String, String>,
        losses: &Losses,
        stats: &TraceStats,
    ) -> Result<PathBuf, WatchError> {
        let report = report_of(
            &f.image,
            f.run.clone(),
            f.observations.clone(),
            f.meta.clone(),
            losses,
            stats,
        );
        let name = self.fresh(&f.name);
        let dir = self.dir.join(name);
        render::write_all(&report, &dir)?;
        self.containers.push(dir.clone());
        if let Some(key) = workload::key(labels) {
            let replicas = self.workloads.entry(key.clone()).or_default();
            replicas.push(f);
            if replicas.len() >= 2 {
                let merged = merged_report(&key, replicas, losses, stats);
                let wdir = self.dir.join(&key);
                render::write_all(&merged, &wdir)?;
                self.used.insert(key.clone());
                self.merged.insert(key, wdir);
            }
        }
        Ok(dir)
    }
}

/// The report of `observations` planned with `image` and `run`: watch's
/// per-container and per-workload reports, and guard's.
pub(crate) fn report_of(
    image: &ImageFacts,
    run: RunOptions,
    observations: Vec<PathObservation>,
    mut meta: RunMeta,
    losses: &Losses,
    stats: &TraceStats,
) -> Report {
    meta.notes.extend(image.notes.iter().cloned());
    if !losses.is_clean() {
        meta.notes
            .push("the loss counters are the watch's, shared by every container it traced".into());
    }
    session::report(
        RunOutput {
            image: image.config.clone(),
            listing: image.listing.clone(),
            observations,
            meta,
            losses: losses.clone(),
            stats: stats.clone(),
        },
        run,
        Settings::default(),
    )
}

/// One plan for the replicas of workload `key`: their observations
/// merged ([`workload::merge`]), incomplete when any replica's is.
fn merged_report(key: &str, replicas: &[Finished], losses: &Losses, stats: &TraceStats) -> Report {
    let obs: Vec<&[PathObservation]> = replicas.iter().map(|r| &r.observations[..]).collect();
    let first = &replicas[0];
    let names: Vec<String> = replicas
        .iter()
        .map(|r| format!("{} ({})", r.name, r.id.get(..12).unwrap_or(&r.id)))
        .collect();
    let incomplete: Vec<String> = replicas
        .iter()
        .filter(|r| r.meta.incomplete)
        .map(|r| {
            format!(
                "{}: {}",
                r.name,
                r.meta.incomplete_reason.as_deref().unwrap_or("cut short")
            )
        })
        .collect();
    let meta = RunMeta {
        mode: RunMode::Watch,
        observed_secs: replicas.iter().map(|r| r.meta.observed_secs).sum(),
        ended: Some(if incomplete.is_empty() {
            Ended::Exited
        } else {
            Ended::Signal
        }),
        incomplete: !incomplete.is_empty(),
        incomplete_reason: (!incomplete.is_empty())
            .then(|| format!("replicas cut short: {}", incomplete.join("; "))),
        notes: vec![format!(
            "merged plan of workload {key}: {} replicas: {}",
            replicas.len(),
            names.join(", ")
        )],
        ..RunMeta::default()
    };
    report_of(
        &first.image,
        first.run.clone(),
        workload::merge(&obs),
        meta,
        losses,
        stats,
    )
}
