//! The data model every layer speaks: observations from a run, the image's
//! listing and config, the mount plan, and the saved report (JSON schema
//! `schema/report.schema.json`, versioned by [`SCHEMA_VERSION`]).
//!
//! Paths are byte strings ([`CPath`]): Linux paths need not be UTF-8 and a
//! profiler that mangles them would emit mounts for the wrong directory.

mod caveat;
mod check;
pub mod errno;
mod image;
mod observation;
mod opmap;
mod path;
mod plan;
mod report;
mod round;
mod run;
mod timing;

pub use self::{
    caveat::Caveat,
    check::{
        CHECK_SCHEMA_VERSION, CheckResult, DiffMount, Finding, FindingKind, MountChange,
        ObserveOptions, PlanDiff, SEED_SAMPLE, SeedDigest, Severity,
    },
    image::{EntryKind, ImageConfig, ImageEntry, ImageListing},
    observation::{During, Op, OpStats, PathObservation, ProcRef, first_writes},
    opmap::{ErrorCounts, OpEntry, OpMap},
    path::{CPath, MAX_SYMLINK_HOPS, canonicalize},
    plan::{
        Evidence, Exclusion, MountKind, MountOptions, MountPlan, MountRule, PlannedMount, Settings,
        Unmounted, WritableCode, size_mi,
    },
    report::{
        ExitStatus, Losses, PathSources, ProcessExit, Report, RunMeta, RunMode, Served, TaskReads,
        TraceStats, Verification,
    },
    round::{Health, Round, RoundKind},
    run::{EnvValues, EnvVar, RunOptions},
    timing::{Ended, Phase, PhaseTime},
};

/// Version of the JSON report format. Bump on any incompatible change.
///
/// 2: `run_options.env` holds names (values only with `--reveal-env`,
/// marked by `run_options.env_values`), and `run_options.env_files` the
/// `--env-file` paths; `seeded_volume` means a volatile seeded mount (fresh
/// for each container: an anonymous volume, not a named one), nested tmpfs
/// mounts may appear, observations count append-only opens, and the plan
/// lists `unmounted` writes. Added within 2 (optional, so older version 2
/// reports still load): `run.process_exits` and a path's `read_back`; a
/// report without `process_exits` compares no exits. Version 1 reports (env as `NAME=value`
/// strings) still load and render: see [`crate::render::json`].
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest report version this build still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;
