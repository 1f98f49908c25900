//! What a run observed about one path: the operations ([`Op`]) with
//! their outcomes, and the processes that did them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CPath, ErrorCounts, OpMap, errno};

/// A write-type (or write-related) operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// open/openat/openat2/creat with write intent (no `O_CREAT`).
    OpenWrite,
    /// open with `O_CREAT` (may create the file).
    Create,
    /// mkdir.
    Mkdir,
    /// mknod.
    Mknod,
    /// Old name of a rename.
    RenameFrom,
    /// New name of a rename.
    RenameTo,
    /// New hard link.
    Link,
    /// New symlink.
    Symlink,
    /// unlink.
    Unlink,
    /// rmdir.
    Rmdir,
    /// truncate/ftruncate (or `O_TRUNC`).
    Truncate,
    /// chmod family.
    Chmod,
    /// chown family.
    Chown,
    /// utimes family.
    Utimes,
    /// setxattr family.
    Setxattr,
    /// removexattr family.
    Removexattr,
    /// bind of an `AF_UNIX` socket path.
    Bind,
    /// `access(W_OK)` probe: recorded, never a need by itself.
    AccessW,
    /// Data written (write family).
    Write,
    /// fsync/fdatasync.
    Fsync,
    /// Mapped executable.
    MmapExec,
    /// Executed.
    Exec,
}

impl Op {
    /// True for operations that need the path (or its parent) writable.
    #[must_use]
    pub fn is_write(self) -> bool {
        !matches!(self, Op::AccessW | Op::MmapExec | Op::Exec | Op::Fsync)
    }

    /// True for operations that create a new directory entry in the parent.
    #[must_use]
    pub fn creates_entry(self) -> bool {
        matches!(
            self,
            Op::Create | Op::Mkdir | Op::Mknod | Op::RenameTo | Op::Link | Op::Symlink | Op::Bind
        )
    }

    /// True for operations that remove a directory entry from the parent.
    #[must_use]
    pub fn removes_entry(self) -> bool {
        matches!(self, Op::Unlink | Op::Rmdir | Op::RenameFrom)
    }
}

/// Outcome counts for one operation on one path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStats {
    /// Successful calls.
    pub ok: u64,
    /// Failed calls by errno name (`EROFS`, `ENOENT`, …).
    #[serde(default, skip_serializing_if = "ErrorCounts::is_empty")]
    pub errors: ErrorCounts,
}

impl OpStats {
    /// Total calls.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }
}

/// A process as seen by the tracer.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcRef {
    /// Host pid (tgid).
    pub pid: u32,
    /// Command name (`comm`, at most 15 bytes); shared between the many
    /// observations one process makes.
    pub comm: Arc<str>,
    /// Real uid.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
}

/// Everything observed about one canonical path in one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "report fields users read, each a yes/no of its own (as RunMeta's)"
)]
pub struct PathObservation {
    /// Canonical container path.
    pub path: CPath,
    /// Per-operation outcome counts.
    pub ops: OpMap,
    /// Bytes passed to write-family calls.
    #[serde(default)]
    pub bytes_written: u64,
    /// Largest size the file reached.
    #[serde(default)]
    pub max_size: u64,
    /// First process that touched it (shared: a run's 100k paths are
    /// touched by a few processes).
    pub first: Arc<ProcRef>,
    /// Latest process that touched it (shared, as `first`).
    pub last: Arc<ProcRef>,
    /// The path was executed or mapped executable.
    #[serde(default)]
    pub executed: bool,
    /// fsync/fdatasync was called on it.
    #[serde(default)]
    pub fsynced: bool,
    /// The kernel could not read the full path (deeper or longer than it walks).
    #[serde(default)]
    pub truncated: bool,
    /// Mode bits passed at creation (mkdir/open `O_CREAT`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_mode: Option<u32>,
    /// Opens for writing (successful, or refused only by a read-only root)
    /// that were write-only with `O_CREAT|O_APPEND` and without `O_TRUNC`
    /// (how logs are opened).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub append_opens: u64,
    /// Opens for writing of any other kind (`O_RDWR`, `O_TRUNC`, write-only
    /// without `O_APPEND`), counted the same way.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_write_opens: u64,
    /// The run also opened the file read-only (seen in the kernel per file
    /// identity): its content is read back, so it is no log a fresh mount
    /// may drop.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_back: bool,
    /// What was running when the path was first written (absent in reports
    /// of older versions, and of `watch`, which knows no probe or exercise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<During>,
    /// Monotonic time (ns) of the path's first record in this process;
    /// 0 when unknown. Not saved: `during` is what it means.
    #[serde(skip)]
    pub first_ns: u64,
}

