//! `cargo xtask reports`: real server images, built locally from Debian
//! packages (the on-demand fixtures), profiled end to end with
//! `roprof profile --verify`; the results are kept under `reports/<name>/`
//! with a summary in `reports/README.md`.
//!
//! `--check` profiles the images again into the target directory and
//! compares only the mount plans (targets, kinds, options other than size)
//! with the checked-in `report.json` files: timings, pids, container ids and
//! counts change from run to run, the plan must not. It also fails when a
//! plan no longer verifies read-only.
//!
//! All traffic stays on 127.0.0.1 (published ports) or goes through
//! `docker exec`.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{build_roprof, cmd, images, setup, target_dir, workspace_root};

/// How long roprof observes each image (`--duration`).
const DURATION: &str = "10s";

/// How a report's client talks to the server while roprof observes it.
enum Client {
    /// `--probe URL`: roprof polls it until it answers.
    Probe(&'static str),
    /// `--exercise 'bash tests/fixtures/<name>/exercise.sh ARG'` (run from
    /// the workspace root): a loopback client over bash's `/dev/tcp`, or
    /// `docker exec` of the image's own client. The scripts retry until the
    /// server answers, since they start with the container.
    Exercise {
        /// The script's argument: the published host port, or the image.
        arg: &'static str,
    },
}

/// One image profiled for the reports.
struct Subject {
    /// The fixture (`tests/fixtures/<name>/`), which is also the directory
    /// under `reports/`.
    name: &'static str,
    /// `-p` for `roprof profile`: always on 127.0.0.1.
    publish: Option<&'static str>,
    client: Client,
    /// What the client does, for the summary.
    client_summary: &'static str,
    /// What the image needed to run in the foreground as PID 1 and be
    /// reached, for the README.
    needs: &'static str,
}

/// The images, in the order of the summary table.
const SUBJECTS: &[Subject] = &[
    Subject {
        name: "nginx",
        publish: Some("127.0.0.1:18090:80"),
        client: Client::Probe("http://127.0.0.1:18090/"),
        client_summary: "HTTP probe of `/`",
        needs: "Debian's `nginx-light` as the test fixture has it: `nginx -g 'daemon off;'`, \
                `STOPSIGNAL SIGQUIT` (graceful stop). Port 80 published on 127.0.0.1.",
    },
    Subject {
        name: "apache2",
        publish: Some("127.0.0.1:18091:80"),
        client: Client::Probe("http://127.0.0.1:18091/"),
        client_summary: "HTTP probe of `/`",
        needs: "Debian's `apache2` with its default site. The command does what \
                `apache2ctl -D FOREGROUND` does (source `/etc/apache2/envvars`, create \
                `/run/apache2` and `/var/lock/apache2`) but `exec`s apache2, so that apache2 \
                is PID 1 and gets `STOPSIGNAL SIGWINCH` (graceful stop); apache2ctl would \
                leave a shell as PID 1 that ignores it. Port 80 published on 127.0.0.1.",
    },
    Subject {
        name: "redis",
        publish: Some("127.0.0.1:16379:6379"),
        client: Client::Exercise { arg: "16379" },
        client_summary: "`PING`, `SET`, `GET`, `SAVE` over bash's `/dev/tcp`",
        needs: "Debian's `redis-server` with Debian's `/etc/redis/redis.conf` (pid file in \
                `/run/redis`, log in `/var/log/redis`, snapshots in `/var/lib/redis`), run \
                as user `redis` with `--daemonize no --supervised no` (foreground, PID 1), \
                `--bind 0.0.0.0 --protected-mode no` (reachable through the published port). \
                The exercise's `SAVE` makes redis write its snapshot.",
    },
    Subject {
        name: "memcached",
        publish: Some("127.0.0.1:21211:11211"),
        client: Client::Exercise { arg: "21211" },
        client_summary: "`set`, `get` over bash's `/dev/tcp`",
        needs: "Debian's `memcached`, `memcached -u memcache -l 0.0.0.0 -p 11211 -m 64` \
                (foreground, drops to user `memcache`). Port 11211 published on 127.0.0.1.",
    },
    Subject {
        name: "postgresql",
        publish: None,
        client: Client::Exercise {
            arg: "roprof-fixture/postgresql:latest",
        },
        client_summary: "`docker exec … psql`: `CREATE TABLE`, `INSERT`, `SELECT`, `CHECKPOINT`",
        needs: "Debian's `postgresql-15` with the cluster its package creates at build time \
                (`/var/lib/postgresql/15/main`, config in `/etc/postgresql/15/main`), run as \
                `postgres -D … -c config_file=…` as user `postgres` (foreground, PID 1; \
                `pg_ctlcluster` would daemonize), `STOPSIGNAL SIGINT` (fast shutdown). The \
                client is the image's own `psql` through `docker exec` over the Unix socket \
                (peer authentication), so no port is published.",
    },
];

fn subject(name: &str) -> Result<&'static Subject> {
    SUBJECTS.iter().find(|s| s.name == name).with_context(|| {
        let known: Vec<_> = SUBJECTS.iter().map(|s| s.name).collect();
        format!("no report image `{name}` (known: {})", known.join(", "))
    })
}

