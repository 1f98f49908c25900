//! Real servers under their own load generators (issue 33): what users of
//! a traced node feel, in requests per second, rather than a syscall loop.
//!
//! redis (the bundled fixture, Debian's package) is driven by Debian's
//! `redis-benchmark` run inside its own container against 127.0.0.1
//! (`docker exec`, so no bridge address is involved), in three variants
//! interleaved as the overhead benchmark's are: untraced; profiled (roprof
//! profiles that very container: the server and the load generator are
//! both its processes, as a sidecar would be); and as a neighbour (roprof
//! profiles another, idle container).

use std::{thread, time::Duration, time::Instant};

use anyhow::{Context as _, Result, bail};

use crate::{
    attached, cmd,
    docker::image_name,
    schema::{Sizes, Workload, WorkloadResult, WorkloadVariant},
    util,
};

/// The load: `redis-benchmark` flags (without `-n`).
const REDIS_LOAD: [&str; 6] = ["-q", "-t", "set,get", "-c", "50", "--csv"];

/// Runs the redis workload's variants, `sizes.reps` interleaved rounds.
pub fn run(roprof: &std::path::Path, sizes: &Sizes) -> Result<Vec<Workload>> {
    let image = image_name("redis");
    let requests = sizes.redis_requests.to_string();
    let mut runs: Vec<(WorkloadVariant, Vec<f64>)> = WorkloadVariant::ALL
        .iter()
        .map(|v| (*v, Vec::new()))
        .collect();
    for rep in 0..sizes.reps {
        for i in 0..WorkloadVariant::ALL.len() {
            let v = WorkloadVariant::ALL[(rep + i) % WorkloadVariant::ALL.len()];
            eprintln!(
                "roprof-bench: redis rep {}/{}: {}",
                rep + 1,
                sizes.reps,
                v.key()
            );
            let rps = run_variant(v, roprof, &image, &requests)
                .with_context(|| format!("redis workload, {}", v.key()))?;
            eprintln!("roprof-bench:   {rps:.0} requests/s");
            if let Some(r) = runs.iter_mut().find(|(x, _)| *x == v) {
                r.1.push(rps);
            }
        }
    }
    let variants = runs
        .into_iter()
        .map(|(variant, runs)| WorkloadResult {
            variant,
            summary: util::summary(&runs),
            runs,
        })
        .collect();
    Ok(vec![Workload {
        name: "redis".into(),
        load: format!(
            "redis-benchmark {} -n {requests} (inside the container, against 127.0.0.1:6379; \
             the mean of SET and GET)",
            REDIS_LOAD.join(" ")
        ),
        unit: "requests/s".into(),
        variants,
    }])
}

fn run_variant(v: WorkloadVariant, roprof: &std::path::Path, image: &str, n: &str) -> Result<f64> {
    match v {
        WorkloadVariant::Untraced => {
            let id = cmd::stdout(&mut cmd::docker(["run", "-d", "--rm", image]))?;
            let res = bench_in(&id, n);
            let _ = cmd::output(&mut cmd::docker(["rm", "-f", id.as_str()]));
            res
        }
        WorkloadVariant::Profiled => {
            let (tool, id) = attached::profiled(roprof, image)?;
            let res = bench_in(&id, n);
            tool.stop()?;
            res
        }
        WorkloadVariant::Neighbour => {
            let tool = attached::neighbour(roprof)?;
            let id = cmd::stdout(&mut cmd::docker(["run", "-d", "--rm", image]));
            let res = id.and_then(|id| {
                let r = bench_in(&id, n);
                let _ = cmd::output(&mut cmd::docker(["rm", "-f", id.as_str()]));
                r
            });
            tool.stop()?;
            res
        }
    }
}

/// Waits for redis in container `id` to answer, then runs the load there:
/// the mean of its SET and GET requests per second.
fn bench_in(id: &str, n: &str) -> Result<f64> {
    if id.is_empty() {
        bail!("no container to run redis-benchmark in");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cmd::stdout(&mut cmd::docker(["exec", id, "redis-cli", "ping"]))
        .is_ok_and(|o| o == "PONG")
    {
        if Instant::now() > deadline {
            bail!("redis in {id} did not answer PING within 30 s");
        }
        thread::sleep(Duration::from_millis(200));
    }
    let mut args = vec!["exec", id, "redis-benchmark"];
    args.extend(REDIS_LOAD);
    args.extend(["-n", n]);
    let out = cmd::stdout(&mut cmd::docker(args))?;
    csv_rps(&out)
}

/// The mean requests per second of `redis-benchmark --csv` lines
/// (`"SET","85034.01",…`).
fn csv_rps(out: &str) -> Result<f64> {
    let rates: Vec<f64> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split(',').map(|x| x.trim_matches('"'));
            let test = f.next()?;
            let rps: f64 = f.next()?.parse().ok()?;
            matches!(test, "SET" | "GET").then_some(rps)
        })
        .collect();
    if rates.is_empty() {
        bail!("no SET/GET rate in redis-benchmark's output: {out}");
    }
    #[expect(clippy::cast_precision_loss, reason = "two rates")]
    Ok(rates.iter().sum::<f64>() / rates.len() as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn redis_benchmark_csv_is_read() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"80000.00\",\"0.3\"\n\"GET\",\"100000.00\",\"0.2\"";
        assert!((super::csv_rps(out).unwrap() - 90_000.0).abs() < 1e-6);
        assert!(super::csv_rps("nothing").is_err());
    }
}