/// What was running when a path was first written: the part of the run
/// its write belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum During {
    /// The application starting: before its first quiet period, probe
    /// answer or exercise.
    Start,
    /// A `--probe` request that was answered.
    Probe,
    /// The `--exercise` command.
    Exercise,
    /// Nothing asked of it: after its first quiet period.
    Idle,
    /// roprof stopping the container (its shutdown handlers).
    Stop,
}

/// How many paths were first written during each part of the run.
#[must_use]
pub fn first_writes(obs: &[PathObservation]) -> std::collections::BTreeMap<During, usize> {
    let mut n = std::collections::BTreeMap::new();
    for d in obs.iter().filter_map(|o| o.during) {
        *n.entry(d).or_default() += 1;
    }
    n
}

impl During {
    /// Every value, in the order of a run.
    pub const ALL: [During; 5] = [
        During::Start,
        During::Probe,
        During::Exercise,
        During::Idle,
        During::Stop,
    ];

    /// The name users see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            During::Start => "start",
            During::Probe => "probe",
            During::Exercise => "exercise",
            During::Idle => "idle",
            During::Stop => "stop",
        }
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "the signature serde's skip_serializing_if calls"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl PathObservation {
    /// Folds `later`, an observation of the same file seen after this one
    /// (another spelling of its path, or another replica's), into this one:
    /// operation counts add up; bytes and sizes take the larger, since each
    /// side read the same file's counters; flags are set when either set
    /// them; the creation mode and first process stay this one's when it
    /// has them; the last process becomes `later`'s.
    pub fn absorb_later(&mut self, later: &PathObservation) {
        for (op, s) in &later.ops {
            let a = self.ops.entry(*op).or_default();
            a.ok += s.ok;
            for (e, n) in &s.errors {
                *a.errors.entry(e.clone()).or_default() += n;
            }
        }
        self.bytes_written = self.bytes_written.max(later.bytes_written);
        self.max_size = self.max_size.max(later.max_size);
        self.last = later.last.clone();
        self.executed |= later.executed;
        self.fsynced |= later.fsynced;
        self.truncated |= later.truncated;
        self.create_mode = self.create_mode.or(later.create_mode);
        self.append_opens += later.append_opens;
        self.other_write_opens += later.other_write_opens;
        self.read_back |= later.read_back;
        self.during = self.during.or(later.during);
        self.first_ns = match (self.first_ns, later.first_ns) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
    }

    /// The observations of several runs as one set, sorted by path: each
    /// path's observations fold into the first run's with
    /// [`absorb_later`](Self::absorb_later), in the order of `runs`. The
    /// one merge of runs (watch's replicas, `roprof merge`'s reports).
    #[must_use]
    pub fn union(runs: &[&[PathObservation]]) -> Vec<PathObservation> {
        use std::collections::{BTreeMap, btree_map::Entry};
        let mut out: BTreeMap<_, PathObservation> = BTreeMap::new();
        for obs in runs {
            for o in *obs {
                match out.entry(o.path.clone()) {
                    Entry::Vacant(v) => {
                        v.insert(o.clone());
                    }
                    Entry::Occupied(mut e) => e.get_mut().absorb_later(o),
                }
            }
        }
        out.into_values().collect()
    }

    /// True if any write-type operation on this path succeeded.
    #[must_use]
    pub fn any_write_ok(&self) -> bool {
        self.ops.iter().any(|(op, s)| op.is_write() && s.ok > 0)
    }

    /// True if any operation failed with EROFS.
    #[must_use]
    pub fn any_erofs(&self) -> bool {
        self.ops
            .values()
            .any(|s| s.errors.contains_key(errno::EROFS))
    }

    /// True when every successful change to the path was appending through
    /// write-only `O_CREAT|O_APPEND` opens, as logs are written: the old
    /// content is never read back through a write handle, truncated,
    /// renamed or removed, and a missing file is created, so a fresh empty
    /// directory does as well as the image's copy. A file the run also
    /// opened read-only (`read_back`) is not: its shipped content is read.
    #[must_use]
    pub fn append_only(&self) -> bool {
        self.append_opens > 0
            && self.other_write_opens == 0
            && !self.read_back
            && self.ops.iter().all(|(op, s)| {
                s.ok == 0
                    || matches!(
                        op,
                        Op::Create | Op::OpenWrite | Op::Write | Op::Fsync | Op::AccessW
                    )
            })
    }
}
