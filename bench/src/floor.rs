//! The floor row: the bench loads its own object (the `floor` binary of
//! `roprof-bench-ebpf`, built by build.rs) and attaches its empty programs
//! to the raw tracepoints roprof hooks, for as long as the returned value
//! lives. roprof's shipped object does not carry them, and roprof has no
//! subcommand for them.

use anyhow::{Context as _, Result, bail};
use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{BtfTracePoint, RawTracePoint},
};
use roprof_bench_ebpf::{FLOOR_PROGRAMS, ROPROF_HOOKS};

/// The floor object, empty when built with `AYA_BUILD_SKIP`.
static FLOOR_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/floor"));

/// The floor programs, attached; dropping this detaches and unloads them.
pub struct Floor {
    _ebpf: Ebpf,
}

impl Floor {
    /// Loads the floor object and attaches the empty programs of the hooks
    /// roprof uses (`ROPROF_HOOKS`: `sys_exit`, the process and cgroup
    /// tracepoints, `hrtimer_start`).
    pub fn attach() -> Result<Self> {
        Self::attach_only(&ROPROF_HOOKS)
    }

    /// Loads the floor object and attaches only the programs on the
    /// tracepoints in `tps` (the single-hook floors: `sys_exit` alone,
    /// `sys_enter` alone), so every floor is measured in the same run.
    pub fn attach_only(tps: &[&str]) -> Result<Self> {
        if FLOOR_OBJECT.is_empty() {
            bail!(
                "roprof-bench was built without its floor eBPF object (AYA_BUILD_SKIP); \
                 build it with the eBPF toolchain (`cargo xtask setup`)"
            );
        }
        let mut ebpf = EbpfLoader::new()
            .load(FLOOR_OBJECT)
            .context("loading the floor eBPF object")?;
        let chosen: Vec<_> = FLOOR_PROGRAMS
            .into_iter()
            .filter(|(_, tp)| tps.contains(tp))
            .collect();
        if chosen.len() != tps.len() {
            bail!("the floor object has no program for one of {tps:?}");
        }
        let mut btf = None;
        for &(prog, tp) in &chosen {
            if let Some(name) = tp.strip_prefix("tp_btf/") {
                if btf.is_none() {
                    btf = Some(Btf::from_sys_fs().context("reading the kernel's BTF")?);
                }
                let p: &mut BtfTracePoint = ebpf
                    .program_mut(prog)
                    .with_context(|| format!("the floor object has no program `{prog}`"))?
                    .try_into()
                    .with_context(|| format!("floor program `{prog}` is not a BTF tracepoint"))?;
                p.load(name, btf.as_ref().expect("read above"))
                    .with_context(|| format!("loading floor program `{prog}`"))?;
                p.attach()
                    .with_context(|| format!("attaching floor program `{prog}` to {tp}"))?;
                continue;
            }
            let p: &mut RawTracePoint = ebpf
                .program_mut(prog)
                .with_context(|| format!("the floor object has no program `{prog}`"))?
                .try_into()
                .with_context(|| format!("floor program `{prog}` is not a raw tracepoint"))?;
            p.load()
                .with_context(|| format!("loading floor program `{prog}`"))?;
            p.attach(tp)
                .with_context(|| format!("attaching floor program `{prog}` to {tp}"))?;
        }
        eprintln!(
            "roprof-bench: floor: {} empty programs attached ({})",
            chosen.len(),
            chosen
                .iter()
                .map(|(_, tp)| *tp)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(Self { _ebpf: ebpf })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        eprintln!("roprof-bench: floor: detaching");
    }
}
