//! Running external programs: echoing them to stderr, checking their status,
//! and installing what is missing through apt on Debian.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::{Context as _, Result, bail};

/// The command line as a person would type it, for logs and error messages.
pub fn display(cmd: &Command) -> String {
    use std::fmt::Write as _;
    let quote = |words: &[String]| {
        shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
    };
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            let value = quote(&[value.to_string_lossy().into_owned()]);
            let _ = write!(line, "{}={value} ", key.to_string_lossy());
        }
    }
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    line.push_str(&quote(&words));
    line
}

/// Runs `cmd` with inherited stdio (its output goes straight to the user) and
/// fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    eprintln!("  $ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its output whatever the exit status; the
/// caller decides what a failure means.
pub fn output(cmd: &mut Command) -> Result<Output> {
    let line = display(cmd);
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{line}`"))
}

/// Runs `cmd` quietly and returns its trimmed stdout; fails with its stderr
/// unless it exits 0.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let line = display(cmd);
    let out = output(cmd)?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout)
        .map(|s| s.trim().to_owned())
        .with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// Whether `cmd` can be started and exits 0 (its output is discarded).
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Finds `program` on `PATH`, like `command -v`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists()
}

/// Set once `apt-get update` has run in this process, so a run that installs
/// several packages refreshes the lists only once.
static APT_UPDATED: AtomicBool = AtomicBool::new(false);

/// Makes sure `program` is on `PATH` (or, when it contains a slash, that the
/// file exists), installing the Debian `packages` when it is not. Returns a
/// line for the step report. Off Debian or without root it fails, saying what
/// to install by hand.
pub fn ensure_program(program: &str, packages: &[&str], why: &str) -> Result<String> {
    let present = |p: &str| {
        if p.contains('/') {
            is_executable(Path::new(p))
        } else {
            which(p).is_some()
        }
    };
    if present(program) {
        return Ok("ok (already present)".into());
    }
    apt_install(packages, why)?;
    if !present(program) {
        bail!(
            "installed {} but `{program}` is still missing",
            packages.join(" ")
        );
    }
    Ok(format!("installed {}", packages.join(" ")))
}

/// `apt-get install -y PACKAGES` (after one `apt-get update`), or an error
/// naming the packages when this is not a Debian machine we are root on.
pub fn apt_install(packages: &[&str], why: &str) -> Result<()> {
    apt_get_install(packages, why, &[])
}

/// [`apt_install`] without the packages' recommendations (for podman: its
/// recommends pull in systemd's user session, buildah and rootless tools
/// the tests do not use).
pub fn apt_install_no_recommends(packages: &[&str], why: &str) -> Result<()> {
    apt_get_install(packages, why, &["--no-install-recommends"])
}

fn apt_get_install(packages: &[&str], why: &str, options: &[&str]) -> Result<()> {
    if !is_root() || !is_debian() {
        bail!(
            "{why} needs the Debian package(s) `{}`; install them by hand \
             (as root: apt-get update && apt-get install -y {}), or the \
             equivalent for this distribution, then run this again",
            packages.join(" "),
            packages.join(" ")
        );
    }
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    run(Command::new("apt-get")
        .args(["install", "-y", "-q"])
        .args(options)
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null()))
    .with_context(|| format!("installing {} ({why})", packages.join(" ")))
}

/// `cargo`, the same one that runs xtask (cargo sets `$CARGO` for `cargo run`).
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::workspace_root());
    cmd
}

/// `docker ARGS`.
pub fn docker<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("docker");
    cmd.args(args);
    cmd
}
