//! `roprof check --baseline report.json [IMAGE]`: the CI gate. Profiles a
//! new version of the image as its baseline was profiled and says whether
//! the baseline's plan still holds (exit 6 when it does not).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use roprof::{
    gate,
    render::{
        self,
        check::{CheckFormat, CheckView},
    },
    runtime::Engine,
    session::Context,
};

/// Arguments of `check`.
#[derive(Debug, Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "clap flags, each a yes/no of its own"
)]
pub struct CheckArgs {
    /// The committed report whose plan the new run is checked against; its
    /// run options, window, probe and exercise are used again.
    #[arg(long, value_name = "FILE")]
    pub baseline: PathBuf,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
    /// Warnings fail the gate too.
    #[arg(long)]
    pub strict: bool,
    /// Write the new run's report over the baseline file (commit it with
    /// the change); the exit code still says whether the old baseline held.
    #[arg(long)]
    pub update: bool,
    /// Write every check format (check.txt, check.md, check.json,
    /// check.junit.xml, check.sarif) and every format of the new report
    /// (report.json, docker.sh, …) into this directory.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Exit 0 even when the new run lost events or truncated paths.
    #[arg(long)]
    pub allow_loss: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Image to check (default: the baseline's image reference, so that a
    /// new build under the same tag is checked).
    pub image: Option<String>,
}

/// Runs `check`.
pub async fn run(args: &CheckArgs) -> anyhow::Result<i32> {
    let file = args.baseline.display().to_string();
    let text = std::fs::read_to_string(&args.baseline)
        .with_context(|| format!("reading baseline {file}"))?;
    let baseline =
        render::json::load_report(&text).with_context(|| format!("loading baseline {file}"))?;
    if baseline.run.incomplete {
        anyhow::bail!(
            "baseline {file} is an incomplete report ({}): profile the image again and commit a complete one",
            baseline
                .run
                .incomplete_reason
                .as_deref()
                .unwrap_or("the run was cut short")
        );
    }
    let (mut cfg, notes) = gate::config(&baseline, args.image.clone())
        .with_context(|| format!("the environment of baseline {file}"))?;
    cfg.quiet = args.quiet;
    super::warn_unset(&cfg.env);
    for n in &notes {
        eprintln!("roprof: note: {n}");
    }
    roprof::doctor::preflight(None)?;
    let engine = Engine::connect().await?;
    let mut ctx = Context::new(engine, None);
    let res = gate::check(&mut ctx, &baseline, &cfg).await;
    let code = match res {
        Ok(mut checked) => {
            checked.result.notes.extend(notes);
            super::withhold_env(&mut checked.report, &cfg.env, false);
            finish(args, &file, &baseline, &checked)
        }
        Err(e) => Err(e.into()),
    };
    ctx.teardown().await;
    code
}

fn finish(
    args: &CheckArgs,
    file: &str,
    baseline: &roprof::model::Report,
    checked: &gate::Checked,
) -> anyhow::Result<i32> {
    let view = CheckView {
        baseline_file: file,
        baseline,
        new: &checked.report,
        result: &checked.result,
        strict: args.strict,
    };
    let complete = !checked.report.run.incomplete;
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for f in CheckFormat::ALL {
            let path = dir.join(f.file_name());
            std::fs::write(&path, render::check::render(&view, f)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let files =
            render::write_all_with(&checked.report, dir, &render::RenderOptions::default())?;
        eprintln!(
            "roprof: wrote {} files to {}",
            files.len() + CheckFormat::ALL.len(),
            dir.display()
        );
    }
    print!("{}", render::check::render(&view, args.format)?);
    if args.format != CheckFormat::Text {
        eprint!("{}", render::check::text(&view));
    }
    if args.update {
        if complete {
            let json = render::json::to_json(&checked.report)?;
            std::fs::write(&args.baseline, format!("{json}\n"))
                .with_context(|| format!("writing the new report over {file}"))?;
            eprintln!("roprof: updated {file} with the new run's report: commit it");
        } else {
            eprintln!("roprof: {file} NOT updated: the new run is incomplete");
        }
    }
    let failed = checked.result.failed(args.strict);
    let outcome = roprof::request::check_outcome(&checked.report, failed, args.allow_loss);
    // Says on stderr why the run is incomplete or what it lost; the code
    // is the check's own rule (a baseline that no longer holds wins over
    // lost events).
    let _ = super::exit_code("check", &checked.report, None, args.allow_loss);
    Ok(outcome.code())
}
