//! Markdown for a pull-request reviewer: summary, mount table, tree of
//! written paths, warnings and losses. Paths are escaped so that pipes,
//! backticks, HTML and newlines cannot break (or inject into) the page.

use std::{collections::BTreeSet, fmt::Write as _};

use super::{
    docker::docker_command,
    escape_bytes,
    table::{kind_name, options_text},
};
use crate::model::{CPath, Health, Op, PathObservation, Report, RunMode, errno};

/// "What this run covered": how many paths were first written during each
/// part of the run, whether the probe answered and the exercise ran, and
/// what the container listened on and accepted. Nothing when the report
/// knows none of it (older reports, `watch`).
fn covered(s: &mut String, report: &Report) {
    let firsts = crate::model::first_writes(&report.paths);
    let run = &report.run;
    if firsts.is_empty() && run.served.is_none() {
        return;
    }
    s.push_str("\n## What this run covered\n\n");
    if !firsts.is_empty() {
        s.push_str("| while | paths first written |\n| --- | ---: |\n");
        for (d, n) in &firsts {
            let _ = writeln!(s, "| {} | {n} |", d.as_str());
        }
        s.push('\n');
    }
    let observe = report.observe.as_ref();
    let probe = match (observe.and_then(|o| o.probe.as_deref()), run.health) {
        (None, _) => "none (`--probe` not given)".to_owned(),
        (Some(p), Some(Health::Healthy)) => format!("{} answered", escape(p.as_bytes())),
        (Some(p), _) => format!("{} **never answered**", escape(p.as_bytes())),
    };
    let _ = writeln!(s, "- probe: {probe}");
    let exercise = match (
        observe.and_then(|o| o.exercise.as_deref()),
        run.exercise_exit,
    ) {
        (None, _) => "none (`--exercise` not given)".to_owned(),
        (Some(_), Some(c)) => format!("ran, exited {c}"),
        (Some(_), None) => "did not finish".to_owned(),
    };
    let _ = writeln!(s, "- exercise: {exercise}");
    if let Some(sv) = &run.served {
        let ports = if sv.listened.is_empty() {
            "nothing".to_owned()
        } else {
            escape(sv.listened.join(", ").as_bytes())
        };
        let _ = writeln!(
            s,
            "- requests: listened on {ports}, accepted {} connection(s)",
            sv.accepted
        );
    }
}

/// Escapes text for Markdown: control and non-UTF-8 bytes become `\xNN`,
/// HTML specials become entities and Markdown specials are backslashed.
#[must_use]
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for c in escape_bytes(bytes).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '`' | '*' | '_' | '[' | ']' | '\\' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn esc(p: &CPath) -> String {
    escape(p.as_bytes())
}

