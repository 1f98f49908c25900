//! `roprof watch`: the node-agent mode (see [`roprof::watch`]).

use std::{path::PathBuf, time::Duration};

use clap::Args;

use roprof::request::EXIT_LOSS;

use super::parse_duration;
use roprof::watch::{self, Filter, RuntimeKind, WatchConfig};

/// Which runtime `watch` follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// Docker's Engine API (also Podman's: set `DOCKER_HOST` to its socket).
    Docker,
    /// containerd's own API (Kubernetes nodes, `ctr`).
    Containerd,
}

/// The runtime a node agent (`watch`, `guard`) follows.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// The runtime whose containers are followed.
    #[arg(long, value_enum, default_value = "docker")]
    pub runtime: Runtime,
    /// containerd's gRPC socket (`--runtime containerd`).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/containerd/containerd.sock"
    )]
    pub containerd_socket: PathBuf,
    /// containerd namespace (`k8s.io` is the kubelet's).
    #[arg(long, value_name = "NS", default_value = "k8s.io")]
    pub namespace: String,
}

impl RuntimeArgs {
    /// The library's name for the runtime asked for.
    #[must_use]
    pub fn kind(&self) -> RuntimeKind {
        match self.runtime {
            Runtime::Docker => RuntimeKind::Docker,
            Runtime::Containerd => RuntimeKind::Containerd {
                socket: self.containerd_socket.clone(),
                namespace: self.namespace.clone(),
            },
        }
    }
}

/// Arguments of `watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Write one directory per container (`DIR/<name>/report.json` and
    /// every format) and one per workload whose replicas were seen.
    #[arg(short = 'o', long = "output-dir", value_name = "DIR")]
    pub output_dir: PathBuf,
    /// Profile only containers with this label (`KEY=VALUE`, or `KEY` for
    /// any value); repeat to require several.
    #[arg(long = "label", value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,
    /// Profile only containers whose name matches (`*` and `?`); for CRI
    /// containers the name is `<namespace>_<pod>_<container>`.
    #[arg(long = "name", value_name = "GLOB")]
    pub name: Option<String>,
    /// The runtime and how to reach it.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Stop after this long (default: at SIGINT/SIGTERM).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Kernel ring buffer size in bytes (power of two).
    #[arg(long, value_name = "BYTES")]
    pub ringbuf_bytes: Option<u32>,
    /// Exit 0 even when events were lost or paths truncated.
    #[arg(long)]
    pub allow_loss: bool,
    /// Only the summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `watch`. SIGINT/SIGTERM is its normal end (exit 0): the reports of
/// containers still running are written, marked incomplete.
pub async fn run(args: &WatchArgs) -> anyhow::Result<i32> {
    let filter = Filter::parse(&args.label, args.name.as_deref())?;
    let runtime = args.runtime.kind();
    roprof::doctor::preflight(args.ringbuf_bytes)?;
    let summary = watch::run(&WatchConfig {
        runtime,
        filter,
        out_dir: args.output_dir.clone(),
        duration: args.duration,
        ringbuf_bytes: args.ringbuf_bytes,
        quiet: args.quiet,
    })
    .await?;
    eprintln!(
        "roprof: watch wrote {} container report(s) and {} merged workload plan(s) to {}; {} other container(s) were not selected",
        summary.containers.len(),
        summary.merged.len(),
        args.output_dir.display(),
        summary.ignored
    );
    for d in summary.merged.iter().chain(&summary.containers) {
        println!("{}", d.display());
    }
    if !summary.losses.is_clean() {
        eprintln!(
            "roprof: events were lost or paths truncated: {}",
            summary.losses
        );
        if !args.allow_loss {
            return Ok(EXIT_LOSS);
        }
    }
    Ok(0)
}
