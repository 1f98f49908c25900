//! `roprof check` output: the findings, the plan diff and the updated
//! docker line, as text, Markdown (a pull-request comment), JSON
//! (versioned by [`CHECK_SCHEMA_VERSION`]), `JUnit` XML and SARIF 2.1.0.
//! Nothing here varies between two checks of the same images: no times,
//! no container ids.

use std::fmt::Write as _;

use serde::Serialize;

use super::{docker::docker_command, env::export_comment, markdown::escape, table::kind_name};
use crate::model::{
    CHECK_SCHEMA_VERSION, CheckResult, Finding, FindingKind, PlanDiff, Report, Severity,
};

/// Output formats of `roprof check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// Findings for a terminal or a CI log.
    Text,
    /// A pull-request comment: findings, the plan diff, the docker line.
    Markdown,
    /// Machine-readable findings and plan diff.
    Json,
    /// `JUnit` XML (one test case per finding).
    Junit,
    /// SARIF 2.1.0 (code scanning).
    Sarif,
}

impl CheckFormat {
    /// Every format, in the order `-o` writes them.
    pub const ALL: [CheckFormat; 5] = [
        CheckFormat::Text,
        CheckFormat::Markdown,
        CheckFormat::Json,
        CheckFormat::Junit,
        CheckFormat::Sarif,
    ];

    /// The file `-o DIR` writes this format to.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            CheckFormat::Text => "check.txt",
            CheckFormat::Markdown => "check.md",
            CheckFormat::Json => "check.json",
            CheckFormat::Junit => "check.junit.xml",
            CheckFormat::Sarif => "check.sarif",
        }
    }
}

/// Everything a check's output shows.
#[derive(Clone, Copy, Debug)]
pub struct CheckView<'a> {
    /// The baseline report's file, as given (the SARIF artifact).
    pub baseline_file: &'a str,
    /// The baseline report.
    pub baseline: &'a Report,
    /// The new run's report.
    pub new: &'a Report,
    /// The comparison.
    pub result: &'a CheckResult,
    /// Warnings fail the gate.
    pub strict: bool,
}

impl CheckView<'_> {
    fn passed(&self) -> bool {
        !self.result.failed(self.strict)
    }

    fn headline(&self) -> String {
        let (f, w) = self.result.counts();
        format!(
            "the plan of {} ({}) {} for {}: {f} failure(s), {w} warning(s){}",
            self.baseline_file,
            self.baseline.image.image,
            if self.passed() {
                "holds"
            } else {
                "does NOT hold"
            },
            self.new.image.image,
            if self.strict { " (--strict)" } else { "" }
        )
    }
}

/// Renders `view` in `format`.
pub fn render(view: &CheckView<'_>, format: CheckFormat) -> Result<String, serde_json::Error> {
    Ok(match format {
        CheckFormat::Text => text(view),
        CheckFormat::Markdown => markdown(view),
        CheckFormat::Json => json(view)?,
        CheckFormat::Junit => junit(view),
        CheckFormat::Sarif => sarif(view)?,
    })
}

fn where_of(f: &Finding) -> String {
    f.path
        .as_ref()
        .map(crate::model::CPath::display)
        .unwrap_or_default()
}

fn diff_lines(d: &PlanDiff) -> Vec<String> {
    let mut v = Vec::new();
    for m in &d.removed {
        v.push(format!(
            "- {} {} {}",
            m.target.display(),
            kind_name(m.kind),
            m.options
        ));
    }
    for m in &d.added {
        v.push(format!(
            "+ {} {} {}",
            m.target.display(),
            kind_name(m.kind),
            m.options
        ));
    }
    for c in &d.changed {
        v.push(format!(
            "- {} {} {}",
            c.baseline.target.display(),
            kind_name(c.baseline.kind),
            c.baseline.options
        ));
        v.push(format!(
            "+ {} {} {}",
            c.new.target.display(),
            kind_name(c.new.kind),
            c.new.options
        ));
    }
    v
}

fn docker_line(r: &Report) -> String {
    format!("{}{}", export_comment(&r.run_options), docker_command(r))
}

