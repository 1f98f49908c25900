//! `cargo xtask setup`: everything the build and the privileged tests need,
//! installed only when missing, so it is cheap to run before every test run.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, images, podman, step, workspace_root};

/// The bpf-linker release the eBPF build is known to work with.
const BPF_LINKER_VERSION: &str = "0.13.0";

/// Where a dockerd started by setup logs.
const DOCKERD_LOG: &str = "/var/log/roprof-dockerd.log";

/// How long to wait for a freshly started dockerd to answer.
const DOCKERD_WAIT: Duration = Duration::from_secs(30);

pub fn setup() -> Result<()> {
    build_and_engine()?;
    test_tools()?;
    images::build(&[], false)?;
    podman::setup()
}

/// What building roprof and running it under Docker need, and nothing
/// more: the pinned nightly, bpf-linker, protoc, a kernel with BTF and
/// cgroup v2, and the Docker engine. `cargo xtask demo` stops here (plus
/// the one image it profiles); the test-only tools, the other fixtures and
/// Podman's copies of them are `setup`'s.
pub fn build_and_engine() -> Result<()> {
    let toolchain = ebpf_toolchain()?;
    step(&format!("toolchain {toolchain} + rust-src"), || {
        ensure_toolchain(&toolchain)
    })?;
    step(&format!("bpf-linker {BPF_LINKER_VERSION}"), || {
        ensure_bpf_linker(&toolchain)
    })?;
    step("protoc", || {
        cmd::ensure_program(
            "protoc",
            &["protobuf-compiler"],
            "building containerd's gRPC bindings (the containerd-client crate, for `roprof watch --runtime containerd`)",
        )
    })?;
    step("kernel BTF and cgroup v2", check_kernel)?;
    docker_step()
}

/// The programs only the privileged tests run: docker-compose, kubectl,
/// bpftool and ctr.
fn test_tools() -> Result<()> {
    step("docker-compose", || {
        cmd::ensure_program(
            "docker-compose",
            &["docker-compose"],
            "running the rendered compose files in the privileged tests",
        )
    })?;
    step("kubectl", || {
        cmd::ensure_program(
            "kubectl",
            &["kubectl"],
            "reading the rendered Kubernetes outputs client-side (`--local`) and `kubectl kustomize` in the privileged tests",
        )
    })?;
    step("bpftool", || {
        cmd::ensure_program(
            "bpftool",
            &["bpftool"],
            "the privileged tests' leak checks (BPF programs and links left behind)",
        )
    })?;
    step("ctr", || {
        cmd::ensure_program(
            "ctr",
            &["containerd"],
            "the privileged `watch` tests drive Docker's containerd with ctr",
        )
    })
}

/// Installs the Docker engine if needed and starts dockerd if it does not
/// answer.
pub fn docker_step() -> Result<()> {
    step("docker engine", ensure_docker)
}

/// The nightly `profiler/build.rs` builds the eBPF crate with (its
/// `EBPF_TOOLCHAIN` constant), read from there so the two cannot drift.
pub fn ebpf_toolchain() -> Result<String> {
    let path = workspace_root().join("profiler/build.rs");
    let src = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_ebpf_toolchain(&src).with_context(|| {
        format!(
            "no `const EBPF_TOOLCHAIN: &str = \"…\"` in {}",
            path.display()
        )
    })
}

fn parse_ebpf_toolchain(src: &str) -> Option<String> {
    let line = src
        .lines()
        .find(|l| l.contains("const EBPF_TOOLCHAIN") && !l.trim_start().starts_with("//"))?;
    let (_, rest) = line.split_once('"')?;
    let (name, _) = rest.split_once('"')?;
    (!name.is_empty()).then(|| name.to_owned())
}

fn rustup() -> Result<Command> {
    if cmd::which("rustup").is_none() {
        bail!(
            "rustup is not on PATH; install it (https://rustup.rs) or add \
             ~/.cargo/bin to PATH"
        );
    }
    Ok(Command::new("rustup"))
}

