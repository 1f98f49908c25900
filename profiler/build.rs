//! Builds the eBPF object with aya-build (pinned nightly + bpf-linker, both
//! installed by `cargo xtask setup`) so `include_bytes_aligned!` can embed it.
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
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "profiler-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
    )
    .context("building the eBPF programs failed; run `cargo xtask setup` first (needs the pinned nightly with rust-src and bpf-linker)")?;
    // With AYA_BUILD_SKIP=1 (pure-logic work on machines without the eBPF
    // toolchain) nothing is built: embed an empty object, which the loader
    // rejects at run time with a message saying so.
    let obj = out_dir.join("profiler");
    if !obj.exists() {
        std::fs::write(&obj, b"").context("writing placeholder eBPF object")?;
    }
    Ok(())
}
