//! The CI gate's comparison: a baseline report's plan against a new run of
//! the image (a new version, the same run options), findings out. Pure: no
//! engine, no kernel; `crate::gate` runs the new profile.
//!
//! - **fail** `write-outside-plan`: a write-type operation outside every
//!   mount of the baseline's plan (it would fail with EROFS read-only),
//!   grouped by the new plan's mount that covers it;
//! - **fail** `erofs`: the same seen failing in a read-only run;
//! - **fail** `mount-owner-mode`: a process creates entries in a planned
//!   mount's root that the mount's owner and mode do not let it write;
//! - **fail** `mount-kind`: the new plan needs a longer-lived kind at a
//!   planned target (data now fsynced under a tmpfs; image content that a
//!   tmpfs would hide);
//! - **warn** `stale-seed`: the image's content below a seeded or
//!   persistent mount changed (see [`SeedDigest`]);
//! - **warn** `unused-mount`: a planned mount saw no write;
//! - **warn** `coverage`: a warning of the new plan the baseline did not
//!   have; `loss`: the new run lost events.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use sha2::{Digest as _, Sha256};

use crate::model::{
    CPath, CheckResult, DiffMount, EntryKind, Finding, FindingKind, ImageListing, MountChange,
    MountKind, MountPlan, MountRule, PathObservation, PlanDiff, PlannedMount, Report, SEED_SAMPLE,
    SeedDigest, Severity, errno,
};

/// How many paths a finding's message names before "and N more".
const NAMED_PATHS: usize = 5;

/// The digest of the image's content below each mount of `plan`, sorted by
/// target (every kind: a tmpfs target that gains content is a kind change).
#[must_use]
pub fn seed_digests(plan: &MountPlan, listing: &ImageListing) -> Vec<SeedDigest> {
    let mut out: Vec<SeedDigest> = plan
        .mounts
        .iter()
        .map(|m| seed_digest(&m.target, listing))
        .collect();
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out.dedup_by(|a, b| a.target == b.target);
    out
}

/// The digest of the listing's entries strictly below `target`.
#[must_use]
pub fn seed_digest(target: &CPath, listing: &ImageListing) -> SeedDigest {
    let mut h = Sha256::new();
    let mut d = SeedDigest {
        target: target.clone(),
        ..SeedDigest::default()
    };
    for (path, e) in listing.entries.range(target.clone()..) {
        if !path.starts_with(target) {
            break;
        }
        if path == target {
            continue;
        }
        d.entries += 1;
        if e.kind == EntryKind::File {
            d.bytes += e.size;
        }
        if d.sample.len() < SEED_SAMPLE {
            d.sample.push(path.clone());
        }
        h.update(path.as_bytes());
        h.update([0]);
        let kind = match e.kind {
            EntryKind::File => b'f',
            EntryKind::Dir => b'd',
            EntryKind::Symlink => b'l',
            EntryKind::Other => b'o',
        };
        h.update(
            format!(
                "{} {:o} {} {} {} ",
                kind as char, e.mode, e.uid, e.gid, e.size
            )
            .as_bytes(),
        );
        if let Some(t) = &e.link_target {
            h.update(t.as_bytes());
        }
        h.update([b'\n']);
    }
    d.sha256 = h.finalize().iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    d
}

/// Compares the new run's report with the baseline's plan.
#[must_use]
pub fn compare(baseline: &Report, new: &Report) -> CheckResult {
    let mut findings = Vec::new();
    let read_only = new.run.read_only;
    outside_plan(baseline, new, read_only, &mut findings);
    for m in &baseline.plan.mounts {
        per_mount(m, new, &mut findings);
    }
    let mut notes = Vec::new();
    stale_seeds(baseline, new, &mut findings, &mut notes);
    let known: BTreeSet<&String> = baseline.plan.warnings.iter().collect();
    for w in &new.plan.warnings {
        if !known.contains(w) {
            findings.push(Finding {
                severity: Severity::Warn,
                kind: FindingKind::Coverage,
                path: None,
                processes: vec![],
                mount: None,
                message: w.clone(),
                fix: "read the warning; when the new run did not cover what the application does \
                      in production, give the baseline a --probe or --exercise and profile again"
                    .into(),
            });
        }
    }
    if !new.losses.is_clean() {
        findings.push(Finding {
            severity: Severity::Warn,
            kind: FindingKind::Loss,
            path: None,
            processes: vec![],
            mount: None,
            message: format!(
                "the new run lost events or truncated paths ({:?}): writes may be missing from the comparison",
                new.losses
            ),
            fix: "run the check again (a bigger --ringbuf-bytes on the baseline's profile helps)"
                .into(),
        });
    }
    findings.sort_by(|a, b| {
        (a.severity, a.kind, &a.mount, &a.path).cmp(&(b.severity, b.kind, &b.mount, &b.path))
    });
    CheckResult {
        findings,
        diff: plan_diff(&baseline.plan, &new.plan),
        notes,
    }
}

