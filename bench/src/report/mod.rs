//! Rendering a [`Bench`]: `bench.md` (the figures, with how each was
//! measured: the method prose is in `templates/`, see [`crate::template`])
//! and a headline for stdout. The chart is in [`crate::chart`].

mod workloads;

use std::fmt::Write as _;

use crate::{
    schema::{
        AttemptExtra, Bench, Diagnosis, Method, MethodResult, Overhead, Phase, RoprofAttempt,
        Schema, Summary, Throughput, Variant,
    },
    template::{self, fill},
    util,
};

/// `12345.6` → `12,346`.
pub fn thousands(x: f64) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "display of a non-negative rate"
    )]
    let n = x.max(0.0).round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count as a float, for ratios and display.
#[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
pub fn float(n: u64) -> f64 {
    n as f64
}

/// A figure that may be missing: `NaN` then, which the output shows.
pub fn f(x: Option<f64>) -> f64 {
    x.unwrap_or(f64::NAN)
}

/// A value that may be missing, as text (`?` when missing).
fn or_unknown<T: ToString>(x: Option<T>) -> String {
    x.map_or_else(|| "?".to_owned(), |v| v.to_string())
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}

/// `median (min–max)` of a summary.
fn range(s: Option<&Summary>, digits: usize) -> String {
    format!(
        "{:.d$} ({:.d$}–{:.d$})",
        f(s.map(|s| s.median)),
        f(s.map(|s| s.min)),
        f(s.map(|s| s.max)),
        d = digits
    )
}

/// A variant's ratio of medians to its baseline.
pub fn ratio(o: &Overhead, v: Variant) -> f64 {
    f(o.variant(v).map(|r| r.ratio_of_medians))
}

/// A method's median wall time.
pub fn median_wall(b: &Bench, m: Method) -> Option<f64> {
    b.answer.method(m)?.wall_secs.map(|s| s.median)
}

fn secs_per_run(b: &Bench, m: Method) -> Option<f64> {
    b.answer.method(m).and_then(MethodResult::secs_per_run)
}

/// One line for stdout.
pub fn headline(b: &Bench) -> String {
    let o = &b.overhead;
    let t = &b.throughput;
    format!(
        "bench: roprof throughput ratio {:.3} of untraced (goal >= 0.95); floor {:.3}; \
         neighbour {:.3} (goal >= 0.99); bpftrace {:.3}; strace (host) {:.3}; churn {} events, {} ringbuf drops, peak RSS {} KiB; \
         nginx answer: roprof --verify {:.1} s, trial-and-error {:.1} s, docker diff {:.1} s; \
         roprof profile {:.1} s vs docker run+stop {:.1} s; iterate {:.1} s per run{} \
         (reports/bench.md)",
        ratio(o, Variant::Roprof),
        ratio(o, Variant::Floor),
        ratio(o, Variant::Neighbour),
        ratio(o, Variant::Bpftrace),
        ratio(o, Variant::HostStrace),
        t.events,
        or_unknown(t.losses.get("ringbuf_drops")),
        t.max_rss_kib_json,
        f(median_wall(b, Method::Roprof)),
        f(median_wall(b, Method::Naive)),
        f(median_wall(b, Method::Diff)),
        f(median_wall(b, Method::RoprofProfile)),
        f(median_wall(b, Method::RunStop)),
        f(secs_per_run(b, Method::RoprofIterate)),
        workloads::headline(b),
    )
}