/// The Markdown report.
#[must_use]
pub fn markdown(report: &Report) -> String {
    let mut s = String::new();
    let p = &report.plan;
    let _ = writeln!(
        s,
        "# roprof: writable paths of {}\n",
        escape(report.image.image.as_bytes())
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| image | {} |", escape(report.image.image.as_bytes()));
    let mode = report.run.mode.as_str().as_bytes();
    let _ = writeln!(s, "| mode | {} |", escape(mode));
    // Why the window ended, not how long it lasted: two profiles of the
    // same image must render the same (durations stay in report.json).
    if let Some(ended) = report.run.ended {
        let _ = writeln!(s, "| window ended | {} |", ended.as_str());
    }
    let _ = writeln!(s, "| mounts | {} |", p.mounts.len());
    let _ = writeln!(s, "| excluded paths | {} |", p.excluded.len());
    let losses = if report.losses.is_clean() {
        "none".to_owned()
    } else {
        "**yes: the profile is incomplete**".to_owned()
    };
    let _ = writeln!(s, "| losses | {losses} |");
    if report.run.incomplete {
        let why = report
            .run
            .incomplete_reason
            .as_deref()
            .unwrap_or("the run was cut short");
        let _ = writeln!(s, "| **incomplete** | {} |", escape(why.as_bytes()));
    }
    if let Some(h) = &report.run.health {
        let _ = writeln!(s, "| health | {} |", h.as_str());
    }
    let verified = report.run.read_only || report.run.mode == RunMode::Verify;
    if verified {
        let status = match (report.run.exit_code, report.run.health) {
            (_, Some(Health::Unhealthy)) => "failed (unhealthy)",
            (Some(c), _) if c != 0 => "failed (non-zero exit)",
            _ => "ran with --read-only",
        };
        let _ = writeln!(s, "| verified | {status} |");
    }
    if let Some(v) = report.run.verification {
        let _ = writeln!(
            s,
            "| verification | {} |",
            escape(v.describe(&report.plan).as_bytes())
        );
    }
    for n in &report.run.notes {
        let _ = writeln!(s, "\n> {}", escape(n.as_bytes()));
    }

    mounts(&mut s, report);
    covered(&mut s, report);

    s.push_str("\n## Written paths\n\n");
    tree(&mut s, &report.paths);

    if !p.warnings.is_empty() || !report.run.caveats.is_empty() {
        s.push_str("\n## Warnings\n\n");
        for c in &report.run.caveats {
            let _ = writeln!(s, "- **{}**", escape(c.to_string().as_bytes()));
        }
        for w in &p.warnings {
            let _ = writeln!(s, "- {}", escape(w.as_bytes()));
        }
    }
    if !p.excluded.is_empty() {
        s.push_str("\n## Excluded\n\n");
        for x in &p.excluded {
            let _ = writeln!(s, "- {}: {}", esc(&x.path), escape(x.reason.as_bytes()));
        }
    }
    if !report.losses.is_clean() {
        let l = &report.losses;
        s.push_str("\n## Losses\n\n");
        for (name, n) in [
            ("ring buffer drops", l.ringbuf_drops),
            ("truncated paths", l.truncated_paths),
            ("traced map full", l.traced_full),
            ("files map full", l.files_full),
            ("read errors", l.read_errors),
            ("failed tail calls", l.tail_call_fails),
        ] {
            if n > 0 {
                let _ = writeln!(s, "- {name}: {n}");
            }
        }
    }
    s
}

/// The Mounts section: the table and the docker line, or why there is no
/// plan (the same words as the table's, see [`super::no_plan`]).
fn mounts(s: &mut String, report: &Report) {
    s.push_str("\n## Mounts\n\n");
    let none = super::no_plan(report);
    if let Some(msg) = &none {
        let _ = writeln!(s, "**{}**", escape(msg.as_bytes()));
    } else if report.plan.mounts.is_empty() {
        s.push_str("No writable mounts needed.\n");
    } else {
        s.push_str("| target | kind | options | why |\n|---|---|---|---|\n");
        for m in &report.plan.mounts {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {}: {} |",
                esc(&m.target),
                kind_name(m.kind),
                escape(options_text(m).as_bytes()),
                escape(m.evidence.rule.as_str().as_bytes()),
                escape(m.evidence.reason.as_bytes())
            );
        }
    }
    if none.is_none() {
        let line = format!(
            "{}{}",
            super::env::export_comment(&report.run_options),
            docker_command(report)
        );
        let fence = "`".repeat(longest_backtick_run(&line).max(2) + 1);
        let _ = writeln!(s, "\n{fence}sh\n{line}\n{fence}");
    }
}

/// A code fence must be longer than any run of backticks inside it.
fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// Whether an operation belongs under "Written paths": the writes, and
/// fsync (data made durable), not the reads an executable mapping, an exec
/// or an `access(W_OK)` probe are.
fn written(op: Op) -> bool {
    op.is_write() || op == Op::Fsync
}

/// Indented tree of the written paths with their write ops and results;
/// EROFS failures are in bold.
fn tree(s: &mut String, paths: &[PathObservation]) {
    let mut sorted: Vec<&PathObservation> = paths
        .iter()
        .filter(|o| o.ops.keys().any(|op| written(*op)))
        .collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    if sorted.is_empty() {
        s.push_str("No write observed.\n");
        return;
    }
    let mut shown: BTreeSet<CPath> = BTreeSet::new();
    for o in sorted {
        let comps: Vec<&[u8]> = o.path.components().collect();
        let mut cur = CPath::from("/");
        for (depth, c) in comps.iter().enumerate() {
            cur = cur.join(c);
            if !shown.insert(cur.clone()) {
                continue;
            }
            let indent = "  ".repeat(depth);
            let name = escape(c);
            if depth + 1 < comps.len() {
                let _ = writeln!(s, "{indent}- {name}/");
                continue;
            }
            let ops: Vec<String> = o
                .ops
                .iter()
                .filter(|(op, _)| written(**op))
                .map(|(op, st)| {
                    let mut t = format!("{} ok={}", op_name(*op), st.ok);
                    for (e, n) in &st.errors {
                        if e == errno::EROFS {
                            let _ = write!(t, " **EROFS={n}**");
                        } else {
                            let _ = write!(t, " {}={n}", escape(e.as_bytes()));
                        }
                    }
                    t
                })
                .collect();
            let _ = writeln!(s, "{indent}- {name}: {}", ops.join(", "));
        }
    }
}

/// The operation's name as in the JSON report (`snake_case`).
fn op_name(op: Op) -> String {
    serde_json::to_value(op)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{op:?}"))
}
