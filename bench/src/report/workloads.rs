//! bench.md's real-server parts: §4 (each server's variants against its
//! untraced baseline and its floor) and §3's default profiles of an idle
//! and a ticking server.

use std::fmt::Write as _;

use super::{f, range, thousands};
use crate::{
    schema::{Bench, Method, Schema, ServerAnswer, Workload, WorkloadVariant},
    template::{self, fill},
};

/// How each variant runs, for the method paragraph (those measured only).
const VARIANT_METHODS: [(WorkloadVariant, &str); 6] = [
    (
        WorkloadVariant::Untraced,
        "**untraced**: `docker run -d --rm IMAGE`",
    ),
    (
        WorkloadVariant::Profiled,
        "**profiled**: `roprof profile --quiet --format docker --window fixed --duration 3600s \
         IMAGE`: roprof traces that very container, so the server and its load generator, both its processes, pay the \
         hooks; stopped with SIGINT after the load",
    ),
    (
        WorkloadVariant::Neighbour,
        "**neighbour**: the untraced server while roprof profiles a different, idle container \
         (`roprof-fixture/writer sleep`), as for the loop of §1",
    ),
    (
        WorkloadVariant::Watch,
        "**watch**: `roprof watch --label roprof-bench.watch=PID -o DIR` on the host, started \
         first; the server's container (`docker run -d --rm --label roprof-bench.watch=PID \
         IMAGE`) is the one it selects and profiles from its start, and the load begins once \
         watch prints `roprof: profiling container`; stopped with SIGINT after the container is \
         removed",
    ),
    (
        WorkloadVariant::Floor,
        "**floor**: the untraced server while the bench's own empty programs are attached to \
         every tracepoint roprof hooks (`sys_exit`, its one syscall hook, BTF-typed as roprof attaches it; the process and \
         cgroup tracepoints; `hrtimer_start`), as in §1: what any program there costs",
    ),
    (
        WorkloadVariant::FloorSysExit,
        "**single-hook floor**: the same with the empty program on `sys_exit` (BTF-typed) alone",
    ),
];

/// §4: each real server's variants, as ratios of medians to its untraced
/// baseline and to its floor.
pub fn section(md: &mut String, b: &Bench) {
    if b.workloads.is_empty() {
        return;
    }
    let _ = writeln!(md, "## 4. Real servers under load\n");
    let present = |v: WorkloadVariant| {
        b.workloads
            .iter()
            .any(|w| w.variants.iter().any(|r| r.variant == v))
    };
    let variants: Vec<&str> = VARIANT_METHODS
        .iter()
        .filter(|(v, _)| present(*v))
        .map(|(_, text)| *text)
        .collect();
    let text = fill(
        template::WORKLOAD,
        &[
            ("reps", b.sizes.reps.to_string()),
            (
                "warmup",
                // V1's redis rows had no warm-up run.
                if b.schema == Schema::V1 {
                    String::new()
                } else {
                    "After one untraced warm-up run per server (not counted), ".into()
                },
            ),
            ("count", variants.len().to_string()),
            ("variants", variants.join("; ")),
        ],
    );
    let _ = writeln!(md, "{text}\n");
    for w in &b.workloads {
        table(md, w);
    }
}

fn table(md: &mut String, w: &Workload) {
    let image = w
        .image
        .clone()
        .unwrap_or_else(|| format!("roprof-fixture/{}", w.name.key()));
    let _ = writeln!(md, "**{}** (`{image}`): {}.\n", w.name.key(), w.load);
    let base = w.median(WorkloadVariant::Untraced);
    let floor = w.median(WorkloadVariant::Floor);
    let ratio = |m: Option<f64>, of: Option<f64>| match (m, of) {
        (Some(m), Some(b)) if b > 0.0 => format!("{:.3}", m / b),
        _ => "?".into(),
    };
    let _ = write!(
        md,
        "| {} | {}, median (min–max) | ratio of medians to untraced |",
        w.name.key(),
        w.unit
    );
    if floor.is_some() {
        let _ = write!(md, " ratio of medians to the floor |");
    }
    let _ = write!(md, "\n| --- | ---: | ---: |");
    if floor.is_some() {
        let _ = write!(md, " ---: |");
    }
    md.push('\n');
    for v in &w.variants {
        let s = v.summary.as_ref();
        let m = s.map(|s| s.median);
        let _ = write!(
            md,
            "| {} | {} ({}–{}) | {} |",
            v.variant.label(),
            thousands(f(m)),
            thousands(f(s.map(|s| s.min))),
            thousands(f(s.map(|s| s.max))),
            ratio(m, base),
        );
        if floor.is_some() {
            let _ = write!(md, " {} |", ratio(m, floor));
        }
        md.push('\n');
    }
    md.push('\n');
}

/// The headline's part: each server's profiled and floor ratios, and §3's
/// differences (empty without those rows).
pub fn headline(b: &Bench) -> String {
    let mut h = String::new();
    for w in &b.workloads {
        let base = w.median(WorkloadVariant::Untraced);
        let r = |v| match (w.median(v), base) {
            (Some(m), Some(b)) if b > 0.0 => format!("{:.3}", m / b),
            _ => "?".into(),
        };
        let _ = write!(
            h,
            "; {} profiled {} (floor {})",
            w.name.key(),
            r(WorkloadVariant::Profiled),
            r(WorkloadVariant::Floor)
        );
    }
    for s in &b.answer.servers {
        let _ = write!(
            h,
            "; {} default profile {} s over run+stop",
            s.server.key(),
            s.difference()
                .map_or_else(|| "?".into(), |d| format!("{d:+.1}"))
        );
    }
    h
}

