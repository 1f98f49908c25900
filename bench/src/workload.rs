//! Real servers under their own load generators (issue 33): what users of
//! a traced node feel, in requests or transactions per second, rather than
//! a syscall loop.
//!
//! Each server of [`WorkloadServer`] (redis, nginx, postgres, Debian's
//! packages in the fixtures) runs in a fresh container per run, loaded by
//! its own tool inside that container ([`crate::load`]), in every
//! [`WorkloadVariant`], interleaved as the overhead benchmark's variants
//! are (repetition r starts at variant r, so none always runs first):
//! untraced; profiled (roprof profiles that very container: the server and
//! the load generator, both its processes, pay the hooks); neighbour
//! (roprof profiles another, idle container); watch (`roprof watch` on the
//! host selects the server's container by a label and profiles it from its
//! start); and the floors (the bench's empty programs on every hook roprof
//! attaches, or on `sys_exit` alone), against which each figure can be read.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::{
    attached, cmd,
    docker::image_name,
    floor::Floor,
    load,
    schema::{Sizes, Workload, WorkloadResult, WorkloadServer, WorkloadVariant},
    util,
};

/// How long `roprof watch` gets to say it profiles a new container.
const WATCH_PICKS_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs every server's variants, `sizes.reps` interleaved rounds each.
pub fn run(roprof: &Path, sizes: &Sizes, work: &Path) -> Result<Vec<Workload>> {
    WorkloadServer::ALL
        .iter()
        .map(|&s| run_server(s, roprof, sizes, work))
        .collect()
}

fn run_server(
    server: WorkloadServer,
    roprof: &Path,
    sizes: &Sizes,
    work: &Path,
) -> Result<Workload> {
    let image = image_name(server.fixture());
    let all = WorkloadVariant::ALL;
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); all.len()];
    // The first container of an image pays for what later ones find in the
    // page cache (the first pgbench ran at a sixth of the others' rate):
    // one untraced run first, not counted.
    eprintln!("roprof-bench: {} warm-up (not counted)", server.key());
    let warm = run_variant(
        WorkloadVariant::Untraced,
        server,
        roprof,
        &image,
        sizes,
        work,
    )
    .with_context(|| format!("{} workload, warm-up", server.key()))?;
    eprintln!("roprof-bench:   {warm:.0} {}", server.unit());
    for rep in 0..sizes.reps {
        for i in 0..all.len() {
            let idx = (rep + i) % all.len();
            let v = all[idx];
            eprintln!(
                "roprof-bench: {} rep {}/{}: {}",
                server.key(),
                rep + 1,
                sizes.reps,
                v.key()
            );
            let figure = run_variant(v, server, roprof, &image, sizes, work)
                .with_context(|| format!("{} workload, {}", server.key(), v.key()))?;
            eprintln!("roprof-bench:   {figure:.0} {}", server.unit());
            runs[idx].push(figure);
        }
    }
    let variants = all
        .iter()
        .zip(runs)
        .map(|(&variant, runs)| WorkloadResult {
            variant,
            summary: util::summary(&runs),
            runs,
        })
        .collect();
    Ok(Workload {
        name: server,
        image: Some(image),
        load: load::describe(server, sizes),
        unit: server.unit().into(),
        variants,
    })
}

fn run_variant(
    v: WorkloadVariant,
    server: WorkloadServer,
    roprof: &Path,
    image: &str,
    sizes: &Sizes,
    work: &Path,
) -> Result<f64> {
    let measure = |id: &str| load::measure(server, id, sizes);
    match v {
        WorkloadVariant::Untraced => in_container(image, &[], measure),
        WorkloadVariant::Floor | WorkloadVariant::FloorSysExit => {
            let floor = if v == WorkloadVariant::Floor {
                Floor::attach()?
            } else {
                Floor::attach_only(&[roprof_bench_ebpf::SYS_EXIT_HOOK])?
            };
            let res = in_container(image, &[], measure);
            drop(floor);
            res
        }
        WorkloadVariant::Profiled => {
            let (tool, id) = attached::profiled(roprof, image)?;
            let res = measure(&id);
            tool.stop()?;
            res
        }
        WorkloadVariant::Neighbour => {
            let tool = attached::neighbour(roprof)?;
            let res = in_container(image, &[], measure);
            tool.stop()?;
            res
        }
        WorkloadVariant::Watch => {
            let dir = work.join(format!("watch-{}", server.key()));
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
            let label = format!("roprof-bench.watch={}", std::process::id());
            let mut tool = attached::watch(roprof, &label, &dir)?;
            let res = in_container(image, &["--label", &label], |id| {
                // Its cgroup is picked up as the container starts; the
                // load waits until watch says it profiles it.
                tool.wait_for("roprof: profiling container", WATCH_PICKS_UP)
                    .with_context(|| format!("roprof watch did not pick up {id}"))?;
                measure(id)
            });
            tool.stop()?;
            res
        }
    }
}

/// `docker run -d --rm ARGS IMAGE`, `f` with its id, then its removal
/// (however `f` ends).
fn in_container(image: &str, args: &[&str], f: impl FnOnce(&str) -> Result<f64>) -> Result<f64> {
    let mut words = vec!["run", "-d", "--rm"];
    words.extend(args);
    words.push(image);
    let id = cmd::stdout(&mut cmd::docker(words))?;
    let _cleanup = util::Cleanup {
        containers: vec![id.clone()],
        volumes: vec![],
    };
    f(&id)
}
