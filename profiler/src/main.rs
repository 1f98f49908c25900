//! The `roprof` binary: parses the command line, runs, maps errors to exit codes.
//!
//! The command-line layer ([`cli`]) lives here, above the `roprof`
//! library: it turns arguments into the library's requests and prints the
//! results; the library never sees clap.

mod cli;

use clap::Parser as _;
use cli::{Cli, Command, EXIT_INTERRUPTED};
use roprof::session::SessionError;

fn main() {
    one_malloc_arena();
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
            Command::Check(a) => Box::pin(cli::check::run(a)).await,
            Command::Watch(a) => cli::watch::run(a).await,
            Command::Guard(a) => cli::guard::run(a).await,
            Command::Render(a) => cli::render::run(a),
            Command::Merge(a) => cli::merge::run(a).await,
            Command::Patch(a) => cli::patch::run(a),
            Command::Doctor(a) => cli::doctor::run(a).await,
            Command::Completions(a) => Ok(cli::completions::completions(a)),
            Command::Man(a) => cli::completions::man(a),
        }
    });
    match res {
        Ok(code) => std::process::exit(code),
        Err(e) if is_broken_pipe(&e) => {
            // stdout was closed early (`roprof man | head`): what was
            // asked for was printed as far as it was read.
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("roprof: error: {}", chain_once(&e));
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

/// The error and its causes as `a: b: c`, leaving out a cause whose text
/// the message already holds (errors that quote their source in their own
/// message would otherwise print it twice).
fn chain_once(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// True when the error is a write to a closed stdout.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Makes glibc's allocator serve every thread from one arena.
///
/// roprof's threads take turns rather than allocate side by side: a tokio
/// worker fills the collector while the container runs (one record per
/// distinct operation: ~10 MiB at 100k paths, hash table and notes
/// included), then the main thread finishes the observations and plans.
/// With an arena per thread (glibc's default, up to 8 per core), what the
/// worker frees at the end (the notes, the index) stays in its arena and
/// cannot serve the main thread's allocations, so the two add up in the
/// peak RSS; with one they overlap (5 to 8 MiB less at 100k paths). The
/// arena's lock is uncontended in this pattern, and each thread keeps its
/// own cache of small chunks (tcache). musl (the release binary) has no
/// per-thread arenas.
#[cfg(target_env = "gnu")]
fn one_malloc_arena() {
    // SAFETY: mallopt only sets an allocator parameter; it runs first in
    // main, before any other thread exists. Its result is ignored: a glibc
    // that refuses it keeps its default, which is only less frugal.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(target_env = "gnu"))]
fn one_malloc_arena() {}
