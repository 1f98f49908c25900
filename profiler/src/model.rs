//! The data model every layer speaks: observations from a run, the image's
//! listing and config, the mount plan, and the saved report (JSON schema
//! `schema/report.schema.json`, versioned by [`SCHEMA_VERSION`]).
//!
//! Paths are byte strings ([`CPath`]): Linux paths need not be UTF-8 and a
//! profiler that mangles them would emit mounts for the wrong directory.

use std::{collections::BTreeMap, fmt, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub mod errno;
mod opmap;
mod round;
mod timing;

pub use self::{
    opmap::{ErrorCounts, OpEntry, OpMap},
    round::{Health, Round, RoundKind},
    timing::{Ended, Phase, PhaseTime},
};

pub use crate::environment::{EnvValues, EnvVar};

/// Version of the JSON report format. Bump on any incompatible change.
///
/// 2: `run_options.env` holds names (values only with `--reveal-env`,
/// marked by `run_options.env_values`), and `run_options.env_files` the
/// `--env-file` paths; `seeded_volume` means a volatile seeded mount (fresh
/// for each container: an anonymous volume, not a named one), nested tmpfs
/// mounts may appear, observations count append-only opens, and the plan
/// lists `unmounted` writes. Version 1 reports (env as `NAME=value`
/// strings) still load and render: see [`crate::render::json`].
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest report version this build still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// An absolute, canonical path inside the container, as raw bytes.
///
/// Serialised as a JSON string when it is valid UTF-8, otherwise as
/// `{"hex": "2f746d70..."}` so no byte is lost.
///
/// Immutable and shared: a clone is a reference count, so the exclusions,
/// evidence and image entries that name a path hold the observation's
/// bytes instead of copies (a run may see 100k paths).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CPath(pub Arc<[u8]>);

impl Default for CPath {
    fn default() -> Self {
        Self(Arc::from(&[][..]))
    }
}

impl CPath {
    /// Builds a path from bytes.
    #[must_use]
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into().into())
    }

    /// The raw bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lossy UTF-8 rendering for humans (tables, Markdown).
    #[must_use]
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }

    /// The path as UTF-8, if it is.
    #[must_use]
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Components (no empty ones).
    pub fn components(&self) -> impl Iterator<Item = &[u8]> {
        self.0.split(|b| *b == b'/').filter(|c| !c.is_empty())
    }

    /// Parent directory (`/` for top-level entries and for `/`).
    #[must_use]
    pub fn parent(&self) -> CPath {
        match self.0.iter().rposition(|b| *b == b'/') {
            Some(0) | None => CPath::new(b"/".to_vec()),
            Some(i) => CPath::new(self.0[..i].to_vec()),
        }
    }

    /// True when `self` equals `ancestor` or lies below it.
    #[must_use]
    pub fn starts_with(&self, ancestor: &CPath) -> bool {
        let a = ancestor.as_bytes();
        if a == b"/" {
            return self.0.first() == Some(&b'/');
        }
        self.0.starts_with(a) && (self.0.len() == a.len() || self.0[a.len()] == b'/')
    }

    /// Joins one component.
    #[must_use]
    pub fn join(&self, name: &[u8]) -> CPath {
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if v.last() != Some(&b'/') {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        CPath::new(v)
    }
}

impl fmt::Debug for CPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

impl fmt::Display for CPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl From<&str> for CPath {
    fn from(s: &str) -> Self {
        CPath(s.as_bytes().into())
    }
}

impl Serialize for CPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(text) = std::str::from_utf8(&self.0) {
            s.serialize_str(text)
        } else {
            use serde::ser::SerializeMap as _;
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry("hex", &hex(&self.0))?;
            m.end()
        }
    }
}

impl<'de> Deserialize<'de> for CPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Hex { hex: String },
        }
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(CPath::new(t)),
            Repr::Hex { hex: h } => unhex(&h)
                .map(CPath::new)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid hex path {h:?}"))),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

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
    /// directory does as well as the image's copy. (Read-only opens are not
    /// traced: a file that is also read elsewhere cannot be told apart.)
    #[must_use]
    pub fn append_only(&self) -> bool {
        self.append_opens > 0
            && self.other_write_opens == 0
            && self.ops.iter().all(|(op, s)| {
                s.ok == 0
                    || matches!(
                        op,
                        Op::Create | Op::OpenWrite | Op::Write | Op::Fsync | Op::AccessW
                    )
            })
    }
}

/// Kind of an entry in the image's filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Anything else (device, fifo, socket, hard link entry).
    Other,
}

/// One entry of the image's (container's initial) filesystem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// Absolute path.
    pub path: CPath,
    /// Entry type.
    pub kind: EntryKind,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Size in bytes (files).
    #[serde(default)]
    pub size: u64,
    /// Symlink target, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<CPath>,
}

/// The image's filesystem, indexed by path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageListing {
    /// Entries by path.
    pub entries: BTreeMap<CPath, ImageEntry>,
}