pub fn markdown(b: &Bench) -> String {
    let mut md = String::new();
    let m = &b.machine;
    let _ = writeln!(md, "# roprof benchmarks\n");
    let quick = if b.quick {
        " in `--quick` mode (small sizes: not meaningful)"
    } else {
        ""
    };
    let intro = fill(
        template::INTRO,
        &[
            ("date", m.date.clone()),
            ("commit", m.commit.clone()),
            ("roprof", m.roprof.clone()),
            ("quick", quick.into()),
        ],
    );
    let _ = writeln!(md, "{intro}\n");
    let machine = fill(
        template::MACHINE,
        &[
            ("summary", m.summary.clone()),
            ("nproc", m.nproc.to_string()),
            ("kernel", m.kernel.clone()),
            ("load_before", format!("{:?}", m.load_before)),
            ("load_after", format!("{:?}", m.load_after)),
            ("other_tracers", m.other_roprof_tracers_before.to_string()),
            (
                "bpf_stats_at_start",
                m.bpf_stats_enabled_at_start
                    .clone()
                    .unwrap_or_else(|| "not recorded".into()),
            ),
        ],
    );
    let _ = writeln!(md, "{machine}\n");
    let _ = writeln!(md, "![Benchmark chart](bench.svg)\n");

    overhead_section(&mut md, &b.overhead, b.schema);
    throughput_section(&mut md, &b.throughput);
    answer_section(&mut md, b);
    workloads::section(&mut md, b);
    md
}

/// The overhead table's rows, in order.
const VARIANT_LABELS: [(Variant, &str); 15] = [
    (Variant::Untraced, "container, untraced (baseline)"),
    (Variant::Roprof, "container, traced by roprof"),
    (
        Variant::Floor,
        "container, empty programs on roprof's hooks (floor)",
    ),
    (
        Variant::FloorSysExit,
        "container, empty program on `sys_exit` only (single-hook floor)",
    ),
    (
        Variant::FloorSysEnter,
        "container, empty program on `sys_enter` only",
    ),
    (
        Variant::FloorTwoHooks,
        "container, empty programs on `sys_enter` and `sys_exit` (two-hook floor)",
    ),
    (
        Variant::Neighbour,
        "container, roprof profiling another container (neighbour)",
    ),
    (Variant::Bpftrace, "container, bpftrace script running"),
    (
        Variant::BpftraceAll,
        "container, idle bpftrace filter on every syscall",
    ),
    (
        Variant::BpftraceHooked,
        "container, idle bpftrace filter on the hooked syscalls only",
    ),
    (Variant::HostUntraced, "host, untraced (strace baseline)"),
    (Variant::HostStrace, "host, `strace -f`"),
    (
        Variant::GuardNeighbour,
        "container, `roprof guard` running on the host (neighbour: not guarded)",
    ),
    (
        Variant::ReadOnlyUntraced,
        "read-only container (`--tmpfs /tmp/b`), untraced (baseline of the next row)",
    ),
    (
        Variant::ReadOnlyGuarded,
        "read-only container, guarded by `roprof guard`",
    ),
];

fn overhead_section(md: &mut String, o: &Overhead, schema: Schema) {
    let _ = writeln!(md, "## 1. Tracing overhead\n");
    let method = fill(
        template::OVERHEAD,
        &[
            ("ops", o.ops.to_string()),
            ("strace_ops", o.strace_ops.to_string()),
            ("reps", o.reps.to_string()),
            ("bpftrace_program", o.bpftrace_program.clone()),
            ("hooked", o.hooked_syscall_tracepoints.to_string()),
        ],
    );
    let _ = writeln!(md, "{method}\n");
    let _ = writeln!(
        md,
        "| variant | ops/s, median (min–max) | ratio of medians to its baseline | per-repetition ratio, median (min–max) |\n| --- | ---: | ---: | ---: |"
    );
    for (v, label) in VARIANT_LABELS {
        let r = o.variant(v);
        // A bench.json from before a variant existed has no row for it.
        if r.is_none() {
            continue;
        }
        let rate = r.map(|r| &r.ops_per_sec);
        let _ = writeln!(
            md,
            "| {label} | {} ({}–{}) | {:.3} | {} |",
            thousands(f(rate.map(|s| s.median))),
            thousands(f(rate.map(|s| s.min))),
            thousands(f(rate.map(|s| s.max))),
            ratio(o, v),
            range(r.and_then(|r| r.paired_ratio.as_ref()), 3),
        );
    }
    overhead_goals(md, o, schema);
    overhead_details(md, o);
}

