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
    /// Kubernetes names for the k8s and kustomize formats.
    #[command(flatten)]
    pub k8s: K8sArgs,
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

/// `--k8s-name` and `--k8s-container`.
#[derive(Debug, Args, Clone, Default)]
pub struct K8sArgs {
    /// Name of the Deployment the k8s formats write and the kustomize patch
    /// targets (default: the image's name, e.g. `redis`).
    #[arg(long, value_name = "NAME", value_parser = k8s_name)]
    pub k8s_name: Option<String>,
    /// Name of the container in it (default: the image's name).
    #[arg(long, value_name = "NAME", value_parser = k8s_name)]
    pub k8s_container: Option<String>,
}

impl K8sArgs {
    /// The render options for `report`: these names (each defaulting to
    /// the image's) and the Helm prefix.
    #[must_use]
    pub fn options(
        &self,
        report: &roprof::model::Report,
        helm_prefix: Option<roprof::render::helm::HelmPrefix>,
    ) -> render::RenderOptions {
        render::RenderOptions {
            helm_prefix,
            k8s: Some(render::K8sNames::new(
                &report.image.image,
                self.k8s_name.as_deref(),
                self.k8s_container.as_deref(),
            )),
        }
    }
}

fn k8s_name(s: &str) -> Result<String, String> {
    render::check_k8s_name(s).map(|()| s.to_owned())
}

/// Runs `render`.
pub fn run(args: &RenderArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("reading report {}", args.report.display()))?;
    let mut report = render::json::load_report(&text)
        .with_context(|| format!("loading report {}", args.report.display()))?;
    super::withhold_env(&mut report, &ContainerEnv::default(), args.reveal_env);
    let options = args.k8s.options(&report, args.helm_prefix.clone());
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

/// Adds a final newline when missing.
#[must_use]
pub fn ensure_nl(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}
