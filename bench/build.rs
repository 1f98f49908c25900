//! Builds the floor object (the `floor` binary of `roprof-bench-ebpf`) with
//! aya-build, as profiler/build.rs builds roprof's, so that the bench can
//! embed it: the floor programs are not in the object roprof ships.

use anyhow::Context as _;

/// The dated nightly the eBPF crates are built with (profiler/build.rs
/// pins the same one; `cargo xtask setup` installs it).
const EBPF_TOOLCHAIN: &str = "nightly-2026-05-20";

fn main() -> anyhow::Result<()> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest)
        .parent()
        .context("workspace root")?
        .join("bench-ebpf");
    let root = root.to_str().context("non-UTF-8 workspace path")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "roprof-bench-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
    )
    .context(
        "building the floor eBPF object failed (its output is in the warnings above); \
         run `cargo xtask setup` first (needs the pinned nightly with rust-src and bpf-linker)",
    )?;
    // With AYA_BUILD_SKIP=1 nothing is built: embed an empty object, which
    // the floor refuses at run time with a message saying so.
    let obj = std::path::PathBuf::from(std::env::var("OUT_DIR").context("OUT_DIR")?).join("floor");
    if !obj.exists() {
        std::fs::write(&obj, b"").context("writing placeholder floor object")?;
    }
    Ok(())
}