/// What the analysis needs from the image config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Image reference as given by the user.
    pub image: String,
    /// Image id (`sha256:…`).
    #[serde(default)]
    pub id: String,
    /// ENTRYPOINT.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// CMD.
    #[serde(default)]
    pub cmd: Vec<String>,
    /// ENV.
    #[serde(default)]
    pub env: Vec<String>,
    /// WORKDIR.
    #[serde(default)]
    pub workdir: String,
    /// USER.
    #[serde(default)]
    pub user: String,
    /// Declared VOLUMEs.
    #[serde(default)]
    pub volumes: Vec<CPath>,
    /// `EXPOSEd` ports (`80/tcp`).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// STOPSIGNAL.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// HEALTHCHECK test, if any.
    #[serde(default)]
    pub healthcheck: Option<Vec<String>>,
}

/// The user's docker-run-like options, kept to render them back verbatim,
/// except the environment's values (see [`crate::environment`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// `-e` variables: names, with values only when `env_values` is
    /// [`EnvValues::Revealed`].
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// `--env-file` paths (absolute); their content is never copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<String>,
    /// Whether `env` holds the values it was given.
    #[serde(default)]
    pub env_values: EnvValues,
    /// `-v` values (`src:dst[:opts]`).
    #[serde(default)]
    pub volumes: Vec<String>,
    /// `--tmpfs` values (`dst[:opts]`).
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// `-p` values.
    #[serde(default)]
    pub publish: Vec<String>,
    /// `-u`.
    #[serde(default)]
    pub user: Option<String>,
    /// `-w`.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `--entrypoint`.
    #[serde(default)]
    pub entrypoint: Option<String>,
    /// `--network`.
    #[serde(default)]
    pub network: Option<String>,
    /// `--cap-add`.
    #[serde(default)]
    pub cap_add: Vec<String>,
    /// `--security-opt` (e.g. `seccomp=unconfined`, `apparmor=PROFILE`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `--memory` limit as given (`64m`, `1g`, bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// `--group-add`: supplementary groups (a pod's `fsGroup` and
    /// `supplementalGroups` under `--manifest`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Command and arguments after the image.
    #[serde(default)]
    pub command: Vec<String>,
}

impl RunOptions {
    /// Drops every `-e` value, keeping the names.
    pub fn withhold_env_values(&mut self) {
        for v in &mut self.env {
            v.value = None;
        }
        self.env_values = EnvValues::Withheld;
    }
}

/// What kind of writable mount the plan proposes, by how long its content
/// lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// Empty and fresh for each container (Docker and Compose: tmpfs;
    /// Kubernetes: emptyDir, `medium: Memory`). Image directories the run
    /// used below it get nested tmpfs mounts of their own.
    Tmpfs,
    /// Volatile seeded: fresh for each container, filled with the image's
    /// content at that path (Docker: an anonymous volume, `-v /path`;
    /// Compose: an anonymous volume; Kubernetes: emptyDir plus an
    /// initContainer that copies it). Never a named volume: a stale copy
    /// would shadow the next image's files.
    SeededVolume,
    /// Data that must outlive the container (fsynced, or a data service's
    /// data): a named volume, a `PersistentVolumeClaim` in Kubernetes, seeded
    /// from the image only while empty.
    PersistentVolume,
}

/// Options of a planned mount.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountOptions {
    /// Permission bits for the mount root.
    pub mode: u32,
    /// Owner uid of the mount root.
    pub uid: u32,
    /// Owner gid of the mount root.
    pub gid: u32,
    /// Size limit in bytes (peak seen plus headroom), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// `noexec`.
    pub noexec: bool,
    /// `nosuid`.
    pub nosuid: bool,
    /// `nodev`.
    pub nodev: bool,
}

/// Why a mount is in the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Short name of the rule that chose this mount point.
    pub rule: String,
    /// Human explanation.
    pub reason: String,
    /// Observed paths this mount covers.
    pub paths: Vec<CPath>,
    /// Operations seen below it.
    pub ops: Vec<Op>,
    /// Processes (comm) that wrote below it.
    pub processes: Vec<String>,
    /// Peak bytes seen below it.
    pub peak_bytes: u64,
}

/// One writable mount of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedMount {
    /// Mount point inside the container.
    pub target: CPath,
    /// tmpfs or volume.
    pub kind: MountKind,
    /// Options.
    pub options: MountOptions,
    /// The image has content at `target` that a tmpfs would hide.
    pub shadows_image_content: bool,
    /// Evidence.
    pub evidence: Evidence,
}

/// A path left out of the plan, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The path.
    pub path: CPath,
    /// Why (e.g. "kernel filesystem /proc", "declared VOLUME /data").
    /// Shared: a run may exclude 100k paths for the same reason (a user's
    /// `--tmpfs`), and one copy of the text does for all of them.
    pub reason: Arc<str>,
}

/// Writes the plan deliberately leaves without a mount: they will fail with
/// `EROFS` read-only, which the application is expected to tolerate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmounted {
    /// The directory a mount would have had to cover.
    pub dir: CPath,
    /// The written paths below it.
    pub paths: Vec<CPath>,
    /// Why there is no mount.
    pub reason: String,
    /// A known way to stop the writes, if there is one
    /// (`PYTHONDONTWRITEBYTECODE=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The proposed mount set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPlan {
    /// Mounts, sorted by target.
    pub mounts: Vec<PlannedMount>,
    /// Writes left without a mount on purpose, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmounted: Vec<Unmounted>,
    /// Observed paths that need no mount, and why.
    pub excluded: Vec<Exclusion>,
    /// Things a human should read.
    pub warnings: Vec<String>,
}

