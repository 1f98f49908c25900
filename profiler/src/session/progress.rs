//! Progress on stderr: a spinner when stderr is a terminal, plain
//! `roprof: …` lines otherwise, nothing with `--quiet`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The spinner of one run (hidden with `--quiet` or when stderr is not a
/// terminal).
pub(super) fn bar(quiet: bool) -> ProgressBar {
    use std::io::IsTerminal as _;
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new_spinner();
    b.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    b.enable_steady_tick(Duration::from_millis(200));
    b
}

/// Shows `msg` on the spinner, or prints it as a line when the spinner is
/// hidden and not `--quiet`.
pub(super) fn note(b: &ProgressBar, quiet: bool, msg: &str) {
    if b.is_hidden() {
        if !quiet {
            eprintln!("roprof: {msg}");
        }
    } else {
        b.set_message(msg.to_owned());
    }
}
