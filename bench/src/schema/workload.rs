//! The real servers' rows of bench.json: §4's servers under their own load
//! generators (issue 33) and §3's default profiles of an idle and a ticking
//! server (issue 29).

use serde::{Deserialize, Serialize};

use super::{Method, Summary};

/// A server of §4, with its load generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadServer {
    /// Debian's redis under `redis-benchmark`.
    Redis,
    /// Debian's nginx under `wrk`.
    Nginx,
    /// Debian's postgresql-15 under `pgbench`.
    Postgresql,
}

impl WorkloadServer {
    /// Every server, in the order they are measured.
    pub const ALL: [Self; 3] = [Self::Redis, Self::Nginx, Self::Postgresql];

    /// The name in bench.json and in progress lines.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Nginx => "nginx",
            Self::Postgresql => "postgresql",
        }
    }

    /// The fixture the server runs from (`cargo xtask images NAME`): the
    /// server's own, with its load generator (Debian's package) inside.
    #[must_use]
    pub fn fixture(self) -> &'static str {
        match self {
            // redis-benchmark ships with redis-server (redis-tools).
            Self::Redis => "redis",
            // The nginx fixture with wrk added (bench-only).
            Self::Nginx => "nginx-wrk",
            // pgbench ships with postgresql-15's client.
            Self::Postgresql => "postgresql",
        }
    }

    /// What the figures count.
    #[must_use]
    pub fn unit(self) -> &'static str {
        match self {
            Self::Redis | Self::Nginx => "requests/s",
            Self::Postgresql => "transactions/s",
        }
    }
}

/// A real server under its own load generator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The server.
    pub name: WorkloadServer,
    /// Its image (absent before V2: `roprof-fixture/redis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The load and how it is measured.
    pub load: String,
    /// What the figures count (`requests/s`).
    pub unit: String,
    /// Every variant's repetitions.
    pub variants: Vec<WorkloadResult>,
}

impl Workload {
    /// A variant's median, if it was measured.
    #[must_use]
    pub fn median(&self, v: WorkloadVariant) -> Option<f64> {
        self.variants
            .iter()
            .find(|r| r.variant == v)
            .and_then(|r| r.summary.map(|s| s.median))
    }
}

/// One variant of a real-server row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadResult {
    pub variant: WorkloadVariant,
    /// Each repetition's figure, in run order.
    pub runs: Vec<f64>,
    pub summary: Option<Summary>,
}

/// How the server ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadVariant {
    /// No roprof.
    Untraced,
    /// roprof profiling the server's own container.
    Profiled,
    /// roprof profiling another, idle container.
    Neighbour,
    /// `roprof watch` on the host, which profiles the server's container
    /// from its start (it is selected by a label).
    Watch,
    /// The bench's empty programs on every hook roprof attaches.
    Floor,
    /// The empty program on `sys_exit` alone.
    FloorSysExit,
}

impl WorkloadVariant {
    /// Every variant, in the order a repetition starts from.
    pub const ALL: [Self; 6] = [
        Self::Untraced,
        Self::Profiled,
        Self::Neighbour,
        Self::Watch,
        Self::Floor,
        Self::FloorSysExit,
    ];

    /// The name in bench.json and in progress lines.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Untraced => "untraced",
            Self::Profiled => "profiled",
            Self::Neighbour => "neighbour",
            Self::Watch => "watch",
            Self::Floor => "floor",
            Self::FloorSysExit => "floor_sys_exit",
        }
    }

    /// The row's label in bench.md.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Untraced => "untraced (baseline)",
            Self::Profiled => "its own container profiled by roprof",
            Self::Neighbour => "roprof profiling another container (neighbour)",
            Self::Watch => "`roprof watch` profiling it from its start",
            Self::Floor => "empty programs on roprof's hooks (floor)",
            Self::FloorSysExit => "empty program on `sys_exit` only (single-hook floor)",
        }
    }
}

/// A server of §3's default-profile rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerServer {
    Memcached,
    Redis,
}

impl AnswerServer {
    /// Every server, in the order they are measured.
    pub const ALL: [Self; 2] = [Self::Memcached, Self::Redis];

    /// The name in bench.json, progress lines and the fixture's.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Memcached => "memcached",
            Self::Redis => "redis",
        }
    }

    #[must_use]
    pub fn behaviour(self) -> Behaviour {
        match self {
            Self::Memcached => Behaviour::Idle,
            Self::Redis => Behaviour::Ticking,
        }
    }
}

/// What a server does when nobody talks to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Sleeps in `epoll_wait` until a client comes (memcached).
    Idle,
    /// Wakes on a timer (redis's `serverCron`, ten times a second).
    Ticking,
}

impl Behaviour {
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Ticking => "ticking",
        }
    }
}

/// One server's default `roprof profile IMAGE` against `docker run -d` +
/// `docker stop` of the same image, interleaved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerAnswer {
    pub server: AnswerServer,
    pub behaviour: Behaviour,
    pub image: String,
    /// How `docker run` + `docker stop` decides the server is up.
    pub probe: String,
    pub profile_secs: Option<Summary>,
    pub run_stop_secs: Option<Summary>,
    pub attempts: Vec<ServerAttempt>,
}

impl ServerAnswer {
    /// Median of `roprof profile` minus median of run + stop.
    #[must_use]
    pub fn difference(&self) -> Option<f64> {
        Some(self.profile_secs?.median - self.run_stop_secs?.median)
    }
}

/// One timed run of a [`ServerAnswer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerAttempt {
    /// `roprof_profile` or `docker_run_stop`.
    pub method: Method,
    pub wall_secs: f64,
    /// roprof's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why roprof's window ended and how long it observed (its report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_secs: Option<f64>,
    /// Whether the server answered its probe before `docker stop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered: Option<bool>,
}
