//! What a run did not cover, stated by every output: a `# roprof: WARNING:`
//! comment at the top of the docker, compose and Kubernetes outputs, a
//! warning in the table and Markdown, and `run.caveats` in the JSON. A
//! closed set: each kind names what was missed and what to do about it.

use serde::{Deserialize, Serialize};

/// One thing the observed run did not cover.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Caveat {
    /// `--probe` never answered during the observed run: whatever the
    /// application writes when it serves a request is not in the plan.
    ProbeNeverAnswered {
        /// The probe, as given (`http://127.0.0.1:8080/`, `tcp:6379`).
        probe: String,
    },
    /// A process of the container was asleep with a wake-up due after the
    /// window ended: what it writes then is not in the plan.
    WakeupAfterWindow {
        /// The program (`comm`).
        program: String,
        /// Its process id on the host.
        pid: u32,
        /// The syscall it sleeps in (`clock_nanosleep`, `epoll_wait`, …).
        syscall: String,
        /// When the wake-up is due, in seconds after the container started.
        due_secs: f64,
    },
    /// The container listened and accepted no connection during the window:
    /// request-time writes are not in the plan.
    NoRequestServed {
        /// What it listened on (`tcp/80`, `udp/53`).
        ports: Vec<String>,
    },
}

impl std::fmt::Display for Caveat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caveat::ProbeNeverAnswered { probe } => write!(
                f,
                "the probe {probe} never answered during the observed run: writes made while \
                 serving a request are not in this plan (check the probe's address and port)"
            ),
            Caveat::WakeupAfterWindow {
                program,
                pid,
                syscall,
                due_secs,
            } => write!(
                f,
                "{program} (pid {pid}) was asleep in {syscall} with a wake-up due at \
                 +{due_secs:.1} s, after the window ended: what it writes then is not in this \
                 plan (profile with a longer --duration)"
            ),
            Caveat::NoRequestServed { ports } => write!(
                f,
                "the container listened on {} and accepted no connection: writes made while \
                 serving a request are not in this plan (profile with --probe or --exercise)",
                ports.join(", ")
            ),
        }
    }
}
