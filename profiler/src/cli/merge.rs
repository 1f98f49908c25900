//! `roprof merge REPORT...`: one plan from several reports of one image.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use roprof::{
    analysis::merge::{self, Named},
    environment::ContainerEnv,
    render::{self, Format},
    runtime::Engine,
};

/// Arguments of `merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports (report.json) of the same image run with the same options,
    /// e.g. with different --exercise commands, or watch's reports of one
    /// workload's replicas.
    #[arg(required = true, num_args = 2.., value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write every format into this directory.
    #[arg(short = 'o', long = "output-dir")]
    pub output_dir: Option<PathBuf>,
    /// Write the -e values the reports hold into the outputs; without it,
    /// names only.
    #[arg(long)]
    pub reveal_env: bool,
    /// With --format helm (and helm-values.yaml under -o): put the values
    /// under this component key.
    #[arg(long, value_name = "KEY")]
    pub helm_prefix: Option<roprof::render::helm::HelmPrefix>,
    /// Kubernetes names for the k8s and kustomize formats.
    #[command(flatten)]
    pub k8s: super::render::K8sArgs,
    /// Exit 0 even when a report lost events or truncated paths.
    #[arg(long)]
    pub allow_loss: bool,
}

/// Runs `merge`.
pub async fn run(args: &MergeArgs) -> anyhow::Result<i32> {
    let mut loaded = Vec::new();
    for path in &args.reports {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading report {}", path.display()))?;
        let report = render::json::load_report(&text)
            .with_context(|| format!("loading report {}", path.display()))?;
        loaded.push((path.display().to_string(), report));
    }
    let named: Vec<Named<'_>> = loaded
        .iter()
        .map(|(name, report)| Named { name, report })
        .collect();
    // Refused before the engine is asked for anything.
    merge::check(&named)?;
    let image = &named[0].report.image;
    let engine = Engine::connect().await?;
    let listing = roprof::session::image_listing(&engine, &image.id)
        .await
        .with_context(|| {
            format!(
                "reading the filesystem of image {} ({}), which the merged plan needs: it must be \
                 on this host's engine",
                image.image, image.id
            )
        })?;
    let mut report = merge::merge(&named, &listing)?;
    report.stats.peak_rss_kib = roprof::host::peak_rss_kib().unwrap_or(0);
    super::withhold_env(&mut report, &ContainerEnv::default(), args.reveal_env);
    let options = args.k8s.options(&report, args.helm_prefix.clone());
    for w in render::unrepresentable(&report) {
        eprintln!("roprof: warning: {w}");
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = render::write_all_with(&report, dir, &options)?;
        eprintln!("roprof: wrote {} files to {}", files.len(), dir.display());
    }
    super::render::print_report(&report, args.format, &options)?;
    Ok(super::exit_code("merge", &report, None, args.allow_loss))
}
