//! The `roprof` binary: parses the command line, runs, maps errors to exit codes.

use clap::Parser as _;
use roprof::{
    cli::{self, Cli, Command, EXIT_INTERRUPTED},
    session::SessionError,
};

fn main() {
    let cli = Cli::parse();
    roprof::session::test_hook::init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roprof: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let res = rt.block_on(async {
        if let Err(e) = roprof::session::interrupt::install() {
            eprintln!("roprof: cannot install signal handlers: {e}");
            std::process::exit(1);
        }
        match &cli.command {
            // Boxed: the whole closed loop's state lives in this future.
            Command::Profile(a) => Box::pin(cli::profile::run(a)).await,
            Command::Attach(a) => cli::attach::run(a).await,
            Command::Verify(a) => cli::verify::run(a, &cli::RunArgs::default()).await,
            Command::Watch(a) => cli::watch::run(a).await,
            Command::Render(a) => cli::render::run(a),
            Command::Patch(a) => cli::patch::run(a),
            Command::Doctor(a) => cli::doctor::run(a).await,
            Command::Completions(a) => Ok(cli::completions::completions(a)),
            Command::Man(a) => cli::completions::man(a),
            Command::BenchFloor(a) => cli::floor::run(a).await,
        }
    });
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("roprof: error: {e:#}");
            // The same advice `roprof doctor` gives for that check.
            if let Some(check) = roprof::doctor::remedy_for(&e) {
                eprintln!(
                    "  remedy: {}\n  (`roprof doctor` runs the whole checklist)",
                    check.remedy()
                );
            }
            let interrupted = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<SessionError>(),
                    Some(SessionError::Interrupted { .. })
                )
            });
            std::process::exit(if interrupted { EXIT_INTERRUPTED } else { 1 });
        }
    }
}
