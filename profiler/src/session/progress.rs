//! Progress on stderr: a spinner when stderr is a terminal, plain
//! `roprof: …` lines otherwise, nothing with `--quiet`.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// The spinner of one run (hidden with `--quiet` or when stderr is not a
/// terminal).
/// `label` prefixes every line (`round 2: creating container`).
pub(super) fn bar(quiet: bool, label: Option<&str>) -> ProgressBar {
    use std::io::IsTerminal as _;
    let prefix = label.map_or_else(String::new, |l| format!("{l}: "));
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden().with_prefix(prefix);
    }
    let b = ProgressBar::new_spinner().with_prefix(prefix);
    b.set_style(
        ProgressStyle::with_template("{spinner} {elapsed} {prefix}{msg}")
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
            eprintln!("roprof: {}{msg}", b.prefix());
        }
    } else {
        b.set_message(msg.to_owned());
    }
}