/// True when the observation needs its directory writable: a write-type
/// operation that succeeded, or one that failed only because the root was
/// read-only.
fn needs_write(o: &PathObservation) -> bool {
    o.ops
        .iter()
        .any(|(op, s)| op.is_write() && (s.ok > 0 || s.errors.contains_key(errno::EROFS)))
}

fn processes<'a>(obs: impl Iterator<Item = &'a PathObservation>) -> Vec<String> {
    let set: BTreeSet<String> = obs
        .flat_map(|o| [o.first.comm.to_string(), o.last.comm.to_string()])
        .filter(|c| !c.is_empty())
        .collect();
    set.into_iter().collect()
}

fn named(paths: &[&CPath]) -> String {
    let mut s: Vec<String> = paths
        .iter()
        .take(NAMED_PATHS)
        .map(|p| p.display())
        .collect();
    if paths.len() > NAMED_PATHS {
        s.push(format!("and {} more", paths.len() - NAMED_PATHS));
    }
    s.join(", ")
}

fn covering<'a>(plan: &'a MountPlan, path: &CPath) -> Option<&'a PlannedMount> {
    plan.mounts
        .iter()
        .filter(|m| path.starts_with(&m.target))
        .max_by_key(|m| m.target.as_bytes().len())
}

/// The flag that adds `m` to a `docker run` line.
fn docker_flag(m: &PlannedMount) -> String {
    let t = m.target.display();
    match m.kind {
        MountKind::Tmpfs => format!("--tmpfs {t}:{}", m.options.tmpfs_options()),
        MountKind::SeededVolume => format!("-v {t} (a volatile seeded volume)"),
        MountKind::PersistentVolume => format!("-v NAME:{t} (a persistent volume)"),
    }
}

fn outside_plan(baseline: &Report, new: &Report, read_only: bool, out: &mut Vec<Finding>) {
    let excluded: BTreeSet<&CPath> = new.plan.excluded.iter().map(|e| &e.path).collect();
    let tolerated: BTreeSet<&CPath> = baseline
        .plan
        .unmounted
        .iter()
        .flat_map(|u| &u.paths)
        .collect();
    let new_unmounted: BTreeMap<&CPath, &str> = new
        .plan
        .unmounted
        .iter()
        .flat_map(|u| u.paths.iter().map(move |p| (p, u.reason.as_str())))
        .collect();
    // Grouped by the new plan's mount covering the write (None: the new
    // plan has no mount for it either).
    let mut groups: BTreeMap<Option<&CPath>, Vec<&PathObservation>> = BTreeMap::new();
    for o in &new.paths {
        if !needs_write(o)
            || excluded.contains(&o.path)
            || tolerated.contains(&o.path)
            || covering(&baseline.plan, &o.path).is_some()
        {
            continue;
        }
        groups
            .entry(covering(&new.plan, &o.path).map(|m| &m.target))
            .or_default()
            .push(o);
    }
    for (target, obs) in groups {
        let erofs = read_only && obs.iter().any(|o| o.any_erofs());
        let kind = if erofs {
            FindingKind::Erofs
        } else {
            FindingKind::WriteOutsidePlan
        };
        let paths: Vec<&CPath> = obs.iter().map(|o| &o.path).collect();
        let procs = processes(obs.iter().copied());
        let what = if erofs {
            "failed with EROFS read-only"
        } else {
            "would fail with EROFS read-only: no mount of the baseline's plan covers"
        };
        if let Some(m) = target.and_then(|t| new.plan.mounts.iter().find(|m| &m.target == t)) {
            out.push(Finding {
                severity: Severity::Fail,
                kind,
                path: Some(m.target.clone()),
                processes: procs.clone(),
                mount: None,
                message: format!(
                    "{} by {} {what} {}",
                    plural_writes(paths.len()),
                    procs.join(", "),
                    named(&paths)
                ),
                fix: format!(
                    "add {} to the plan (the new run's plan has it: `roprof check --update` writes it)",
                    docker_flag(m)
                ),
            });
            continue;
        }
        for o in obs {
            let why = new_unmounted.get(&o.path);
            out.push(Finding {
                severity: if why.is_some() {
                    Severity::Warn
                } else {
                    Severity::Fail
                },
                kind,
                path: Some(o.path.clone()),
                processes: processes(std::iter::once(o)),
                mount: None,
                message: match why {
                    Some(r) => format!(
                        "a write {what} {}; the new plan leaves it without a mount on purpose: {r}",
                        o.path.display()
                    ),
                    None => format!("a write {what} {}", o.path.display()),
                },
                fix: "make the application write below a planned mount, or profile again and \
                      commit the new plan (`roprof check --update`)"
                    .into(),
            });
        }
    }
}