/// §3's default profiles of other servers, beside nginx's.
pub fn servers(md: &mut String, b: &Bench) {
    let servers = &b.answer.servers;
    if servers.is_empty() {
        return;
    }
    let text = fill(
        template::SERVERS,
        &[
            ("reps", b.sizes.answer_reps.to_string()),
            (
                "probes",
                servers
                    .iter()
                    .map(|s| format!("{}: {}", s.server.key(), s.probe))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ],
    );
    let _ = writeln!(
        md,
        "\n{text}\n\n| server | `roprof profile`, s, median (min–max) | `docker run` + `docker stop`, \
         s, median (min–max) | difference of medians, s | within 4 s | window ended (observed s) |\n\
         | --- | ---: | ---: | ---: | --- | --- |"
    );
    for s in servers {
        let _ = writeln!(
            md,
            "| {} ({}, `{}`) | {} | {} | {} | {} | {} |",
            s.server.key(),
            s.behaviour.key(),
            s.image,
            range(s.profile_secs.as_ref(), 1),
            range(s.run_stop_secs.as_ref(), 2),
            s.difference()
                .map_or_else(|| "?".into(), |d| format!("{d:+.1}")),
            match s.difference() {
                Some(d) if d <= 4.0 => "yes",
                Some(_) => "no",
                None => "?",
            },
            endings(s),
        );
    }
}

/// Each profile's `run.ended` and observed seconds, in run order.
fn endings(s: &ServerAnswer) -> String {
    s.attempts
        .iter()
        .filter(|a| a.method == Method::RoprofProfile)
        .map(|a| {
            format!(
                "{} ({})",
                a.ended.as_deref().unwrap_or("?"),
                a.observed_secs
                    .map_or_else(|| "?".into(), |o| format!("{o:.1}"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AnswerServer, ServerAttempt, Summary, WorkloadResult, WorkloadServer};

    fn summary(median: f64) -> Summary {
        Summary {
            median,
            min: median - 1.0,
            max: median + 1.0,
            n: 1,
        }
    }

    /// The checked-in bench.json with a V2 nginx row and a §3 server row.
    fn v2() -> Bench {
        let mut b: Bench = serde_json::from_str(include_str!("../../../reports/bench.json"))
            .expect("reports/bench.json fits the schema");
        b.schema = Schema::V2;
        let variants = [
            (WorkloadVariant::Untraced, 1000.0),
            (WorkloadVariant::Profiled, 800.0),
            (WorkloadVariant::Watch, 850.0),
            (WorkloadVariant::Floor, 900.0),
        ];
        b.workloads = vec![Workload {
            name: WorkloadServer::Nginx,
            image: Some("roprof-fixture/nginx-wrk:latest".into()),
            load: "wrk".into(),
            unit: "requests/s".into(),
            variants: variants
                .iter()
                .map(|&(variant, x)| WorkloadResult {
                    variant,
                    runs: vec![x],
                    summary: Some(summary(x)),
                })
                .collect(),
        }];
        let attempt = |method, wall_secs| ServerAttempt {
            method,
            wall_secs,
            exit_code: (method == Method::RoprofProfile).then_some(0),
            ended: (method == Method::RoprofProfile).then(|| "settled".into()),
            observed_secs: (method == Method::RoprofProfile).then_some(2.5),
            answered: (method == Method::RunStop).then_some(true),
        };
        b.answer.servers = vec![ServerAnswer {
            server: AnswerServer::Memcached,
            behaviour: AnswerServer::Memcached.behaviour(),
            image: "roprof-fixture/memcached:latest".into(),
            probe: "`version`".into(),
            profile_secs: Some(summary(4.5)),
            run_stop_secs: Some(summary(0.5)),
            attempts: vec![
                attempt(Method::RoprofProfile, 4.5),
                attempt(Method::RunStop, 0.5),
            ],
        }];
        b
    }

    #[test]
    fn each_row_is_read_against_untraced_and_the_floor() {
        let md = super::super::markdown(&v2());
        let row = |label: &str| {
            md.lines()
                .find(|l| l.starts_with(&format!("| {label} |")))
                .unwrap_or_else(|| panic!("no `{label}` row in:\n{md}"))
                .to_owned()
        };
        assert_eq!(
            row(WorkloadVariant::Profiled.label()),
            "| its own container profiled by roprof | 800 (799–801) | 0.800 | 0.889 |"
        );
        assert_eq!(
            row(WorkloadVariant::Floor.label()),
            "| empty programs on roprof's hooks (floor) | 900 (899–901) | 0.900 | 1.000 |"
        );
        assert!(md.contains("| nginx | requests/s, median (min–max) | ratio of medians to untraced | ratio of medians to the floor |"), "{md}");
        assert!(
            md.contains("4 variants"),
            "only the measured variants are described"
        );
        assert!(
            !md.contains("**neighbour**: the untraced server"),
            "an unmeasured variant is not described"
        );
        assert!(
            md.contains(
                "| memcached (idle, `roprof-fixture/memcached:latest`) | 4.5 (3.5–5.5) | \
                 0.50 (-0.50–1.50) | +4.0 | yes | settled (2.5) |"
            ),
            "{md}"
        );
        let h = super::super::headline(&v2());
        assert!(
            h.contains("; nginx profiled 0.800 (floor 0.900); memcached default profile +4.0 s"),
            "{h}"
        );
    }
}
