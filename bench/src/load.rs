//! The load generators of §4, one per [`WorkloadServer`]: each runs inside
//! the server's own container through `docker exec` against 127.0.0.1 (or
//! postgres's Unix socket): no bridge address, no published port, no
//! userland proxy in the path, so
//! that where roprof traces the container it traces the load generator too,
//! as it would a sidecar. Every tool is Debian's package, in the fixture.

use std::{
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, schema::Sizes, schema::WorkloadServer};

/// `redis-benchmark` flags (without `-n`).
const REDIS_LOAD: [&str; 6] = ["-q", "-t", "set,get", "-c", "50", "--csv"];
/// `wrk` flags (without `-d` and the URL): two threads (the machine's
/// cores), 32 connections.
const WRK_LOAD: [&str; 4] = ["-t", "2", "-c", "32"];
/// `pgbench` flags (without `-T`): the default TPC-B-like script, 4
/// clients on 2 threads, over the fixture's Unix socket (peer
/// authentication as postgres; its loopback TCP wants a password).
const PGBENCH_LOAD: [&str; 4] = ["-c", "4", "-j", "2"];
/// How long a started server gets to answer.
const READY_WITHIN: Duration = Duration::from_mins(1);

/// The load of `server` as bench.md describes it.
pub fn describe(server: WorkloadServer, sizes: &Sizes) -> String {
    match server {
        WorkloadServer::Redis => format!(
            "`redis-benchmark {} -n {}` against 127.0.0.1:6379; the figure is the mean of its \
             SET and GET rates",
            REDIS_LOAD.join(" "),
            sizes.redis_requests
        ),
        WorkloadServer::Nginx => format!(
            "`wrk {} -d {}s http://127.0.0.1:80/` (Debian's default page; every request is logged \
             to /var/log/nginx/access.log); the figure is wrk's `Requests/sec`, and a run with \
             any socket error or non-2xx response fails",
            WRK_LOAD.join(" "),
            sizes.wrk_secs
        ),
        WorkloadServer::Postgresql => format!(
            "`pgbench {} -T {} postgres` over the Unix socket in /var/run/postgresql (the \
             default TPC-B-like transaction, fsync on) after `pgbench -i -s {} postgres` once \
             per container, outside the timed part; the figure \
             is pgbench's `tps` without the initial connection time, and a run with a failed \
             transaction fails",
            PGBENCH_LOAD.join(" "),
            sizes.pgbench_secs,
            sizes.pgbench_scale
        ),
    }
}

/// Waits for the server in container `id` to answer, prepares what the
/// load needs (untimed), then runs the load once: its figure.
pub fn measure(server: WorkloadServer, id: &str, sizes: &Sizes) -> Result<f64> {
    if id.is_empty() {
        bail!("no {} container to load", server.key());
    }
    wait_ready(server, id)?;
    let exec = |tool: &str, args: &[&str]| {
        let mut words = vec!["exec", id, tool];
        words.extend(args);
        cmd::stdout(&mut cmd::docker(words))
    };
    match server {
        WorkloadServer::Redis => {
            let n = sizes.redis_requests.to_string();
            let mut args = REDIS_LOAD.to_vec();
            args.extend(["-n", &n]);
            redis_rps(&exec("redis-benchmark", &args)?)
        }
        WorkloadServer::Nginx => {
            let d = format!("{}s", sizes.wrk_secs);
            let mut args = WRK_LOAD.to_vec();
            args.extend(["-d", &d, "http://127.0.0.1:80/"]);
            wrk_rps(&exec("wrk", &args)?)
        }
        WorkloadServer::Postgresql => {
            let s = sizes.pgbench_scale.to_string();
            exec("pgbench", &["-i", "-q", "-s", &s, "postgres"]).context("pgbench -i")?;
            let t = sizes.pgbench_secs.to_string();
            let mut args = PGBENCH_LOAD.to_vec();
            args.extend(["-T", &t, "postgres"]);
            pgbench_tps(&exec("pgbench", &args)?)
        }
    }
}