/// The issues' goals: roprof against untraced and the floor, the
/// neighbour, the floors of one and two syscall hooks (issue 33), and the
/// hook-kind comparison.
fn overhead_goals(md: &mut String, o: &Overhead, schema: Schema) {
    let ratio_roprof = ratio(o, Variant::Roprof);
    let floor = ratio(o, Variant::Floor);
    let goal = 0.95_f64.max(floor - 0.02);
    let neighbour = ratio(o, Variant::Neighbour);
    let met = |ok: bool| if ok { "met" } else { "not met" };
    let (hooks, entries) = if schema.one_syscall_hook() {
        (
            "roprof's hooks (one syscall hook, `sys_exit`; the process and cgroup \
             tracepoints; `hrtimer_start`)",
            "enters BPF once",
        )
    } else {
        (
            "roprof's hooks (`sys_enter` and `sys_exit`; the process and cgroup tracepoints)",
            "enters BPF twice",
        )
    };
    let _ = writeln!(
        md,
        "\n**Goal: roprof ≥ 0.95 of untraced throughput or within 0.02 of the floor, \
         whichever is higher (here {goal:.3}) — {}** (measured {ratio_roprof:.3}; floor \
         {floor:.3}, so roprof's own share of the loss is {own:.3} of untraced).\n\n\
         **Goal: a neighbour keeps ≥ 0.99 of untraced — {}** (measured {neighbour:.3}; \
         {beyond:.3} of untraced beyond the floor of {floor:.3}).{physics}\n\n\
         Per-syscall tracepoints against every-syscall hooks, for a neighbour (same filter, \
         bpftrace): {tp:.3} against {all:.3} of untraced.\n",
        met(ratio_roprof >= goal),
        met(neighbour >= 0.99),
        own = floor - ratio_roprof,
        beyond = floor - neighbour,
        physics = if floor < 0.99 {
            format!(
                " The floor is what any program on {hooks} costs every process on the host \
                 (each syscall takes the kernel's traced slow path and {entries}); a goal \
                 above the floor cannot be met by the hooks this machine allows (fentry, BPF \
                 LSM and kprobes are refused here)."
            )
        } else {
            String::new()
        },
        tp = ratio(o, Variant::BpftraceHooked),
        all = ratio(o, Variant::BpftraceAll),
    );
    let two = ratio(o, Variant::FloorTwoHooks);
    if two.is_finite() {
        let _ = writeln!(
            md,
            "**Goal (issue 33): against the floor of the hooks it uses ({floor:.3}), roprof \
             in its own container within 0.05 — {}** (measured {ratio_roprof:.3}, \
             {d_in:+.3}), **and a neighbour within 0.01 — {}** (measured {neighbour:.3}, \
             {d_nb:+.3}). Floors in this run: one syscall hook alone (`sys_exit`) {one:.3}, \
             two syscall hooks (`sys_enter` + `sys_exit`, roprof's before issue 33) \
             {two:.3}.\n",
            met(ratio_roprof >= floor - 0.05),
            met(neighbour >= floor - 0.01),
            d_in = ratio_roprof - floor,
            d_nb = neighbour - floor,
            one = ratio(o, Variant::FloorSysExit),
        );
    }
}

