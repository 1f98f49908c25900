//! Builds the eBPF object with aya-build (pinned nightly + bpf-linker, both
//! installed by `cargo xtask setup`) so `include_bytes_aligned!` can embed it.
//!
//! aya-build forwards every line of the nested eBPF build as a
//! `cargo:warning`, which buried real warnings under dozens of `Compiling …`
//! lines on every fresh build. Its output is captured here (stdout
//! redirected to a file around the call) and replayed: on success only the
//! `cargo:` directives other than warnings (rerun-if-changed, cfgs), on
//! failure everything.
use std::{
    fs::File,
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    os::fd::AsRawFd as _,
};

use anyhow::Context as _;

/// The dated nightly the eBPF crate is built with; `cargo xtask setup` installs it.
const EBPF_TOOLCHAIN: &str = "nightly-2026-05-20";

fn main() -> anyhow::Result<()> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest)
        .parent()
        .context("workspace root")?
        .join("profiler-ebpf");
    let root = root.to_str().context("non-UTF-8 workspace path")?;
    println!("cargo:rerun-if-changed=../profiler-common/src");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").context("OUT_DIR")?);
    let (built, output) = captured(&out_dir, || {
        aya_build::build_ebpf(
            [aya_build::Package {
                name: "profiler-ebpf",
                root_dir: root,
                ..Default::default()
            }],
            aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
        )
    })?;
    let mut stdout = std::io::stdout().lock();
    for line in output.lines() {
        if built.is_err() || !line.starts_with("cargo:warning=") {
            writeln!(stdout, "{line}")?;
        }
    }
    drop(stdout);
    built.context("building the eBPF programs failed (its output is in the warnings above); run `cargo xtask setup` first (needs the pinned nightly with rust-src and bpf-linker)")?;
    // With AYA_BUILD_SKIP=1 (pure-logic work on machines without the eBPF
    // toolchain) nothing is built: embed an empty object, which the loader
    // rejects at run time with a message saying so.
    let obj = out_dir.join("profiler");
    if !obj.exists() {
        std::fs::write(&obj, b"").context("writing placeholder eBPF object")?;
    }
    Ok(())
}

/// Runs `f` with this process's stdout (fd 1) redirected into a file under
/// `dir`; returns `f`'s result and what it printed.
fn captured<T>(dir: &std::path::Path, f: impl FnOnce() -> T) -> anyhow::Result<(T, String)> {
    let path = dir.join("ebpf-build.log");
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::stdout().flush()?;
    // SAFETY: dup/dup2 on valid descriptors (1 and an open file); fd 1 is
    // restored from the saved copy before returning, and the saved copy is
    // closed.
    let saved = unsafe { libc::dup(1) };
    anyhow::ensure!(saved >= 0, "dup(1) failed");
    // SAFETY: as above.
    unsafe { libc::dup2(file.as_raw_fd(), 1) };
    let result = f();
    let _ = std::io::stdout().flush();
    // SAFETY: as above.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
    let mut text = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_string(&mut text)?;
    Ok((result, text))
}