/// Polls the server's own client in the container until it answers.
fn wait_ready(server: WorkloadServer, id: &str) -> Result<()> {
    let probe: &[&str] = match server {
        WorkloadServer::Redis => &["redis-cli", "ping"],
        WorkloadServer::Nginx => &["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1/"],
        WorkloadServer::Postgresql => &["pg_isready", "-q"],
    };
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let mut words = vec!["exec", id];
        words.extend(probe);
        if cmd::succeeds(&mut cmd::docker(words)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} in {id} did not answer `{}` within {READY_WITHIN:?}",
                server.key(),
                probe.join(" ")
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The mean requests per second of `redis-benchmark --csv` lines
/// (`"SET","85034.01",…`).
fn redis_rps(out: &str) -> Result<f64> {
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

/// wrk's `Requests/sec:` figure; an error when it counted failed sockets
/// or non-2xx/3xx responses (a rate of errors is not a server's rate).
fn wrk_rps(out: &str) -> Result<f64> {
    if let Some(bad) = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Socket errors:") || l.starts_with("Non-2xx or 3xx responses:"))
    {
        bail!("wrk saw errors ({bad}):\n{out}");
    }
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:")?.trim().parse().ok())
        .with_context(|| format!("no `Requests/sec:` in wrk's output:\n{out}"))
}

/// pgbench's `tps = N (without initial connection time)`; an error when a
/// transaction failed.
fn pgbench_tps(out: &str) -> Result<f64> {
    let failed = out.lines().find_map(|l| {
        let n = l.trim().strip_prefix("number of failed transactions:")?;
        n.split_whitespace().next()?.parse::<u64>().ok()
    });
    if failed.is_some_and(|n| n > 0) {
        bail!("pgbench counted failed transactions:\n{out}");
    }
    out.lines()
        .find_map(|l| {
            let rest = l.trim().strip_prefix("tps = ")?;
            let (n, why) = rest.split_once(' ')?;
            why.contains("without initial connection time")
                .then(|| n.parse().ok())
                .flatten()
        })
        .with_context(|| format!("no `tps = … (without initial connection time)` in:\n{out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_is_read() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\"\n\"SET\",\"80000.00\",\"0.3\"\n\"GET\",\"100000.00\",\"0.2\"";
        assert!((redis_rps(out).unwrap() - 90_000.0).abs() < 1e-6);
        assert!(redis_rps("nothing").is_err());
    }

    /// wrk 4.1.0's output (Debian 12).
    const WRK: &str = "Running 3s test @ http://127.0.0.1/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  652.11us  12.84ms   80.13%
    Req/Sec    10.62k     1.02k   12.46k    68.33%
  63430 requests in 3.00s, 51.41MB read
Requests/sec:  21123.86
Transfer/sec:     17.12MB";

    #[test]
    fn wrk_rate_is_read_and_errors_refused() {
        assert!((wrk_rps(WRK).unwrap() - 21_123.86).abs() < 1e-6);
        let errors = WRK.replace(
            "Requests/sec",
            "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec",
        );
        assert!(wrk_rps(&errors).is_err(), "socket errors fail the run");
        let non2xx = WRK.replace(
            "Requests/sec",
            "  Non-2xx or 3xx responses: 12\nRequests/sec",
        );
        assert!(wrk_rps(&non2xx).is_err(), "error responses fail the run");
        assert!(wrk_rps("nothing").is_err());
    }

    /// pgbench 15's output (Debian 12).
    const PGBENCH: &str = "pgbench (15.10 (Debian 15.10-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 1
query mode: simple
number of clients: 4
number of threads: 2
maximum number of tries: 1
duration: 5 s
number of transactions actually processed: 2345
number of failed transactions: 0 (0.000%)
latency average = 8.529 ms
initial connection time = 9.731 ms
tps = 468.998416 (without initial connection time)";

    #[test]
    fn pgbench_tps_is_read_and_failures_refused() {
        assert!((pgbench_tps(PGBENCH).unwrap() - 468.998_416).abs() < 1e-6);
        let failed = PGBENCH.replace(
            "failed transactions: 0 (0.000%)",
            "failed transactions: 3 (0.128%)",
        );
        assert!(pgbench_tps(&failed).is_err());
        assert!(pgbench_tps("tps = 12 (including connections establishing)").is_err());
    }
}