fn overhead_details(md: &mut String, o: &Overhead) {
    let col = |v: Variant, field: fn(&crate::schema::RunExtra) -> Option<f64>| -> Vec<f64> {
        o.variant(v)
            .map(|r| r.runs.iter().map(|run| f(field(&run.extra))).collect())
            .unwrap_or_default()
    };
    let med = |v: Vec<f64>| util::summary(&v).map_or(f64::NAN, |s| s.median);
    let rss = med(col(Variant::Roprof, |x| x.max_rss_kib.map(float)));
    let _ = writeln!(
        md,
        "End to end, including container start and stop (and for roprof, loading the BPF \
         programs and rendering the report): `docker run` median {:.1} s, roprof median \
         {:.1} s. roprof's peak RSS on these runs (a few dozen distinct paths), from \
         `/usr/bin/time -v`: median {} KiB. bpftrace saw {} of the container's opens in \
         /tmp/b (sum of its `@opens` map over the repetitions, out of {}).\n",
        med(col(Variant::Untraced, |x| x.wall_secs)),
        med(col(Variant::Roprof, |x| x.wall_secs)),
        thousands(rss),
        col(Variant::Bpftrace, |x| x.opens_counted.map(float))
            .iter()
            .sum::<f64>(),
        float(o.ops) * float(o.reps as u64),
    );
    let by_size: Vec<String> = o
        .rss_kib_by_ringbuf_bytes
        .iter()
        .map(|(&bytes, &kib)| {
            format!(
                "{} MiB ring buffer: {} KiB",
                float(bytes) / 1_048_576.0,
                thousands(float(kib))
            )
        })
        .collect();
    let ringbuf = fill(template::RINGBUF, &[("by_size", by_size.join("; "))]);
    let _ = writeln!(md, "{ringbuf}\n");
    if let Diagnosis::Measured(d) = &o.bpf_stats {
        let intro = fill(
            template::BPF_STATS,
            &[
                ("op_ns", format!("{:.0}", d.ns_per_op_total)),
                ("bpf_ns", format!("{:.0}", d.bpf_ns_per_op)),
            ],
        );
        let _ = writeln!(
            md,
            "{intro}\n\n| program | runs | avg ns per run | runs per operation |\n| --- | ---: | ---: | ---: |"
        );
        for (name, p) in &d.programs {
            let _ = writeln!(
                md,
                "| `{name}` | {} | {:.0} | {:.2} |",
                thousands(float(p.run_cnt)),
                p.avg_ns,
                p.runs_per_op,
            );
        }
        let _ = writeln!(md, "\n({})\n", d.note);
    }
}

fn throughput_section(md: &mut String, t: &Throughput) {
    let _ = writeln!(md, "## 2. Event throughput and loss\n");
    let method = fill(
        template::THROUGHPUT,
        &[
            ("tmpfs", t.tmpfs.clone()),
            ("ops", t.ops.to_string()),
            ("distinct", t.distinct.to_string()),
            ("dir", t.dir.clone()),
        ],
    );
    let _ = writeln!(md, "{method}\n");
    let _ = writeln!(md, "| measure | value |\n| --- | ---: |");
    for (k, v) in throughput_rows(t) {
        let _ = writeln!(md, "| {k} | {v} |");
    }
    let parts: Vec<String> = t
        .maps
        .iter()
        .filter(|&(_, &v)| v >= 65536)
        .map(|(k, &v)| format!("{k} {}", mib(float(v))))
        .collect();
    let _ = writeln!(
        md,
        "\nMaps at the peak sample (those of 64 KiB or more): {}.\n",
        parts.join(", ")
    );
}

fn throughput_rows(t: &Throughput) -> Vec<(&'static str, String)> {
    let lost: u64 = t.losses.values().sum();
    vec![
        (
            "observed seconds (report `run.observed_secs`)",
            format!("{:.2}", t.observed_secs),
        ),
        (
            "workload rate inside the container (CHURN line)",
            format!("{} ops/s", thousands(t.workload_ops_per_sec)),
        ),
        (
            "events received by userspace (`stats.events`)",
            thousands(float(t.events)),
        ),
        (
            "**events per second** (`stats.events` / observed seconds)",
            thousands(t.events_per_sec),
        ),
        (
            "operations deduplicated in the kernel (`stats.deduped`)",
            thousands(float(t.deduped)),
        ),
        (
            "kernel-handled per second ((events + deduped) / observed s)",
            thousands(t.kernel_handled_per_sec),
        ),
        (
            "paths in the report",
            thousands(float(t.paths_in_report as u64)),
        ),
        (
            "**ring-buffer drops** (`losses.ringbuf_drops`, goal 0)",
            or_unknown(t.losses.get("ringbuf_drops")),
        ),
        ("all loss counters summed (`losses.*`)", lost.to_string()),
        ("`stats.dedup_full`", or_unknown(t.stats.dedup_full)),
        ("roprof exit code", t.exit_code.to_string()),
        (
            "**kernel map memory** (sum of `bytes_memlock`, peak sample)",
            mib(float(t.map_memlock_bytes)),
        ),
        (
            "**roprof peak RSS**, `--format json` (goal ≤ 50 MB)",
            format!("{} KiB", thousands(float(t.max_rss_kib_json))),
        ),
        (
            "roprof peak RSS, `--format docker`",
            format!("{} KiB", thousands(float(t.max_rss_kib_docker))),
        ),
        ("JSON report size", mib(float(t.json_report_bytes as u64))),
        (
            "roprof CPU time (user + sys)",
            format!(
                "{:.2} s ({:.2} + {:.2})",
                t.roprof_cpu_secs, t.roprof_user_secs, t.roprof_sys_secs
            ),
        ),
        (
            "other roprof sessions' syscall-hook programs seen",
            t.other_roprof_tracers.to_string(),
        ),
    ]
}

