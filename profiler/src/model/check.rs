//! The CI gate's data: what a new run of an image is checked against (the
//! observation options a baseline report records, the image content under
//! its seeded and persistent mounts) and what the check finds.

use serde::{Deserialize, Serialize};

use super::{CPath, MountKind};

/// Version of `roprof check --format json`. Bump on any incompatible change.
pub const CHECK_SCHEMA_VERSION: u32 = 1;

/// How the baseline's run was observed, so that `roprof check` observes a
/// new image version the same way (absent from reports written before it
/// was recorded: `check` then uses the defaults and says so).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObserveOptions {
    /// Longest observation window, in seconds.
    pub duration_secs: f64,
    /// Quiet period that counts as settled, in seconds; `None` for a fixed
    /// window (`--window fixed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_secs: Option<f64>,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_timeout: i32,
    /// `--exercise`: the host shell command run during the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise: Option<String>,
    /// `--probe`: the URL polled until it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// The run had `--read-only` (`profile --read-only`).
    #[serde(default)]
    pub read_only: bool,
}

/// A summary of the image's content below a seeded or persistent mount's
/// target: what a seed copies, and what a named volume or PVC would
/// shadow once filled. The listing has no file contents, so a file changed
/// in place with the same size, mode and owner is not seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedDigest {
    /// The mount target.
    pub target: CPath,
    /// Entries below the target (the target itself excluded).
    pub entries: u64,
    /// Bytes of the regular files among them.
    pub bytes: u64,
    /// SHA-256 (hex) over the sorted entries' path, kind, mode, owner,
    /// size and link target.
    pub sha256: String,
    /// Up to [`SEED_SAMPLE`] entry paths, sorted, to name what changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<CPath>,
}

/// How many entry paths a [`SeedDigest`] keeps by name.
pub const SEED_SAMPLE: usize = 64;

/// How much a finding matters to the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The baseline's plan no longer holds: the new version would fail
    /// read-only with the committed mounts.
    Fail,
    /// Worth a look; fails the gate only with `--strict`.
    Warn,
}

impl Severity {
    /// The name users see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fail => "fail",
            Severity::Warn => "warn",
        }
    }
}

/// What a finding is about (the rule ids of the SARIF output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A write-type operation outside every planned mount: it would fail
    /// with EROFS read-only.
    WriteOutsidePlan,
    /// An operation failed with EROFS in a read-only run, outside the
    /// writes the plan leaves without a mount on purpose.
    Erofs,
    /// A planned mount's owner or mode no longer lets its writers write.
    MountOwnerMode,
    /// A planned mount's kind no longer fits what is done below it (data
    /// now fsynced under a tmpfs; image content a tmpfs would hide).
    MountKind,
    /// The image's content below a seeded or persistent mount changed.
    StaleSeed,
    /// A planned mount saw no write in the new run.
    UnusedMount,
    /// A coverage warning of the new run that the baseline did not have.
    Coverage,
    /// The new run lost events or truncated paths: its observation is not
    /// complete.
    Loss,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [FindingKind; 8] = [
        FindingKind::WriteOutsidePlan,
        FindingKind::Erofs,
        FindingKind::MountOwnerMode,
        FindingKind::MountKind,
        FindingKind::StaleSeed,
        FindingKind::UnusedMount,
        FindingKind::Coverage,
        FindingKind::Loss,
    ];

    /// The rule id users see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::WriteOutsidePlan => "write-outside-plan",
            FindingKind::Erofs => "erofs",
            FindingKind::MountOwnerMode => "mount-owner-mode",
            FindingKind::MountKind => "mount-kind",
            FindingKind::StaleSeed => "stale-seed",
            FindingKind::UnusedMount => "unused-mount",
            FindingKind::Coverage => "coverage",
            FindingKind::Loss => "loss",
        }
    }

    /// One line on what the rule checks.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            FindingKind::WriteOutsidePlan => {
                "a write-type operation outside every planned mount (it fails with EROFS read-only)"
            }
            FindingKind::Erofs => "an operation failed with EROFS in a read-only run",
            FindingKind::MountOwnerMode => {
                "a planned mount's owner or mode no longer lets its writers write"
            }
            FindingKind::MountKind => "a planned mount's kind no longer fits what is done below it",
            FindingKind::StaleSeed => {
                "the image's content below a seeded or persistent mount changed"
            }
            FindingKind::UnusedMount => "a planned mount saw no write in the new run",
            FindingKind::Coverage => "a coverage warning of the new run",
            FindingKind::Loss => "the new run lost events or truncated paths",
        }
    }
}

/// One thing the check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Fail or warn.
    pub severity: Severity,
    /// The rule.
    pub kind: FindingKind,
    /// The container path concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<CPath>,
    /// The processes (comm) that did it, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<String>,
    /// The baseline mount it concerns (its target), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<CPath>,
    /// What was found.
    pub message: String,
    /// What to change.
    pub fix: String,
}

/// A mount in the plan diff, as the renderers show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffMount {
    /// Mount point.
    pub target: CPath,
    /// Kind.
    pub kind: MountKind,
    /// `mode=…,uid=…,gid=…` and the size, as in the tmpfs options.
    pub options: String,
}

/// How the new plan differs from the baseline's, by mount target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDiff {
    /// In the new plan only.
    pub added: Vec<DiffMount>,
    /// In the baseline's plan only.
    pub removed: Vec<DiffMount>,
    /// In both, with another kind or options.
    pub changed: Vec<MountChange>,
}

/// A mount whose kind or options changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountChange {
    /// As the baseline plans it.
    pub baseline: DiffMount,
    /// As the new run's plan has it.
    pub new: DiffMount,
}

impl PlanDiff {
    /// True when both plans have the same mounts.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The gate's verdict on a new run against a baseline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// The findings, fails first, then by kind and path.
    pub findings: Vec<Finding>,
    /// The plan diff (baseline → new run's plan).
    pub diff: PlanDiff,
    /// Notes on the comparison itself (an old baseline without seed
    /// digests, observation defaults used).
    pub notes: Vec<String>,
}

impl CheckResult {
    /// True when some finding is a failure (or, with `strict`, any finding).
    #[must_use]
    pub fn failed(&self, strict: bool) -> bool {
        self.findings
            .iter()
            .any(|f| strict || f.severity == Severity::Fail)
    }

    /// Counts of (fail, warn) findings.
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        let fails = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Fail)
            .count();
        (fails, self.findings.len() - fails)
    }
}