/// Text for a terminal or CI log.
#[must_use]
pub fn text(view: &CheckView<'_>) -> String {
    let mut s = String::new();
    let verdict = if view.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(s, "roprof check: {verdict}: {}", view.headline());
    for f in &view.result.findings {
        let who = if f.processes.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.processes.join(", "))
        };
        let _ = writeln!(
            s,
            "{} {} {}{who}: {}",
            f.severity.as_str().to_uppercase(),
            f.kind.as_str(),
            where_of(f),
            f.message
        );
        let _ = writeln!(s, "    fix: {}", f.fix);
    }
    let diff = diff_lines(&view.result.diff);
    if !diff.is_empty() {
        s.push_str("plan diff (baseline -> new):\n");
        for l in diff {
            let _ = writeln!(s, "  {l}");
        }
    }
    for n in &view.result.notes {
        let _ = writeln!(s, "note: {n}");
    }
    if !view.result.diff.is_empty() {
        let _ = writeln!(s, "updated docker line:\n{}", docker_line(view.new));
    }
    s
}

fn fence_for(s: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat(longest.max(2) + 1)
}

/// A pull-request comment.
#[must_use]
pub fn markdown(view: &CheckView<'_>) -> String {
    let mut s = String::new();
    let mark = if view.passed() { "✅" } else { "❌" };
    let _ = writeln!(
        s,
        "## roprof check {mark}\n\n{}\n",
        escape(view.headline().as_bytes())
    );
    if view.result.findings.is_empty() {
        s.push_str("No findings.\n");
    } else {
        s.push_str(
            "| | rule | path | process | mount | what | fix |\n|---|---|---|---|---|---|---|\n",
        );
        for f in &view.result.findings {
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                f.severity.as_str(),
                f.kind.as_str(),
                escape(where_of(f).as_bytes()),
                escape(f.processes.join(", ").as_bytes()),
                escape(
                    f.mount
                        .as_ref()
                        .map(crate::model::CPath::display)
                        .unwrap_or_default()
                        .as_bytes()
                ),
                escape(f.message.as_bytes()),
                escape(f.fix.as_bytes())
            );
        }
    }
    let diff = diff_lines(&view.result.diff);
    if !diff.is_empty() {
        let body = diff.join("\n");
        let fence = fence_for(&body);
        let _ = writeln!(s, "\n### Plan diff\n\n{fence}diff\n{body}\n{fence}");
        let line = docker_line(view.new);
        let fence = fence_for(&line);
        let _ = writeln!(
            s,
            "\n### Updated docker line\n\n{fence}sh\n{line}\n{fence}\n\n`roprof check --update` writes the new report; commit it with this change."
        );
    }
    for n in &view.result.notes {
        let _ = writeln!(s, "\n> {}", escape(n.as_bytes()));
    }
    s
}

#[derive(Serialize)]
struct JsonOut<'a> {
    schema_version: u32,
    passed: bool,
    strict: bool,
    baseline: JsonImage<'a>,
    image: JsonImage<'a>,
    failures: usize,
    warnings: usize,
    findings: &'a [Finding],
    plan_diff: &'a PlanDiff,
    notes: &'a [String],
    docker: String,
}

#[derive(Serialize)]
struct JsonImage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a str>,
    image: &'a str,
    id: &'a str,
}

/// The findings as JSON ([`CHECK_SCHEMA_VERSION`]).
pub fn json(view: &CheckView<'_>) -> Result<String, serde_json::Error> {
    let (failures, warnings) = view.result.counts();
    let out = JsonOut {
        schema_version: CHECK_SCHEMA_VERSION,
        passed: view.passed(),
        strict: view.strict,
        baseline: JsonImage {
            report: Some(view.baseline_file),
            image: &view.baseline.image.image,
            id: &view.baseline.image.id,
        },
        image: JsonImage {
            report: None,
            image: &view.new.image.image,
            id: &view.new.image.id,
        },
        failures,
        warnings,
        findings: &view.result.findings,
        plan_diff: &view.result.diff,
        notes: &view.result.notes,
        docker: docker_command(view.new),
    };
    let mut s = serde_json::to_string_pretty(&out)?;
    s.push('\n');
    Ok(s)
}

