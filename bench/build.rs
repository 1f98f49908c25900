//! Builds the floor object (the `floor` binary of `roprof-bench-ebpf`) with
//! aya-build, as profiler/build.rs builds roprof's, so that the bench can
//! embed it: the floor programs are not in the object roprof ships.
//!
//! As in profiler/build.rs, aya-build's forwarding of every line of the
//! nested build as a `cargo:warning` is captured and replayed only on
//! failure (the other `cargo:` directives always).

use std::{
    fs::File,
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

/// The dated nightly the eBPF crates are built with (profiler/build.rs
/// pins the same one; `cargo xtask setup` installs it).
const EBPF_TOOLCHAIN: &str = "nightly-2026-05-20";

fn main() -> anyhow::Result<()> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let root = Path::new(&manifest)
        .parent()
        .context("workspace root")?
        .join("bench-ebpf");
    let root = root.to_str().context("non-UTF-8 workspace path")?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").context("OUT_DIR")?);
    let (built, output) = captured(&out_dir, || {
        aya_build::build_ebpf(
            [aya_build::Package {
                name: "roprof-bench-ebpf",
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
    built.context(
        "building the floor eBPF object failed (its output is in the warnings above); \
         run `cargo xtask setup` first (needs the pinned nightly with rust-src and bpf-linker)",
    )?;
    // With AYA_BUILD_SKIP=1 nothing is built: embed an empty object, which
    // the floor refuses at run time with a message saying so.
    let obj = out_dir.join("floor");
    if !obj.exists() {
        std::fs::write(&obj, b"").context("writing placeholder floor object")?;
    }
    Ok(())
}

/// Runs `f` with this process's stdout (fd 1) redirected into a file under
/// `dir`; returns `f`'s result and what it printed.
fn captured<T>(dir: &Path, f: impl FnOnce() -> T) -> anyhow::Result<(T, String)> {
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