fn reports_dir() -> PathBuf {
    workspace_root().join("reports")
}

/// `cargo xtask reports [--check] [NAMES]`. `Ok(false)` when a check found
/// a plan that differs (already printed).
pub fn reports(check: bool, names: &[String]) -> Result<bool> {
    if !cmd::is_root() {
        bail!("`cargo xtask reports` runs roprof (BPF + Docker) and must run as root");
    }
    let subjects: Vec<&'static Subject> = if names.is_empty() {
        SUBJECTS.iter().collect()
    } else {
        names.iter().map(|n| subject(n)).collect::<Result<_>>()?
    };
    setup::setup()?;
    let fixtures: Vec<String> = subjects.iter().map(|s| s.name.to_owned()).collect();
    images::build(&fixtures, false)?;
    let roprof = build_roprof()?;
    if check {
        check_all(&roprof, &subjects)
    } else {
        generate(&roprof, &subjects)?;
        Ok(true)
    }
}

/// What one `roprof profile --verify` run gave.
struct Outcome {
    /// roprof's exit code (`None`: killed by a signal).
    exit_code: Option<i32>,
    secs: f64,
    /// The saved report, when roprof wrote one.
    report: Option<Value>,
}

/// Runs `roprof profile --verify -o OUT_DIR` on the subject's image; roprof's
/// progress goes to stderr, its table (also saved as `table.txt`) is dropped.
fn profile(roprof: &Path, s: &Subject, out_dir: &Path) -> Result<Outcome> {
    if out_dir.exists() {
        fs::remove_dir_all(out_dir).with_context(|| format!("removing {}", out_dir.display()))?;
    }
    let mut c = Command::new(roprof);
    // The exercise scripts are named relative to the workspace root.
    c.current_dir(workspace_root());
    c.args(profile_args(s)).arg("-o").arg(out_dir);
    c.arg(images::image_name(s.name));
    eprintln!("xtask: profiling {} ...", s.name);
    eprintln!("  $ {}", cmd::display(&c));
    let started = Instant::now();
    let status = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("could not start {}", roprof.display()))?;
    let secs = started.elapsed().as_secs_f64();
    let path = out_dir.join("report.json");
    let report = if path.is_file() {
        Some(read_json(&path)?)
    } else {
        None
    };
    eprintln!("xtask: {}: roprof {status} after {secs:.0}s", s.name);
    Ok(Outcome {
        exit_code: status.code(),
        secs,
        report,
    })
}