#[derive(Serialize)]
#[serde(rename = "testsuites")]
struct Suites {
    #[serde(rename = "@name")]
    name: &'static str,
    #[serde(rename = "@tests")]
    tests: usize,
    #[serde(rename = "@failures")]
    failures: usize,
    testsuite: Suite,
}

#[derive(Serialize)]
struct Suite {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@tests")]
    tests: usize,
    #[serde(rename = "@failures")]
    failures: usize,
    #[serde(rename = "@errors")]
    errors: usize,
    #[serde(rename = "@skipped")]
    skipped: usize,
    testcase: Vec<Case>,
}

#[derive(Serialize)]
struct Case {
    #[serde(rename = "@name")]
    name: String,
    #[serde(rename = "@classname")]
    classname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
    #[serde(rename = "system-out", skip_serializing_if = "Option::is_none")]
    system_out: Option<String>,
}

#[derive(Serialize)]
struct Failure {
    #[serde(rename = "@message")]
    message: String,
    #[serde(rename = "@type")]
    kind: &'static str,
    #[serde(rename = "$text")]
    text: String,
}

fn finding_text(f: &Finding) -> String {
    let mut t = f.message.clone();
    if !f.processes.is_empty() {
        let _ = write!(t, "\nprocesses: {}", f.processes.join(", "));
    }
    if let Some(m) = &f.mount {
        let _ = write!(t, "\nplanned mount: {}", m.display());
    }
    let _ = write!(t, "\nfix: {}", f.fix);
    t
}

/// `JUnit` XML: a test case for the plan as a whole, and one per finding;
/// failures fail their case, warnings pass with their text in
/// `system-out` (and fail with `--strict`).
#[must_use]
pub fn junit(view: &CheckView<'_>) -> String {
    let mut cases = vec![Case {
        name: format!("the plan of {} holds", view.baseline_file),
        classname: "roprof.check".into(),
        failure: (!view.passed()).then(|| Failure {
            message: view.headline(),
            kind: "check",
            text: text(view),
        }),
        system_out: view.passed().then(|| text(view)),
    }];
    for f in &view.result.findings {
        let fails = f.severity == Severity::Fail || view.strict;
        cases.push(Case {
            name: format!("{} {}", f.kind.as_str(), where_of(f)),
            classname: format!("roprof.check.{}", f.kind.as_str()),
            failure: fails.then(|| Failure {
                message: f.message.clone(),
                kind: f.severity.as_str(),
                text: finding_text(f),
            }),
            system_out: (!fails).then(|| finding_text(f)),
        });
    }
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let suites = Suites {
        name: "roprof check",
        tests: cases.len(),
        failures,
        testsuite: Suite {
            name: format!("roprof check {}", view.new.image.image),
            tests: cases.len(),
            failures,
            errors: 0,
            skipped: 0,
            testcase: cases,
        },
    };
    // Serialising plain structs of strings and numbers cannot fail.
    let body = quick_xml::se::to_string(&suites).unwrap_or_default();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}\n")
}