fn plural_writes(n: usize) -> String {
    if n == 1 {
        "1 write".into()
    } else {
        format!("{n} writes")
    }
}

/// Whether a process of `uid`/`gid` may create entries in a directory of
/// this owner and mode (root may; supplementary groups are not known).
fn may_write(m: &PlannedMount, uid: u32, gid: u32) -> bool {
    let o = &m.options;
    uid == 0
        || (uid == o.uid && o.mode & 0o200 != 0)
        || (uid != o.uid && gid == o.gid && o.mode & 0o020 != 0)
        || (uid != o.uid && gid != o.gid && o.mode & 0o002 != 0)
}

fn kind_rank(k: MountKind) -> u8 {
    match k {
        MountKind::Tmpfs => 0,
        MountKind::SeededVolume => 1,
        MountKind::PersistentVolume => 2,
    }
}

fn per_mount(m: &PlannedMount, new: &Report, out: &mut Vec<Finding>) {
    let writers: Vec<&PathObservation> = new
        .paths
        .iter()
        .filter(|o| o.path.starts_with(&m.target) && needs_write(o))
        .collect();
    if writers.is_empty() && m.evidence.rule != MountRule::DeclaredVolume {
        out.push(unused(m));
    }
    out.extend(owner_mode(m, new, &writers));
    out.extend(kind_change(m, new, &writers));
}

fn unused(m: &PlannedMount) -> Finding {
    let target = m.target.display();
    Finding {
        severity: Severity::Warn,
        kind: FindingKind::UnusedMount,
        path: Some(m.target.clone()),
        processes: vec![],
        mount: Some(m.target.clone()),
        message: format!("nothing was written below {target} in the new run"),
        fix: format!(
            "when the application no longer writes there, remove the mount at {target} \
             (`roprof check --update`); when it does so only later in its life, give the \
             baseline an --exercise that reaches it"
        ),
    }
}