/// The `roprof profile` options for a subject, before `-o` and the image.
fn profile_args(s: &Subject) -> Vec<String> {
    let mut args: Vec<String> = ["profile", "--verify", "--duration", DURATION]
        .map(String::from)
        .to_vec();
    if let Some(p) = s.publish {
        args.extend(["-p".into(), p.into()]);
    }
    match s.client {
        Client::Probe(url) => args.extend(["--probe".into(), url.into()]),
        Client::Exercise { arg } => args.extend([
            "--exercise".into(),
            format!("bash tests/fixtures/{}/exercise.sh {arg}", s.name),
        ]),
    }
    args
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn generate(roprof: &Path, subjects: &[&'static Subject]) -> Result<()> {
    let staging = target_dir()?.join("reports-new");
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for s in subjects {
        let fresh = staging.join(s.name);
        let outcome = profile(roprof, s, &fresh)?;
        if outcome.report.is_some() {
            let dest = reports_dir().join(s.name);
            if dest.exists() {
                fs::remove_dir_all(&dest)
                    .with_context(|| format!("removing {}", dest.display()))?;
            }
            fs::create_dir_all(reports_dir())?;
            fs::rename(&fresh, &dest)
                .with_context(|| format!("moving {} to {}", fresh.display(), dest.display()))?;
        } else {
            // The checked-in report stays; the summary says this run failed.
            errors.push(s.name);
        }
        rows.push(Row::new(s, &outcome));
    }
    // A partial regeneration (`cargo xtask reports redis`) keeps the other
    // rows: they are read back from the checked-in reports.
    for s in SUBJECTS {
        if !subjects.iter().any(|w| w.name == s.name) {
            rows.push(Row::from_saved(s)?);
        }
    }
    rows.sort_by_key(|r| SUBJECTS.iter().position(|s| s.name == r.subject.name));
    let readme = reports_dir().join("README.md");
    fs::write(&readme, render_readme(&rows))
        .with_context(|| format!("writing {}", readme.display()))?;
    eprintln!("xtask: wrote {}", readme.display());
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| !r.verified)
        .map(|r| r.subject.name)
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "xtask: not verified (see reports/README.md): {}",
            failed.join(", ")
        );
    }
    if !errors.is_empty() {
        bail!(
            "roprof failed without a report for {} (see its error above); their previous \
             reports were left in place",
            errors.join(", ")
        );
    }
    Ok(())
}

/// One line of the summary table.
struct Row {
    subject: &'static Subject,
    /// `target kind` per planned mount.
    mounts: Vec<String>,
    verified: bool,
    /// Why not, when not verified.
    why_not: Option<String>,
    /// The repairs the closed loop made before the plan verified.
    repairs: Vec<String>,
    client_ok: Option<bool>,
    container_runs: u32,
    secs: Option<f64>,
    roprof_version: Option<String>,
}

impl Row {
    fn new(s: &'static Subject, o: &Outcome) -> Self {
        let Some(report) = &o.report else {
            return Self {
                subject: s,
                mounts: vec![],
                verified: false,
                why_not: Some(format!(
                    "roprof failed ({}) and wrote no report (the linked report is from an \
                     earlier run)",
                    exit_text(o.exit_code)
                )),
                repairs: vec![],
                client_ok: None,
                container_runs: 0,
                secs: Some(o.secs),
                roprof_version: None,
            };
        };
        let notes = notes(report);
        let rounds = report["rounds"].as_array().cloned().unwrap_or_default();
        let verified = o.exit_code == Some(0) && has_verified_note(report);
        let why_not = (!verified).then(|| why_not_verified(&rounds, &notes, o.exit_code));
        // Every round of the closed loop is a container run; a report
        // without rounds had (at most) the one verification run.
        let read_only_runs = if rounds.is_empty() {
            u32::from(notes.iter().any(|n| n.starts_with("verif")))
        } else {
            u32::try_from(rounds.len()).unwrap_or(u32::MAX)
        };
        let repairs: Vec<String> = rounds
            .iter()
            .filter_map(|r| r["action"].as_str())
            .filter(|a| a.starts_with("repaired"))
            .map(String::from)
            .collect();
        Self {
            subject: s,
            mounts: plan_lines(report, false),
            verified,
            why_not,
            repairs,
            client_ok: client_ok(s, report, &notes),
            container_runs: 1 + read_only_runs,
            secs: Some(o.secs),
            roprof_version: report["roprof_version"].as_str().map(String::from),
        }
    }