/// Where SARIF consumers read the schema from.
pub const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF 2.1.0: one rule per finding kind, one result per finding, located
/// in the baseline report's file (the file to change) and at the container
/// path as a logical location.
pub fn sarif(view: &CheckView<'_>) -> Result<String, serde_json::Error> {
    use serde_json::json;
    let rules: Vec<_> = FindingKind::ALL
        .iter()
        .map(|k| {
            json!({
                "id": k.as_str(),
                "shortDescription": { "text": k.description() },
                "helpUri": "https://github.com/roprof/roprof#in-ci",
            })
        })
        .collect();
    let uri = view.baseline_file.replace('%', "%25").replace(' ', "%20");
    let results: Vec<_> = view
        .result
        .findings
        .iter()
        .map(|f| {
            let index = FindingKind::ALL
                .iter()
                .position(|k| *k == f.kind)
                .unwrap_or(0);
            let mut loc = json!({
                "physicalLocation": { "artifactLocation": { "uri": uri } },
            });
            if let Some(p) = &f.path {
                loc["logicalLocations"] = json!([{
                    "fullyQualifiedName": p.display(),
                    "kind": "resource",
                }]);
            }
            json!({
                "ruleId": f.kind.as_str(),
                "ruleIndex": index,
                "level": match f.severity {
                    Severity::Fail => "error",
                    Severity::Warn => "warning",
                },
                "message": { "text": format!("{} Fix: {}", f.message, f.fix) },
                "locations": [loc],
                "properties": {
                    "processes": f.processes,
                    "mount": f.mount.as_ref().map(crate::model::CPath::display),
                    "image": view.new.image.image,
                },
            })
        })
        .collect();
    let log = json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "roprof",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/roprof/roprof",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&log)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::{CheckFormat, CheckView, render};
    use crate::model::{CPath, CheckResult, Finding, FindingKind, PlanDiff, Report, Severity};

    fn result() -> CheckResult {
        CheckResult {
            findings: vec![
                Finding {
                    severity: Severity::Fail,
                    kind: FindingKind::WriteOutsidePlan,
                    path: Some(CPath::from("/var/<&>\"x")),
                    processes: vec!["w|r".into()],
                    mount: None,
                    message: "a write ]]> with `ticks`".into(),
                    fix: "add it".into(),
                },
                Finding {
                    severity: Severity::Warn,
                    kind: FindingKind::StaleSeed,
                    path: Some(CPath::from("/srv/seed")),
                    processes: vec![],
                    mount: Some(CPath::from("/srv/seed")),
                    message: "changed".into(),
                    fix: "recreate".into(),
                },
            ],
            diff: PlanDiff::default(),
            notes: vec![],
        }
    }

    fn xml_events(xml: &str) -> Vec<String> {
        use quick_xml::{Reader, events::Event};
        let mut r = Reader::from_str(xml);
        r.config_mut().check_end_names = true;
        let mut v = Vec::new();
        loop {
            match r.read_event() {
                Ok(Event::Eof) => return v,
                Ok(Event::Start(e) | Event::Empty(e)) => {
                    v.push(AsRef::<str>::as_ref(&e.name()).to_owned());
                }
                Ok(_) => {}
                Err(e) => panic!("expected well-formed XML, got {e}:\n{xml}"),
            }
        }
    }

    #[test]
    fn every_format_renders_awkward_text_in_a_form_that_parses() {
        let (base, new, res) = (Report::default(), Report::default(), result());
        let view = |strict| CheckView {
            baseline_file: "roprof/report.json",
            baseline: &base,
            new: &new,
            result: &res,
            strict,
        };
        let junit = render(&view(false), CheckFormat::Junit).expect("junit");
        let names = xml_events(&junit);
        assert_eq!(names.iter().filter(|n| *n == "testcase").count(), 3);
        assert_eq!(names.iter().filter(|n| *n == "failure").count(), 2);
        let strict = render(&view(true), CheckFormat::Junit).expect("junit");
        assert_eq!(
            xml_events(&strict)
                .iter()
                .filter(|n| *n == "failure")
                .count(),
            3
        );
        let j: serde_json::Value =
            serde_json::from_str(&render(&view(false), CheckFormat::Json).expect("json"))
                .expect("JSON");
        assert_eq!(j["schema_version"], 1);
        assert_eq!(j["findings"][0]["kind"], "write-outside-plan");
        assert_eq!(j["findings"][1]["severity"], "warn");
        let sarif: serde_json::Value =
            serde_json::from_str(&render(&view(false), CheckFormat::Sarif).expect("sarif"))
                .expect("JSON");
        assert_eq!(sarif["version"], "2.1.0");
        assert_eq!(sarif["runs"][0]["results"][1]["level"], "warning");
        assert_eq!(sarif["runs"][0]["results"][1]["ruleIndex"], 4);
        let md = render(&view(false), CheckFormat::Markdown).expect("md");
        assert!(
            md.contains("w&#124;r"),
            "a `|` must not split the table row:\n{md}"
        );
        let text = render(&view(false), CheckFormat::Text).expect("text");
        assert!(text.starts_with("roprof check: FAIL"), "{text}");
    }
}
