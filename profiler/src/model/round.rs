//! The closed loop's record of its runs (`rounds` in the report) and the
//! health a probe or HEALTHCHECK reported at the end of a run. Both are
//! closed sets of values, serialised as the strings users see (and the
//! schema lists).

use serde::{Deserialize, Serialize};

use super::{CPath, Ended, PhaseTime};

/// What a closed-loop round was for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoundKind {
    /// A read-only run of the whole plan (the first of `--verify`).
    #[default]
    Verify,
    /// A read-only run of a plan repaired after a failed verify round.
    Repair,
    /// A read-only run of `--mode iterate`, mounts added from its EROFS.
    Iterate,
    /// A read-only run without one mount, to see whether it is needed.
    LeaveOneOut,
}

impl RoundKind {
    /// The name users see (`verify`, `leave-one-out`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RoundKind::Verify => "verify",
            RoundKind::Repair => "repair",
            RoundKind::Iterate => "iterate",
            RoundKind::LeaveOneOut => "leave-one-out",
        }
    }
}

/// Whether the probe (`--probe`) or the image's HEALTHCHECK answered at the
/// end of a run; absent (`null`) when there was none to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// It answered.
    Healthy,
    /// It did not.
    Unhealthy,
}

impl Health {
    /// `healthy` when `ok`, else `unhealthy`.
    #[must_use]
    pub fn from_ok(ok: bool) -> Self {
        if ok {
            Health::Healthy
        } else {
            Health::Unhealthy
        }
    }

    /// The name users see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// One container run of the closed loop (not `Eq`: it holds `f64`s).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// What the round was for.
    pub kind: RoundKind,
    /// Mount targets the run had.
    pub mounts: Vec<CPath>,
    /// Operations that failed with EROFS.
    pub erofs: u64,
    /// Exit code of the container.
    pub exit_code: Option<i64>,
    /// Probe health, if probed.
    pub health: Option<Health>,
    /// The round matched the observed run.
    pub passed: bool,
    /// What differed.
    pub differences: Vec<String>,
    /// What differed only because of writes the plan leaves to fail on
    /// purpose (EROFS below `plan.unmounted`, and the application's log
    /// lines about them): no difference, but not a plain pass either.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
    /// What was changed for the next round, or concluded.
    pub action: String,
    /// Why the round's observation ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    /// Wall time of the round's phases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTime>,
}

impl Round {
    /// What users read of round `n` (from 1): its kind, mounts, EROFS,
    /// exit and action, then one line per difference and exception.
    #[must_use]
    pub fn lines(&self, n: usize) -> Vec<String> {
        let exit = self.exit_code.map_or_else(
            || "still running at the end".to_owned(),
            |c| format!("exit {c}"),
        );
        let mut out = vec![format!(
            "round {n} ({}): {} mount(s), {} EROFS, {exit}: {}",
            self.kind.as_str(),
            self.mounts.len(),
            self.erofs,
            self.action
        )];
        out.extend(self.differences.iter().map(|d| format!("    - {d}")));
        out.extend(
            self.exceptions
                .iter()
                .map(|e| format!("    - by design: {e}")),
        );
        out
    }
}