    /// A row for a subject that was not profiled this time, from its saved
    /// report (exit code 0 assumed when it has the "verified" note; the wall
    /// time is not in the report).
    fn from_saved(s: &'static Subject) -> Result<Self> {
        let path = reports_dir().join(s.name).join("report.json");
        let report = read_json(&path)?;
        let verified = has_verified_note(&report);
        let outcome = Outcome {
            exit_code: Some(if verified { 0 } else { 4 }),
            secs: 0.0,
            report: Some(report),
        };
        Ok(Self {
            secs: None,
            ..Self::new(s, &outcome)
        })
    }
}

/// roprof's verdict as the report records it: a note starting with
/// "verified" ("verified: …" from a single verification run, "verified after
/// N read-only run(s)" from the verify-and-repair loop).
fn has_verified_note(report: &Value) -> bool {
    notes(report).iter().any(|n| n.starts_with("verified"))
}

/// Why a plan did not verify: the differences and the verdict of the last
/// read-only round, or the older single-run note, or roprof's exit code.
fn why_not_verified(rounds: &[Value], notes: &[String], exit_code: Option<i32>) -> String {
    if let Some(last) = rounds.last() {
        let mut parts: Vec<String> = last["differences"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(action) = last["action"].as_str().filter(|a| !a.is_empty()) {
            parts.push(action.to_owned());
        }
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    notes
        .iter()
        .find_map(|n| n.strip_prefix("verification failed: "))
        .map_or_else(|| format!("roprof {}", exit_text(exit_code)), String::from)
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(|| "killed by a signal".into(), |c| format!("exit {c}"))
}

fn notes(report: &Value) -> Vec<String> {
    report["run"]["notes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the client got its answers in the profiling run (the read-only
/// run's own client result shows up as a verification difference).
fn client_ok(s: &Subject, report: &Value, notes: &[String]) -> Option<bool> {
    match s.client {
        Client::Probe(_) => report["run"]["health"].as_str().map(|h| h == "healthy"),
        Client::Exercise { .. } => Some(
            notes
                .iter()
                .any(|n| n == "exercise finished: exit status: 0"),
        ),
    }
}

/// The plan, one line per mount, sorted by target: `TARGET KIND` and, with
/// `options`, every mount option except the size (`mode=0755 uid=0 …`, flags
/// by name when set).
fn plan_lines(report: &Value, options: bool) -> Vec<String> {
    let mounts = report["plan"]["mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut lines: Vec<String> = mounts
        .iter()
        .map(|m| {
            let target = match &m["target"] {
                Value::String(s) => s.clone(),
                other => format!("{other}"),
            };
            let kind = m["kind"].as_str().unwrap_or("?").replace('_', " ");
            let mut line = format!("{target} {kind}");
            if options && let Some(opts) = m["options"].as_object() {
                let mut keys: Vec<&String> = opts.keys().collect();
                keys.sort();
                for key in keys.into_iter().filter(|k| *k != "size_bytes") {
                    match (&opts[key], key.as_str()) {
                        (Value::Number(n), "mode") => {
                            let mode = n.as_u64().unwrap_or_default();
                            let _ = write!(line, " mode={mode:04o}");
                        }
                        (Value::Bool(true), _) => {
                            let _ = write!(line, " {key}");
                        }
                        (Value::Bool(false) | Value::Null, _) => {}
                        (v, _) => {
                            let _ = write!(line, " {key}={v}");
                        }
                    }
                }
            }
            line
        })
        .collect();
    lines.sort();
    lines
}

/// Profiles every subject into the target directory and compares its plan
/// with the checked-in one; prints a diff per mismatch and a summary line.
fn check_all(roprof: &Path, subjects: &[&'static Subject]) -> Result<bool> {
    let scratch = target_dir()?.join("reports-check");
    let mut mismatched = Vec::new();
    for s in subjects {
        let saved_path = reports_dir().join(s.name).join("report.json");
        let saved = read_json(&saved_path).with_context(|| {
            format!(
                "no checked-in report for {} (run `cargo xtask reports {}` first)",
                s.name, s.name
            )
        })?;
        let outcome = profile(roprof, s, &scratch.join(s.name))?;
        let Some(fresh) = &outcome.report else {
            eprintln!(
                "xtask: {}: roprof failed ({}) and wrote no report",
                s.name,
                exit_text(outcome.exit_code)
            );
            mismatched.push(s.name);
            continue;
        };
        let diff = plan_diff(&plan_lines(&saved, true), &plan_lines(fresh, true));
        // A plan that no longer verifies read-only is a failure, whatever
        // its mounts: the report would be recommending something broken.
        let verified = outcome.exit_code == Some(0) && has_verified_note(fresh);
        if !verified {
            let rounds = fresh["rounds"].as_array().cloned().unwrap_or_default();
            println!(
                "reports --check: {}: the plan did NOT verify read-only ({}; the checked-in \
                 report is {}verified)",
                s.name,
                why_not_verified(&rounds, &notes(fresh), outcome.exit_code),
                if has_verified_note(&saved) {
                    ""
                } else {
                    "not "
                },
            );
        }
        match &diff {
            None => println!("reports --check: {}: plan matches", s.name),
            Some(diff) => println!(
                "reports --check: {}: plan DIFFERS from reports/{}/report.json \
                 (-checked in, +now):\n{diff}",
                s.name, s.name
            ),
        }
        if diff.is_some() || !verified {
            mismatched.push(s.name);
        }
    }
    if mismatched.is_empty() {
        println!(
            "reports --check: ok: {} plan(s) match the checked-in reports and verify",
            subjects.len()
        );
        Ok(true)
    } else {
        println!(
            "reports --check: FAILED: {} of {} differ or no longer verify: {} (regenerate with \
             `cargo xtask reports` if the change is intended)",
            mismatched.len(),
            subjects.len(),
            mismatched.join(", ")
        );
        Ok(false)
    }
}

/// A line diff of two sorted plans (`None` when equal): common lines
/// indented, removed ones with `-`, added ones with `+`, in target order.
fn plan_diff(saved: &[String], fresh: &[String]) -> Option<String> {
    if saved == fresh {
        return None;
    }
    let old: BTreeSet<&String> = saved.iter().collect();
    let new: BTreeSet<&String> = fresh.iter().collect();
    let mut out = String::new();
    for line in old.union(&new) {
        let mark = match (old.contains(line), new.contains(line)) {
            (true, true) => ' ',
            (true, false) => '-',
            _ => '+',
        };
        let _ = writeln!(out, "  {mark} {line}");
    }
    if saved.is_empty() {
        out.push_str("  - (no mounts)\n");
    }
    if fresh.is_empty() {
        out.push_str("  + (no mounts)\n");
    }
    Some(out)
}

/// Escapes what would break a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The commit roprof was built from, `+ changes` when the tree differs from
/// it (the reports are then committed on top of it).
fn source_commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(crate::workspace_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "`unknown`".into();
    };
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ":!reports",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("`{head}` + uncommitted changes")
    } else {
        format!("`{head}`")
    }
}

fn render_readme(rows: &[Row]) -> String {
    let mut md = String::new();
    let version = rows
        .iter()
        .find_map(|r| r.roprof_version.clone())
        .unwrap_or_else(|| "?".into());
    let commit = source_commit();
    let _ = write!(
        md,
        "# Reports\n\n\
         Real server images, built locally from Debian bookworm packages \
         (`tests/fixtures/<name>/Dockerfile`, FROM the debootstrap fixture), profiled end \
         to end by roprof {version} built from commit {commit}:\n\n\
         ```sh\n\
         roprof profile --verify --duration {DURATION} -o reports/<name>/ \
         [-p 127.0.0.1:PORT:PORT] (--probe URL | --exercise CMD) roprof-fixture/<name>\n\
         ```\n\n\
         The exercises are the `exercise.sh` scripts next to the Dockerfiles, run \
         from the repository root; all traffic goes to ports published on 127.0.0.1 or \
         through `docker exec`.\n\n\
         Regenerate everything with `cargo xtask reports` (or one image: \
         `cargo xtask reports redis`). `cargo xtask reports --check` (run by CI) profiles \
         the images again and fails if a plan (mount targets, kinds, and options other \
         than the size) differs from the `report.json` checked in here.\n\n\
         - **verified**: roprof exited 0 with `--verify` and its report has the \
         \"verified\" note: the image, run with `--read-only` and the proposed mounts, \
         behaved as in the profiling run (no `EROFS`, same exit code, same probe \
         health, same exercise exit status). When roprof had to repair its plan first, \
         the repairs are listed.\n\
         - **client**: the probe or exercise got its answers in the profiling run.\n\
         - **container runs**: the profiling run plus the read-only runs of the \
         verification (one when the first plan verifies).\n\
         - **time**: wall seconds of the whole `roprof profile --verify` (windows that \
         end once the server has settled, {DURATION} at most; container starts, graceful \
         stops, image listing; the eBPF load once).\n\n\
         | image | mounts | verified | client | container runs | time (s) | report |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n"
    );
    for r in rows {
        let s = r.subject;
        let mounts = if r.mounts.is_empty() {
            "none".to_owned()
        } else {
            r.mounts
                .iter()
                .map(|m| {
                    let (target, kind) = m.split_once(' ').unwrap_or((m, ""));
                    format!("`{}` {kind}", cell(target))
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let verified = match (&r.verified, &r.why_not) {
            (true, _) if r.repairs.is_empty() => "yes".to_owned(),
            (true, _) => format!("yes, after repair: {}", cell(&r.repairs.join("; "))),
            (false, Some(why)) => format!("**no**: {}", cell(why)),
            (false, None) => "**no**".to_owned(),
        };
        let client = match r.client_ok {
            Some(true) => "ok",
            Some(false) => "**failed**",
            None => "-",
        };
        let secs = r.secs.map_or_else(|| "-".into(), |t| format!("{t:.0}"));
        let _ = writeln!(
            md,
            "| `roprof-fixture/{name}` | {mounts} | {verified} | {client} | {runs} | {secs} | \
             [{name}/report.md]({name}/report.md) |",
            name = s.name,
            runs = r.container_runs,
        );
    }
    if reports_dir().join("bench.md").is_file() {
        md.push_str(
            "\nroprof's own costs (tracing overhead, event throughput, time to a working \
             read-only image) are measured by `cargo xtask bench`: [bench.md](bench.md).\n",
        );
    }
    md.push_str("\n## The images\n");
    for r in rows {
        let s = r.subject;
        let mut args = profile_args(s);
        args.extend([
            "-o".into(),
            format!("reports/{}/", s.name),
            format!("roprof-fixture/{}", s.name),
        ]);
        let line =
            shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "));
        let _ = write!(
            md,
            "\n### {name}\n\n{needs}\n\nClient: {client}.\n\n```sh\nroprof {line}\n```\n",
            name = s.name,
            needs = s.needs,
            client = s.client_summary,
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report(mounts: &Value) -> Value {
        json!({ "plan": { "mounts": mounts } })
    }

    #[test]
    fn plan_lines_leave_out_the_size_and_sort_by_target() {
        let r = report(&json!([
            { "target": "/var/log/nginx", "kind": "seeded_volume",
              "options": { "mode": 493, "uid": 0, "gid": 4, "size_bytes": 16_777_216,
                           "noexec": true, "nosuid": true, "nodev": false } },
            { "target": "/run", "kind": "tmpfs",
              "options": { "mode": 1023, "uid": 0, "gid": 0, "noexec": true } },
        ]));
        assert_eq!(
            plan_lines(&r, true),
            [
                "/run tmpfs gid=0 mode=1777 noexec uid=0",
                "/var/log/nginx seeded volume gid=4 mode=0755 noexec nosuid uid=0",
            ],
            "options other than size_bytes, mode in octal, set flags by name"
        );
        assert_eq!(
            plan_lines(&r, false),
            ["/run tmpfs", "/var/log/nginx seeded volume"]
        );
    }

    #[test]
    fn sizes_do_not_count_but_modes_do() {
        let m = |size: u64, mode: u32| {
            report(&json!([{ "target": "/run", "kind": "tmpfs",
                             "options": { "mode": mode, "size_bytes": size } }]))
        };
        let a = plan_lines(&m(1, 0o755), true);
        assert_eq!(
            plan_diff(&a, &plan_lines(&m(2, 0o755), true)),
            None,
            "a size change alone must not be a mismatch"
        );
        let diff = plan_diff(&a, &plan_lines(&m(1, 0o700), true))
            .expect("a mode change must be a mismatch");
        assert!(
            diff.contains("- /run tmpfs mode=0755") && diff.contains("+ /run tmpfs mode=0700"),
            "the diff must show both lines, got:\n{diff}"
        );
    }

    #[test]
    fn diff_marks_added_removed_and_empty_plans() {
        let old = vec!["/a tmpfs".to_owned(), "/b tmpfs".to_owned()];
        let new = vec!["/b tmpfs".to_owned(), "/c tmpfs".to_owned()];
        assert_eq!(
            plan_diff(&old, &new).as_deref(),
            Some("  - /a tmpfs\n    /b tmpfs\n  + /c tmpfs\n")
        );
        let diff = plan_diff(&old, &[]).expect("an emptied plan differs");
        assert!(diff.ends_with("  + (no mounts)\n"), "got:\n{diff}");
    }

    #[test]
    fn every_subject_is_an_on_demand_fixture_on_loopback() {
        for s in SUBJECTS {
            assert!(
                images::fixtures_dir()
                    .join(s.name)
                    .join("Dockerfile")
                    .is_file(),
                "report image {} needs tests/fixtures/{}/Dockerfile",
                s.name,
                s.name
            );
            if let Some(p) = s.publish {
                assert!(
                    p.starts_with("127.0.0.1:"),
                    "{}: ports are published on 127.0.0.1 only, not {p}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn exercises_are_scripts_next_to_the_dockerfile() {
        for s in SUBJECTS {
            let args = profile_args(s);
            let Some(i) = args.iter().position(|a| a == "--exercise") else {
                continue;
            };
            let words = shlex::split(&args[i + 1]).expect("the exercise splits as shell words");
            assert_eq!(words.len(), 3, "`bash SCRIPT ARG`, got {words:?}");
            assert!(
                workspace_root().join(&words[1]).is_file(),
                "{}: exercise script {} is missing",
                s.name,
                words[1]
            );
            if let Some(publish) = s.publish {
                assert!(
                    publish.starts_with(&format!("127.0.0.1:{}:", words[2])),
                    "{}: the exercise's port {} must be the published one ({publish})",
                    s.name,
                    words[2]
                );
            }
        }
    }

    #[test]
    fn verdicts_from_old_and_closed_loop_reports() {
        let old = json!({ "run": { "notes": ["verified: read-only run with these mounts behaved the same",
                                             "read-only run exit code Some(0)"] } });
        assert!(has_verified_note(&old));
        let failed = json!({ "run": { "notes": ["verification failed"] },
                             "rounds": [{ "differences": ["EROFS: Create on /x (1x)"],
                                          "action": "gave up: no repair applies" }] });
        assert!(
            !has_verified_note(&failed),
            "\"verification failed\" is not a pass"
        );
        assert_eq!(
            why_not_verified(
                failed["rounds"].as_array().expect("rounds"),
                &notes(&failed),
                Some(4)
            ),
            "EROFS: Create on /x (1x); gave up: no repair applies"
        );
    }
}