/// The time-to-answer table's rows, in order.
const METHOD_LABELS: [(Method, &str); 6] = [
    (Method::Roprof, "roprof `profile --verify`"),
    (Method::RoprofProfile, "roprof `profile`"),
    (Method::RoprofIterate, "roprof `profile --mode iterate`"),
    (Method::RunStop, "`docker run` + `docker stop` (no answer)"),
    (Method::Naive, "trial and error (naive loop)"),
    (Method::Diff, "`docker diff`"),
];

/// The roprof part of a method's last attempt.
fn last_roprof(b: &Bench, m: Method) -> Option<&RoprofAttempt> {
    match &b.answer.method(m)?.attempts.last()?.extra {
        AttemptExtra::Roprof(r) => Some(r),
        _ => None,
    }
}

fn answer_section(md: &mut String, b: &Bench) {
    let a = &b.answer;
    let _ = writeln!(md, "## 3. Time and runs to a working read-only nginx\n");
    let method = fill(
        template::ANSWER,
        &[
            ("image", a.image.clone()),
            ("reps", a.reps.to_string()),
            ("timeout", a.start_timeout_secs.to_string()),
            ("duration", a.roprof_duration.clone()),
            ("max_rounds", a.max_rounds.to_string()),
        ],
    );
    let _ = writeln!(md, "{method}\n");
    let _ = writeln!(
        md,
        "| method | wall time, s, median (min–max) | container runs | works | answer (last repetition) |\n| --- | ---: | ---: | --- | --- |"
    );
    for (m, label) in METHOD_LABELS {
        let r = a.method(m);
        let join = |xs: Vec<String>| xs.join(", ");
        let answer = r
            .and_then(|r| r.attempts.last())
            .map(|x| {
                shlex::try_join(x.answer.iter().map(String::as_str))
                    .unwrap_or_else(|_| x.answer.join(" "))
            })
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | `{}` |",
            range(r.and_then(|r| r.wall_secs.as_ref()), 1),
            join(r.map_or_else(Vec::new, |r| {
                r.runs.iter().map(ToString::to_string).collect()
            })),
            join(r.map_or_else(Vec::new, |r| {
                r.works.iter().map(ToString::to_string).collect()
            })),
            answer.replace('|', "\\|"),
        );
    }
    phases_section(md, b);
    if let Some(last) = last_roprof(b, Method::Roprof) {
        let _ = writeln!(
            md,
            "\nWhere roprof's time goes (its progress lines on stderr, seconds since start, \
             last repetition):\n\n```"
        );
        for (secs, line) in &last.progress {
            let _ = writeln!(md, "{secs:6.2}  {line}");
        }
        let _ = writeln!(md, "```");
    }
    let _ = writeln!(md, "\n{}", fill(template::CAVEAT, &[]));
    workloads::servers(md, b);
    md.push('\n');
}