fn ensure_toolchain(toolchain: &str) -> Result<String> {
    let installed = cmd::stdout(rustup()?.args(["toolchain", "list"]))?;
    let has_toolchain = installed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|t| t == toolchain || t.starts_with(&format!("{toolchain}-")));
    if !has_toolchain {
        cmd::run(rustup()?.args([
            "toolchain",
            "install",
            toolchain,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
        return Ok(format!("installed {toolchain} with rust-src"));
    }
    let components = cmd::stdout(rustup()?.args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        toolchain,
    ]))?;
    if components.lines().any(|c| c.starts_with("rust-src")) {
        return Ok("ok (already present)".into());
    }
    cmd::run(rustup()?.args(["component", "add", "rust-src", "--toolchain", toolchain]))?;
    Ok("added rust-src".into())
}

/// The installed bpf-linker, on PATH or in cargo's bin directory.
fn bpf_linker_path() -> Option<PathBuf> {
    cmd::which("bpf-linker").or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
        let bin = home.join("bin").join("bpf-linker");
        bin.is_file().then_some(bin)
    })
}

fn bpf_linker_version(bin: &Path) -> Option<String> {
    cmd::stdout(Command::new(bin).arg("--version")).ok()
}

fn ensure_bpf_linker(toolchain: &str) -> Result<String> {
    if let Some(bin) = bpf_linker_path()
        && let Some(version) = bpf_linker_version(&bin)
        && version.split_whitespace().any(|w| w == BPF_LINKER_VERSION)
    {
        if cmd::which("bpf-linker").is_none() {
            eprintln!(
                "xtask: warning: {} is not on PATH; add its directory so the eBPF build finds it",
                bin.display()
            );
        }
        return Ok("ok (already present)".into());
    }

    // bpf-linker must use the very LLVM the nightly's rustc emits bitcode
    // for, so link it against the libLLVM shipped in that toolchain's
    // sysroot instead of a system LLVM.
    let sysroot = PathBuf::from(cmd::stdout(
        rustup()?.args(["run", toolchain, "rustc", "--print", "sysroot"]),
    )?);
    let libdir = sysroot.join("lib");
    let lib = find_libllvm(&libdir)?;
    let verbose = cmd::stdout(rustup()?.args(["run", toolchain, "rustc", "-vV"]))?;
    let major = llvm_major(&verbose)
        .with_context(|| format!("no `LLVM version:` line in `rustc -vV` of {toolchain}"))?;
    let rustflags = format!(
        "-C link-arg={} -C link-arg=-Wl,-rpath,{}",
        lib.display(),
        libdir.display()
    );
    cmd::run(
        cmd::cargo()
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--no-default-features",
                "--features",
                &format!("llvm-{major},no-llvm-linking"),
            ])
            .env("RUSTFLAGS", &rustflags)
            // A shared target dir would be rebuilt with these RUSTFLAGS and
            // then again for the workspace: let cargo install use its own.
            .env_remove("CARGO_TARGET_DIR"),
    )?;
    let bin = bpf_linker_path().context("cargo install succeeded but bpf-linker is not found")?;
    let version = bpf_linker_version(&bin)
        .with_context(|| format!("{} --version failed after install", bin.display()))?;
    if cmd::which("bpf-linker").is_none() {
        eprintln!(
            "xtask: warning: {} is not on PATH; add its directory so the eBPF build finds it",
            bin.display()
        );
    }
    Ok(format!(
        "installed ({version}, LLVM {major} from {})",
        lib.display()
    ))
}

