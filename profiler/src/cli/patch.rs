//! `roprof patch MANIFEST --report report.json`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use roprof::render;

/// Arguments of `patch`.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Multi-document Kubernetes manifest to patch (printed to stdout).
    pub manifest: PathBuf,
    /// The report whose mounts to apply.
    #[arg(long)]
    pub report: PathBuf,
    /// Container to patch (default: the one running the report's image).
    #[arg(long)]
    pub container: Option<String>,
}

/// Runs `patch`.
pub fn run(args: &PatchArgs) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("reading report {}", args.report.display()))?;
    let report = render::json::load_report(&text)
        .with_context(|| format!("loading report {}", args.report.display()))?;
    let manifest = std::fs::read_to_string(&args.manifest)
        .with_context(|| format!("reading manifest {}", args.manifest.display()))?;
    let out = render::patch::patch_manifests(&manifest, &report, args.container.as_deref())
        .with_context(|| format!("patching {}", args.manifest.display()))?;
    if let Some(c) = args.container.as_deref() {
        for w in render::patch::image_mismatches(&manifest, &report, c) {
            eprintln!("roprof: warning: {w}");
        }
    }
    print!("{out}");
    Ok(0)
}
