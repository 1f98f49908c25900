//! Default terminal output: a summary, the mount table and the docker line.

use std::fmt::Write as _;

use tabled::{builder::Builder, settings::Style};

use super::{docker::docker_script_body, escape_bytes};
use crate::model::{MountKind, PlannedMount, Report, size_mi};

/// Short name of a mount kind for tables.
#[must_use]
pub fn kind_name(k: MountKind) -> &'static str {
    match k {
        MountKind::Tmpfs => "tmpfs",
        MountKind::SeededVolume => "seeded volume",
        MountKind::PersistentVolume => "persistent volume",
    }
}

/// `mode=0755 uid=0 gid=0 size=16Mi noexec nosuid nodev`.
#[must_use]
pub fn options_text(m: &PlannedMount) -> String {
    let o = &m.options;
    let mut v = vec![
        format!("mode={:04o}", o.mode),
        format!("uid={}", o.uid),
        format!("gid={}", o.gid),
    ];
    if let Some(s) = o.size_bytes {
        v.push(format!("size={}", size_mi(s)));
    }
    for (on, name) in [
        (o.noexec, "noexec"),
        (o.nosuid, "nosuid"),
        (o.nodev, "nodev"),
    ] {
        if on {
            v.push(name.to_owned());
        }
    }
    v.join(" ")
}

/// The terminal table.
#[must_use]
pub fn table(report: &Report) -> String {
    let mut summary = Builder::default();
    summary.push_record(["image", &report.image.image]);
    summary.push_record(["mode", report.run.mode.as_str()]);
    summary.push_record(["observed paths", &report.paths.len().to_string()]);
    summary.push_record(["mounts", &report.plan.mounts.len().to_string()]);
    summary.push_record(["excluded", &report.plan.excluded.len().to_string()]);
    summary.push_record([
        "losses",
        if report.losses.is_clean() {
            "none"
        } else {
            "YES: the profile is incomplete"
        },
    ]);
    if report.run.incomplete {
        summary.push_record([
            "INCOMPLETE",
            report
                .run
                .incomplete_reason
                .as_deref()
                .unwrap_or("the run was cut short"),
        ]);
    }
    let mut out = summary.build().with(Style::rounded()).to_string();
    out.push_str("\n\n");

    let none = super::no_plan(report);
    if let Some(msg) = &none {
        let _ = writeln!(out, "{}", escape_text(msg));
    } else if report.plan.mounts.is_empty() {
        out.push_str("No writable mounts needed.\n");
    } else {
        let mut mounts = Builder::default();
        mounts.push_record(["target", "kind", "options", "rule", "paths"]);
        for m in &report.plan.mounts {
            mounts.push_record([
                escape_bytes(m.target.as_bytes()),
                kind_name(m.kind).to_owned(),
                options_text(m),
                m.evidence.rule.as_str().to_owned(),
                m.evidence.paths.len().to_string(),
            ]);
        }
        out.push_str(&mounts.build().with(Style::rounded()).to_string());
        out.push('\n');
    }
    if let Some(v) = report.run.verification {
        let _ = writeln!(
            out,
            "verification: {}",
            escape_text(&v.describe(&report.plan))
        );
    }
    for c in &report.run.caveats {
        let _ = writeln!(out, "warning: {}", escape_text(&c.to_string()));
    }
    for w in &report.plan.warnings {
        let _ = writeln!(out, "warning: {}", escape_text(w));
    }
    if none.is_none() {
        out.push('\n');
        out.push_str(&docker_script_body(report));
    }
    out
}

/// Control characters in free text (warnings may quote hostile paths).
fn escape_text(s: &str) -> String {
    escape_bytes(s.as_bytes())
}
