//! `roprof completions SHELL` and `roprof man`: shell completions
//! (`clap_complete`) and man pages (`clap_mangen`) generated from the same clap
//! definitions as the parser, so they cannot drift from it. `cargo xtask
//! dist` runs both into `target/dist/`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, CommandFactory as _};

use super::Cli;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write roprof.1 and one page per subcommand (roprof-profile.1, …)
    /// into this directory instead of printing roprof.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Prints the completion script on stdout.
#[must_use]
pub fn completions(args: &CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "roprof", &mut std::io::stdout());
    0
}

/// Prints roprof.1, or writes every page into `--out-dir`.
pub fn man(args: &ManArgs) -> anyhow::Result<i32> {
    let cmd = Cli::command();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        clap_mangen::generate_to(cmd, dir)
            .with_context(|| format!("writing man pages into {}", dir.display()))?;
        eprintln!("roprof: wrote man pages to {}", dir.display());
    } else {
        clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("writing the man page to stdout")?;
    }
    Ok(0)
}
