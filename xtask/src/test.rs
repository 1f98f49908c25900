//! `cargo xtask test`: setup, unit tests, the release build, `dist` (the
//! static binary and the roprof image), then the privileged integration
//! tests (package `roprof-tests`), with a summary.
//!
//! The privileged tests need root and a Docker engine; here they fail rather
//! than skip when either is missing.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{build_roprof, cmd, setup};

/// Tallies from cargo test's `test result:` lines.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.ignored += o.ignored;
    }
}

enum Outcome {
    Ok,
    Failed(String),
    NotRun(&'static str),
}

struct Phase {
    name: &'static str,
    outcome: Outcome,
    counts: Option<Counts>,
    took: Duration,
}

/// Runs every phase and prints the summary; `Ok(false)` when a phase failed
/// or could not run (already reported, so the summary stays the last line).
pub fn test(harness_args: &[String]) -> Result<bool> {
    if !cmd::is_root() {
        bail!(
            "`cargo xtask test` runs the privileged integration tests (BPF + Docker) and \
             must run as root (or with CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE and access \
             to the Docker socket, which this check does not try to detect)"
        );
    }
    let mut phases = Vec::new();

    let started = Instant::now();
    let setup_result = setup::setup();
    phases.push(Phase {
        name: "setup",
        outcome: to_outcome(setup_result.as_ref().err()),
        counts: None,
        took: started.elapsed(),
    });
    if setup_result.is_ok() {
        let started = Instant::now();
        let linted = lint();
        phases.push(Phase {
            name: "fmt + clippy",
            outcome: to_outcome(linted.as_ref().err()),
            counts: None,
            took: started.elapsed(),
        });
        // profiler-ebpf and roprof-bench-ebpf are bpfel target crates: their
        // binaries cannot be built as a host test harness. --no-fail-fast:
        // one failing test binary must not hide the results of the others.
        phases.push(cargo_test_phase(
            "unit tests",
            cmd::cargo().args([
                "test",
                "--no-fail-fast",
                "--workspace",
                "--exclude",
                "roprof-tests",
                "--exclude",
                "profiler-ebpf",
                "--exclude",
                "roprof-bench-ebpf",
            ]),
        ));

        let started = Instant::now();
        let built = build_roprof();
        phases.push(Phase {
            name: "build roprof",
            outcome: to_outcome(built.as_ref().err()),
            counts: None,
            took: started.elapsed(),
        });
        // The static binary and the roprof:latest image, which the install
        // tests run in a container; a failure here fails those tests, not
        // the others.
        let started = Instant::now();
        let dist = crate::dist::dist();
        phases.push(Phase {
            name: "dist",
            outcome: to_outcome(dist.as_ref().err()),
            counts: None,
            took: started.elapsed(),
        });
        match built {
            Ok(bin) => {
                eprintln!(
                    "xtask: privileged integration tests (ROPROF_BIN={})",
                    bin.display()
                );
                phases.push(cargo_test_phase(
                    "privileged tests",
                    cmd::cargo()
                        .args([
                            "test",
                            "--no-fail-fast",
                            "-p",
                            "roprof-tests",
                            "--",
                            "--test-threads=1",
                        ])
                        .args(harness_args)
                        .env("ROPROF_BIN", &bin)
                        .env("ROPROF_PRIVILEGED_TESTS", "1"),
                ));
                print_verifier_budget(&bin);
            }
            Err(_) => phases.push(not_run("privileged tests", "roprof did not build")),
        }
    } else {
        phases.push(not_run("unit tests", "setup failed"));
        phases.push(not_run("build roprof", "setup failed"));
        phases.push(not_run("dist", "setup failed"));
        phases.push(not_run("privileged tests", "setup failed"));
    }

    let failed: Vec<&str> = phases
        .iter()
        .filter(|p| !matches!(p.outcome, Outcome::Ok))
        .map(|p| p.name)
        .collect();
    if !failed.is_empty() {
        eprintln!("xtask: error: failed or not run: {}", failed.join(", "));
    }
    print_summary(&phases);
    Ok(failed.is_empty())
}

fn to_outcome(err: Option<&anyhow::Error>) -> Outcome {
    match err {
        None => Outcome::Ok,
        Some(e) => {
            eprintln!("xtask: error: {e:#}");
            Outcome::Failed(format!("{e:#}"))
        }
    }
}

fn not_run(name: &'static str, why: &'static str) -> Phase {
    Phase {
        name,
        outcome: Outcome::NotRun(why),
        counts: None,
        took: Duration::ZERO,
    }
}

/// Runs a `cargo test` command, passing its stdout through while counting
/// the `test result:` lines.
fn cargo_test_phase(name: &'static str, cmd: &mut Command) -> Phase {
    eprintln!("xtask: {name} ...");
    let started = Instant::now();
    let (outcome, counts) = match run_counting(cmd) {
        Ok((counts, true)) => (Outcome::Ok, Some(counts)),
        Ok((counts, false)) => (Outcome::Failed("cargo test failed".into()), Some(counts)),
        Err(e) => (to_outcome(Some(&e)), None),
    };
    Phase {
        name,
        outcome,
        counts,
        took: started.elapsed(),
    }
}

fn run_counting(cmd: &mut Command) -> Result<(Counts, bool)> {
    let line = cmd::display(cmd);
    eprintln!("  $ {line}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{line}`"))?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().context("child stdout")?;
    for text in BufReader::new(stdout).lines() {
        let text = text.with_context(|| format!("reading the output of `{line}`"))?;
        println!("{text}");
        if let Some(c) = parse_result_line(&text) {
            counts += c;
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{line}`"))?;
    Ok((counts, status.success()))
}

/// Parses libtest's `test result: ok. 3 passed; 0 failed; 1 ignored; …`.
fn parse_result_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut counts = Counts::default();
    for part in rest.split(';') {
        let part = part
            .trim()
            .trim_start_matches("ok. ")
            .trim_start_matches("FAILED. ");
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => counts.passed = n,
            "failed" => counts.failed = n,
            "ignored" => counts.ignored = n,
            _ => {}
        }
    }
    Some(counts)
}

/// `cargo fmt --check`, then clippy with warnings denied over every crate:
/// the workspace (pedantic, from `[workspace.lints]`) and the eBPF crates
/// (clippy's defaults, checked for the host with `panic=abort` in a target
/// directory of their own, since they are `no_std`).
fn lint() -> Result<()> {
    cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))
        .context("formatting differs: run `cargo fmt --all`")?;
    cmd::run(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "profiler-ebpf",
        "--exclude",
        "roprof-bench-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let target = crate::workspace_root().join("target/clippy-ebpf");
    cmd::run(
        cmd::cargo()
            .args([
                "clippy",
                "-p",
                "profiler-ebpf",
                "-p",
                "roprof-bench-ebpf",
                "--",
                "-D",
                "warnings",
            ])
            .env("RUSTFLAGS", "-C panic=abort")
            .env("CARGO_TARGET_DIR", target),
    )
}

/// Prints the instructions the kernel's verifier processed per program (a
/// privileged test fails past 800k of the 1M budget; this shows the margin
/// on every run, so a change that eats into it is seen before E2BIG).
fn print_verifier_budget(bin: &std::path::Path) {
    let out = Command::new(bin)
        .args(["profile", "--quiet", "--format", "json", "--duration", "2s"])
        .args(["roprof-fixture/busybox:latest", "true"])
        .env("ROPROF_TEST_LABEL", "xtask")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let counts = out.ok().and_then(|o| {
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let m = r["stats"]["verified_insns"].as_object()?.clone();
        Some(
            m.iter()
                .map(|(k, v)| format!("{k} {}", v.as_u64().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(", "),
        )
    });
    match counts {
        Some(c) => eprintln!("xtask: verified instructions per eBPF program (budget 1000000): {c}"),
        None => eprintln!("xtask: verified instruction counts unavailable"),
    }
}

fn print_summary(phases: &[Phase]) {
    let mut total = Counts::default();
    println!();
    println!("cargo xtask test summary");
    for p in phases {
        let status = match &p.outcome {
            Outcome::Ok => "ok".to_owned(),
            Outcome::Failed(_) => "FAILED".to_owned(),
            Outcome::NotRun(why) => format!("NOT RUN ({why})"),
        };
        let counts = p.counts.map_or_else(String::new, |c| {
            total += c;
            format!(
                "  [{} passed; {} failed; {} ignored]",
                c.passed, c.failed, c.ignored
            )
        });
        // A phase that failed or never ran without a failing test to show
        // for it (setup, the build, a test binary that did not compile)
        // still counts as one failure, so the closing line never reads
        // "0 failed" for a failed run.
        let failed_without_tests = p.counts.is_none_or(|c| c.failed == 0);
        if !matches!(p.outcome, Outcome::Ok) && failed_without_tests {
            total.failed += 1;
        }
        println!(
            "  {:<18} {:<28} {:>7.1} s{counts}",
            p.name,
            status,
            p.took.as_secs_f64()
        );
        if let Outcome::Failed(why) = &p.outcome
            && p.counts.is_none()
        {
            println!("      {}", why.lines().next().unwrap_or_default());
        }
    }
    println!(
        "summary: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.ignored
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_result_lines() {
        let cases = [
            (
                "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
                Some(Counts {
                    passed: 3,
                    failed: 0,
                    ignored: 1,
                }),
            ),
            (
                "test result: FAILED. 2 passed; 5 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s",
                Some(Counts {
                    passed: 2,
                    failed: 5,
                    ignored: 0,
                }),
            ),
            ("running 3 tests", None),
            ("test foo ... ok", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse_result_line(line), want, "line: {line}");
        }
    }
}
