//! `roprof render REPORT --format X`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use roprof::{
    environment::ContainerEnv,
    render::{self, Format},
};

/// Arguments of `render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A report.json written by `roprof profile`.
    pub report: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Print the -e values a report holds (schema 1 reports, and reports
    /// written with --reveal-env); without it, names only.
    #[arg(long)]
    pub reveal_env: bool,
    /// With --format helm (and helm-values.yaml under -o): put the values
    /// under this component key (`server`, `controller`; dotted for a
    /// deeper one), as charts with several components expect.
    #[arg(long, value_name = "KEY")]
    pub helm_prefix: Option<roprof::render::helm::HelmPrefix>,
}

/// Runs `render`.
pub fn run(args: &RenderArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("reading report {}", args.report.display()))?;
    let mut report = render::json::load_report(&text)
        .with_context(|| format!("loading report {}", args.report.display()))?;
    super::withhold_env(&mut report, &ContainerEnv::default(), args.reveal_env);
    let options = render::RenderOptions {
        helm_prefix: args.helm_prefix.clone(),
    };
    print_report(&report, args.format, &options)?;
    Ok(0)
}

/// Prints `report` in `format` on stdout. JSON is streamed (a report of
/// 100k paths is tens of MiB: building it as a string would double roprof's
/// peak memory); the other formats are small.
pub fn print_report(
    report: &roprof::model::Report,
    format: Format,
    options: &render::RenderOptions,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut out, report)?;
        out.write_all(b"\n")?;
    } else {
        out.write_all(ensure_nl(render::render_with(report, format, options)?).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// This process's peak resident memory (`VmHWM`), in KiB.
#[must_use]
pub fn peak_rss_kib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Adds a final newline when missing.
#[must_use]
pub fn ensure_nl(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
