//! `roprof doctor`: can this host profile? One line per check on stdout
//! (✓ pass, ! warning, ✗ blocker, with the remedy under each warning or
//! blocker), then the verdict; exit 1 naming the first blocker.

use clap::Args;

use roprof::doctor::{self, DEFAULT_RING_BYTES};

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check free memory for a ring buffer of this size (as `profile
    /// --ringbuf-bytes`; default 4 MiB).
    #[arg(long, value_name = "BYTES")]
    pub ringbuf_bytes: Option<u32>,
}

/// Runs every check, prints the checklist; 0 when profiling can work.
pub async fn run(args: &DoctorArgs) -> anyhow::Result<i32> {
    let ring = args.ringbuf_bytes.map_or(DEFAULT_RING_BYTES, u64::from);
    let checks = doctor::run_all(ring).await;
    for c in &checks {
        println!("{c}");
    }
    Ok(if let Some(b) = doctor::first_blocker(&checks) {
        println!(
            "roprof cannot profile on this host; first blocker: {}",
            b.id.title()
        );
        1
    } else {
        println!("roprof can profile on this host");
        0
    })
}
