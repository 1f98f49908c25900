//! The part of roprof's JSON report (`--format json`, or `report.json` in
//! an `-o` directory) the benchmarks read.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, de::IgnoredAny};

use crate::{
    schema::{Losses, RoprofRound, RoprofStats},
    util,
};

/// A roprof report, as far as the bench needs it.
#[derive(Debug, Deserialize)]
pub struct RoprofReport {
    pub run: RunSection,
    pub stats: RoprofStats,
    pub losses: Losses,
    /// Counted, not kept (a churn report lists 100k paths).
    #[serde(default)]
    pub paths: Vec<IgnoredAny>,
    #[serde(default)]
    pub rounds: Option<Vec<RoprofRound>>,
}

/// The report's `run`.
#[derive(Debug, Deserialize)]
pub struct RunSection {
    #[serde(default)]
    pub observed_secs: Option<f64>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub ended: Option<String>,
    /// The container's last log lines (opsuite's `BENCH`/`CHURN` lines).
    #[serde(default)]
    pub logs_tail: Vec<String>,
}

impl RoprofReport {
    /// The report roprof printed on a run that ended as a profile should
    /// (exit 0, or 3 for a lossy one).
    pub fn from_run(run: &util::RoprofRun) -> Result<Self> {
        if !matches!(run.exit_code, 0 | 3) {
            bail!(
                "roprof exited {} (expected 0, or 3 for a lossy profile): {}",
                run.exit_code,
                util::tail(&run.stderr, 20)
            );
        }
        serde_json::from_str(&run.stdout).with_context(|| {
            format!(
                "roprof's stdout is not a JSON report: {}",
                util::tail(&run.stdout, 5)
            )
        })
    }

    /// The `report.json` roprof wrote into `dir`, if it wrote one.
    pub fn from_dir(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join("report.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The container's log tail, one line per entry.
    pub fn logs_tail(&self) -> String {
        self.run.logs_tail.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_checked_in_roprof_report() {
        let text = include_str!("../../reports/nginx/report.json");
        let r: RoprofReport = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("reports/nginx/report.json should be a report: {e}"));
        assert!(!r.paths.is_empty(), "nginx writes somewhere");
        assert!(r.losses.contains_key("ringbuf_drops"), "{:?}", r.losses);
        assert!(r.rounds.is_some_and(|rs| !rs.is_empty()), "a verify round");
    }
}