fn find_libllvm(libdir: &Path) -> Result<PathBuf> {
    let mut libs: Vec<PathBuf> = fs::read_dir(libdir)
        .with_context(|| format!("listing {}", libdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .collect();
    libs.sort();
    libs.pop()
        .with_context(|| format!("no libLLVM.so.* in {}", libdir.display()))
}

/// The major version from rustc's `LLVM version: 22.1.4` line.
fn llvm_major(rustc_vv: &str) -> Option<u32> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version:"))
        .and_then(|v| v.trim().split('.').next())
        .and_then(|m| m.parse().ok())
}

/// BTF and the unified cgroup hierarchy are needed by the tracer, not by
/// setup; a machine without them gets a warning here and clear failures in
/// the tests.
#[expect(clippy::unnecessary_wraps, reason = "the shape `step` takes")]
fn check_kernel() -> Result<String> {
    let mut missing = Vec::new();
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        missing.push("no /sys/kernel/btf/vmlinux (kernel built without BTF)");
    }
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        && !Path::new("/sys/fs/cgroup/unified/cgroup.controllers").exists()
    {
        missing.push("no cgroup v2 (unified) hierarchy under /sys/fs/cgroup");
    }
    if missing.is_empty() {
        Ok("ok".into())
    } else {
        Ok(format!(
            "WARNING: {}; roprof will not work here",
            missing.join("; ")
        ))
    }
}

fn docker_answers() -> bool {
    cmd::succeeds(&mut cmd::docker(["version"]))
}

fn ensure_docker() -> Result<String> {
    let mut did = Vec::new();
    if cmd::which("dockerd").is_none() || cmd::which("docker").is_none() {
        cmd::apt_install(&["docker.io"], "the Docker engine")?;
        did.push("installed docker.io");
    }
    if docker_answers() {
        if did.is_empty() {
            return Ok("ok (already running)".into());
        }
        did.push("running");
        return Ok(did.join(", "));
    }
    start_dockerd()?;
    did.push("started dockerd");
    Ok(format!("{} (log: {DOCKERD_LOG})", did.join(", ")))
}

/// Starts dockerd in its own session, detached from xtask so it keeps running
/// after xtask exits (there is no systemd to own it), and waits until it
/// answers.
fn start_dockerd() -> Result<()> {
    if !cmd::is_root() {
        bail!(
            "dockerd is not running and only root can start it; start it (as root: dockerd &) and run this again"
        );
    }
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(DOCKERD_LOG)
        .with_context(|| format!("opening {DOCKERD_LOG}"))?;
    let log_err = log
        .try_clone()
        .context("duplicating the dockerd log handle")?;
    eprintln!("  $ setsid dockerd >>{DOCKERD_LOG} 2>&1 &");
    let mut child = Command::new("setsid")
        .arg("dockerd")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .context("could not start `setsid dockerd`")?;
    let started = Instant::now();
    while started.elapsed() < DOCKERD_WAIT {
        if docker_answers() {
            return Ok(());
        }
        if let Some(status) = child.try_wait().context("waiting for dockerd")? {
            bail!(
                "dockerd exited ({status}) before answering; last lines of {DOCKERD_LOG}:\n{}",
                log_tail()
            );
        }
        thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "dockerd did not answer within {} s; last lines of {DOCKERD_LOG}:\n{}",
        DOCKERD_WAIT.as_secs(),
        log_tail()
    )
}

fn log_tail() -> String {
    let text = fs::read_to_string(DOCKERD_LOG).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_toolchain_of_the_real_build_script() {
        let tc = ebpf_toolchain().expect("profiler/build.rs names EBPF_TOOLCHAIN");
        assert!(
            tc.starts_with("nightly-"),
            "expected a dated nightly, got {tc}"
        );
    }

    #[test]
    fn parses_toolchain_constant() {
        for (src, want) in [
            (
                "const EBPF_TOOLCHAIN: &str = \"nightly-2026-05-20\";",
                Some("nightly-2026-05-20"),
            ),
            (
                "  pub const EBPF_TOOLCHAIN:&str=\"nightly\";",
                Some("nightly"),
            ),
            ("// const EBPF_TOOLCHAIN: &str = \"old\";", None),
            ("const EBPF_TOOLCHAIN: &str = \"\";", None),
            ("// nothing here", None),
        ] {
            assert_eq!(parse_ebpf_toolchain(src).as_deref(), want, "source: {src}");
        }
    }

    #[test]
    fn parses_llvm_major() {
        let vv = "rustc 1.97.0-nightly\nbinary: rustc\nLLVM version: 22.1.4\n";
        assert_eq!(llvm_major(vv), Some(22));
        assert_eq!(llvm_major("rustc 1.95.0\n"), None, "no LLVM line");
    }
}