/// What was lost or truncated during a run (all zero in a complete profile).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Losses {
    /// Events dropped because the ring buffer was full.
    pub ringbuf_drops: u64,
    /// Paths the kernel could not read in full.
    pub truncated_paths: u64,
    /// Syscalls whose exit could not be matched (in-flight map full).
    pub inflight_full: u64,
    /// Processes that could not be followed (traced map full).
    pub traced_full: u64,
    /// Files whose byte counts are missing (files map full).
    pub files_full: u64,
    /// Kernel reads that failed while building events.
    pub read_errors: u64,
    /// Events lost because a tail call to the next kernel stage failed.
    #[serde(default)]
    pub tail_call_fails: u64,
}

impl Losses {
    /// True when nothing was lost (truncated paths count as a loss).
    #[must_use]
    pub fn is_clean(&self) -> bool {
        *self == Losses::default()
    }
}

/// Counters of tracer activity (not losses), and where the time went (not
/// `Eq`: it holds `f64`s).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceStats {
    /// Records received from the kernel.
    pub events: u64,
    /// Operations folded into dedupe entries in the kernel.
    pub deduped: u64,
    /// Dedupe map was full (events then sent without dedupe).
    pub dedup_full: u64,
    /// roprof's own peak resident memory (`VmHWM`) when the report was
    /// written, in KiB; 0 when unknown.
    #[serde(default)]
    pub peak_rss_kib: u64,
    /// `io_uring_setup` calls by the container's processes: writes
    /// submitted through `io_uring` are not traced.
    #[serde(default)]
    pub io_uring_setups: u64,
    /// Instructions the kernel's verifier processed for each eBPF program
    /// at load (its budget is 1M per program; kernels 5.16 and later report it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub verified_insns: BTreeMap<String, u32>,
    /// How the kernel side read the current task on its hot path: `btf`
    /// (plain loads through `bpf_get_current_task_btf`, Linux 5.11+) or
    /// `probe_read` (a helper call per field: older kernels, or a verifier
    /// that refused the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_reads: Option<String>,
    /// Wall time per phase of the run, in order (a closed loop adds
    /// `verify`; each round has its own in `rounds`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseTime>,
    /// Seconds the eBPF programs took to load, verify and attach; this runs
    /// in the background, overlapping `inspect`, `create` and `listing`, and
    /// happens once per roprof process.
    #[serde(default)]
    pub bpf_load_secs: f64,
}

/// Metadata of the run that produced the observations (not `Eq`: it holds
/// an `f64`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "report fields users read, each a yes/no of its own"
)]
pub struct RunMeta {
    /// `profile`, `attach`, `verify`, or `iterate`.
    pub mode: String,
    /// Container id.
    #[serde(default)]
    pub container_id: String,
    /// The run had `--read-only` (verify, iterate rounds).
    #[serde(default)]
    pub read_only: bool,
    /// Seconds observed.
    pub observed_secs: f64,
    /// Why the observation window ended (absent in reports of roprof
    /// versions before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    /// Exit code, if the container exited.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Killed by the OOM killer.
    #[serde(default)]
    pub oom_killed: bool,
    /// Last lines of the container's log.
    #[serde(default)]
    pub logs_tail: Vec<String>,
    /// Writes before this point were not seen (attach mode).
    #[serde(default)]
    pub partial_start: bool,
    /// The run did not cover the container's normal life: interrupted by a
    /// signal, the engine was lost, or the container was OOM-killed.
    #[serde(default)]
    pub incomplete: bool,
    /// Why the report is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_reason: Option<String>,
    /// Notes for the reader (e.g. "attached to a running container").
    #[serde(default)]
    pub notes: Vec<String>,
    /// Health of the probe/HEALTHCHECK at the end; `None` without one.
    #[serde(default)]
    pub health: Option<Health>,
    /// Exit status of `--exercise` (128 + N when killed by signal N); absent
    /// without an exercise or when it had not finished when the window
    /// ended (it is then killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exercise_exit: Option<i64>,
}

/// A saved profile: everything needed to re-render any format.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// roprof version that wrote it.
    pub roprof_version: String,
    /// The image.
    pub image: ImageConfig,
    /// The user's run options.
    pub run_options: RunOptions,
    /// Run metadata.
    pub run: RunMeta,
    /// Losses; a report with losses is not trustworthy.
    pub losses: Losses,
    /// Tracer activity.
    pub stats: TraceStats,
    /// Every observed path, sorted.
    pub paths: Vec<PathObservation>,
    /// The plan.
    pub plan: MountPlan,
    /// Closed-loop rounds (verify, repair, iterate, leave-one-out), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rounds: Vec<Round>,
    /// The planner's settings the plan was made with, repairs included
    /// (`verify --repair` continues from them).
    #[serde(default)]
    pub settings: crate::analysis::Settings,
}