/// The goals of issue 16 side by side, and where roprof's time goes
/// (`stats.phases` of the last repetition of each roprof method).
fn phases_section(md: &mut String, b: &Bench) {
    if let (Some(p), Some(floor)) = (
        median_wall(b, Method::RoprofProfile),
        median_wall(b, Method::RunStop),
    ) {
        let _ = writeln!(
            md,
            "\n`roprof profile` costs {:.1} s more than `docker run` + `docker stop` (goal: at \
             most 4 s); `profile --verify` with a probe takes {} s (goal: at most 10 s); \
             `--mode iterate` takes {} s per container run (goal: at most 3 s).",
            p - floor,
            median_wall(b, Method::Roprof).map_or_else(|| "?".into(), |v| format!("{v:.1}")),
            secs_per_run(b, Method::RoprofIterate)
                .map_or_else(|| "?".into(), |v| format!("{v:.1}")),
        );
    }
    let _ = writeln!(
        md,
        "\nWhere roprof's time goes (`stats.phases` of the last repetition; the eBPF load runs \
         in the background during inspect, create and listing, and once per process; a \
         round's phases are those of its read-only run):\n\n\
         | run | phases, s |\n| --- | --- |"
    );
    let show = |phases: Option<&Vec<Phase>>| {
        phases
            .map(|ps| {
                ps.iter()
                    .map(|p| format!("{} {:.2}", p.phase, p.secs))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    for m in [Method::RoprofProfile, Method::Roprof, Method::RoprofIterate] {
        let Some(x) = last_roprof(b, m) else {
            continue;
        };
        let key = m.key();
        let _ = writeln!(
            md,
            "| {key} (observed run; ended: {}; eBPF load {:.2} s) | {} |",
            x.ended.as_deref().unwrap_or("?"),
            x.bpf_load_secs.unwrap_or(0.0),
            show(x.phases.as_ref())
        );
        for (i, r) in x.rounds.iter().flatten().enumerate() {
            let _ = writeln!(
                md,
                "| {key} round {} ({}, ended: {}) | {} |",
                i + 1,
                r.kind.as_deref().unwrap_or("?"),
                r.ended.as_deref().unwrap_or("?"),
                show(r.phases.as_ref())
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked_in() -> Bench {
        serde_json::from_str(include_str!("../../../reports/bench.json"))
            .unwrap_or_else(|e| panic!("reports/bench.json should fit the typed schema: {e}"))
    }

    /// The table rows of a bench.md.
    fn rows(md: &str) -> Vec<&str> {
        md.lines().filter(|l| l.starts_with('|')).collect()
    }

    #[test]
    fn renders_the_checked_in_rows() {
        let md = markdown(&checked_in());
        let expected = include_str!("../../../reports/bench.md");
        assert!(rows(&md).len() > 40, "every table should have its rows");
        assert_eq!(
            rows(&md),
            rows(expected),
            "rendering reports/bench.json should give reports/bench.md's rows"
        );
        assert_eq!(
            md, expected,
            "reports/bench.md should be what `cargo xtask bench --render` makes of \
             reports/bench.json"
        );
    }

    #[test]
    fn every_placeholder_is_filled() {
        let md = markdown(&checked_in());
        for (name, t) in template::ALL {
            assert!(
                !template::placeholders(t).is_empty() || name == "caveat",
                "templates/{name}.md has no figures?"
            );
            for p in template::placeholders(t) {
                let p = format!("{{{p}}}");
                assert!(!md.contains(&p), "templates/{name}.md: {p} was not filled");
            }
        }
    }

    #[test]
    fn headline_names_the_figures() {
        let b = checked_in();
        let h = headline(&b);
        let want = format!(
            "bench: roprof throughput ratio {:.3} of untraced",
            ratio(&b.overhead, Variant::Roprof)
        );
        assert!(h.starts_with(&want), "{h}");
        assert!(h.contains("churn 100004 events, 0 ringbuf drops"), "{h}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234.6), "1,235");
        assert_eq!(thousands(1_000_000.0), "1,000,000");
    }
}