/// Entries made in the mount's root need its owner and mode.
fn owner_mode(m: &PlannedMount, new: &Report, writers: &[&PathObservation]) -> Option<Finding> {
    let target = m.target.display();
    let denied: Vec<&PathObservation> = writers
        .iter()
        .copied()
        .filter(|o| o.path.parent() == m.target || o.path == m.target)
        .filter(|o| {
            [&o.first, &o.last]
                .iter()
                .any(|p| !may_write(m, p.uid, p.gid))
        })
        .collect();
    if denied.is_empty() {
        return None;
    }
    let procs = processes(denied.iter().copied());
    let uids: BTreeSet<String> = denied
        .iter()
        .flat_map(|o| [&o.first, &o.last])
        .filter(|p| !may_write(m, p.uid, p.gid))
        .map(|p| format!("{}:{}", p.uid, p.gid))
        .collect();
    let paths: Vec<&CPath> = denied.iter().map(|o| &o.path).collect();
    let fix = match new.plan.mounts.iter().find(|n| n.target == m.target) {
        Some(n) if n.options != m.options => format!(
            "give {target} the new plan's options ({}) (`roprof check --update` writes them)",
            n.options.tmpfs_options()
        ),
        _ => format!(
            "give {target} an owner or mode that uid:gid {} may write (uid=, gid=, mode= of the mount)",
            uids.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    Some(Finding {
        severity: Severity::Fail,
        kind: FindingKind::MountOwnerMode,
        path: Some(m.target.clone()),
        processes: procs.clone(),
        mount: Some(m.target.clone()),
        message: format!(
            "{} as uid:gid {} write {}, but the plan mounts {target} owned by {}:{} mode {:o}",
            procs.join(", "),
            uids.into_iter().collect::<Vec<_>>().join(", "),
            named(&paths),
            m.options.uid,
            m.options.gid,
            m.options.mode
        ),
        fix,
    })
}

/// The new plan's kind at (or above) the same target.
fn kind_change(m: &PlannedMount, new: &Report, writers: &[&PathObservation]) -> Option<Finding> {
    let target = m.target.display();
    let n = covering(&new.plan, &m.target)?;
    if kind_rank(n.kind) <= kind_rank(m.kind) {
        return None;
    }
    let fsynced: Vec<&CPath> = writers
        .iter()
        .filter(|o| o.fsynced)
        .map(|o| &o.path)
        .collect();
    let why = if n.kind == MountKind::PersistentVolume && !fsynced.is_empty() {
        format!("data is now fsynced below it ({})", named(&fsynced))
    } else if n.kind == MountKind::PersistentVolume {
        format!("the new plan keeps its content: {}", n.evidence.reason)
    } else {
        format!(
            "the image now has content there that a tmpfs would hide: {}",
            n.evidence.reason
        )
    };
    Some(Finding {
        severity: Severity::Fail,
        kind: FindingKind::MountKind,
        path: Some(n.target.clone()),
        processes: processes(writers.iter().copied()),
        mount: Some(m.target.clone()),
        message: format!(
            "the plan mounts {target} as {}, but {why}",
            kind_name(m.kind)
        ),
        fix: format!(
            "mount {} as {} instead (`roprof check --update` writes it)",
            n.target.display(),
            kind_name(n.kind)
        ),
    })
}

fn kind_name(k: MountKind) -> &'static str {
    match k {
        MountKind::Tmpfs => "a tmpfs",
        MountKind::SeededVolume => "a volatile seeded volume",
        MountKind::PersistentVolume => "a persistent volume",
    }
}

fn stale_seeds(baseline: &Report, new: &Report, out: &mut Vec<Finding>, notes: &mut Vec<String>) {
    let seeded = baseline
        .plan
        .mounts
        .iter()
        .filter(|m| m.kind != MountKind::Tmpfs);
    for m in seeded {
        let Some(old) = baseline.seeds.iter().find(|s| s.target == m.target) else {
            notes.push(format!(
                "the baseline has no digest of the image's content below {} (a report of an \
                 earlier roprof, or a mount added by a repair): a stale seed there is not seen",
                m.target.display()
            ));
            continue;
        };
        let Some(cur) = new.seeds.iter().find(|s| s.target == m.target) else {
            notes.push(format!(
                "the new run has no digest below {}: a stale seed there is not seen",
                m.target.display()
            ));
            continue;
        };
        if old.sha256 == cur.sha256 {
            continue;
        }
        let was: BTreeSet<&CPath> = old.sample.iter().collect();
        let now: BTreeSet<&CPath> = cur.sample.iter().collect();
        let added: Vec<&CPath> = now.difference(&was).copied().collect();
        let removed: Vec<&CPath> = was.difference(&now).copied().collect();
        let mut what = format!(
            "the image's content below {} changed: {} entries ({} bytes), was {} ({} bytes)",
            m.target.display(),
            cur.entries,
            cur.bytes,
            old.entries,
            old.bytes
        );
        if !added.is_empty() {
            let _ = write!(what, "; new: {}", named(&added));
        }
        if !removed.is_empty() {
            let _ = write!(what, "; gone: {}", named(&removed));
        }
        let fix = if m.kind == MountKind::PersistentVolume {
            "a named volume or PVC made from the previous image keeps the old files and shadows \
             the new ones: migrate or recreate it, then accept with `roprof check --update`"
        } else {
            "a volatile seeded mount is filled from the image at each start; make sure nothing \
             ships a copy made from the previous image (a pre-filled volume, a baked init \
             image), then accept with `roprof check --update`"
        };
        out.push(Finding {
            severity: Severity::Warn,
            kind: FindingKind::StaleSeed,
            path: Some(m.target.clone()),
            processes: vec![],
            mount: Some(m.target.clone()),
            message: what,
            fix: fix.into(),
        });
    }
}

fn diff_mount(m: &PlannedMount) -> DiffMount {
    DiffMount {
        target: m.target.clone(),
        kind: m.kind,
        options: m.options.tmpfs_options(),
    }
}

/// The mounts only one plan has, and those whose kind or options changed.
#[must_use]
pub fn plan_diff(old: &MountPlan, new: &MountPlan) -> PlanDiff {
    let a: BTreeMap<&CPath, &PlannedMount> = old.mounts.iter().map(|m| (&m.target, m)).collect();
    let b: BTreeMap<&CPath, &PlannedMount> = new.mounts.iter().map(|m| (&m.target, m)).collect();
    let mut d = PlanDiff::default();
    for (t, m) in &a {
        match b.get(t) {
            None => d.removed.push(diff_mount(m)),
            Some(n) if n.kind != m.kind || n.options != m.options => {
                d.changed.push(MountChange {
                    baseline: diff_mount(m),
                    new: diff_mount(n),
                });
            }
            Some(_) => {}
        }
    }
    for (t, n) in &b {
        if !a.contains_key(t) {
            d.added.push(diff_mount(n));
        }
    }
    d
}
