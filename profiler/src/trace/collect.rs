//! Turns raw ring-buffer records into [`PathObservation`]s, aggregating as
//! they arrive.
//!
//! The kernel sends each distinct operation once (later repeats are counted
//! in the `DEDUP` map under the record's key) with the path as the kernel
//! knows it: the canonical path of the object (successful opens, fd-based
//! operations), or a user-supplied name plus the canonical directory it is
//! relative to. Names are folded through the image's symlinks (a symlink
//! the container creates is not followed: its target is not recorded).
//!
//! Memory is proportional to distinct paths, not records: each record is
//! folded into its path's observation on arrival (with the image's symlinks
//! given to [`Collector::with_listing`]; without them, the raw name is kept
//! in the observation's place and folded in [`Collector::finish`]), and
//! only a small fixed-size note per record is kept for what is known at
//! the end (the kernel's repeat count, the per-file write statistics).

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher as _, RandomState},
    sync::Arc,
};

use hashbrown::HashTable;
use profiler_common::{
    DedupValue, EventHeader, FileStats, STATUS_BASE_DETACHED, STATUS_BASE_IS_OBJECT,
    STATUS_BASE_TRUNCATED, STATUS_NAME_ABSOLUTE, STATUS_NAME_TRUNCATED, kind, op,
};

use super::lookup::Lookup;
use crate::{
    model::canonicalize,
    model::{
        CPath, EntryKind, ExitStatus, ImageListing, Op, PathObservation, ProcRef, ProcessExit,
    },
};

use profiler_common::{EROFS, O_ACCMODE, O_APPEND, O_CREAT, O_TRUNC};

const O_WRONLY: u32 = 1;

/// True for a write-only `O_CREAT|O_APPEND` open without `O_TRUNC`: how
/// logs are opened (see [`PathObservation::append_only`]).
#[must_use]
pub fn is_log_open(flags: u32) -> bool {
    flags & O_ACCMODE == O_WRONLY
        && flags & (O_CREAT | O_APPEND) == O_CREAT | O_APPEND
        && flags & O_TRUNC == 0
}

/// One decoded record.
#[derive(Clone, Debug)]
pub struct RawEvent {
    /// Header as sent.
    pub header: EventHeader,
    /// User-supplied name (without NUL).
    pub name: Box<[u8]>,
    /// Base path as sent: components leaf-first, each NUL-terminated (kept
    /// raw, one allocation per record, and decoded once in `finish`).
    pub base_raw: Box<[u8]>,
}

impl RawEvent {
    /// Decodes one ring-buffer record; `None` when it is too short.
    #[must_use]
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let hs = std::mem::size_of::<EventHeader>();
        if bytes.len() < hs {
            return None;
        }
        // SAFETY: EventHeader is repr(C) plain data; the slice holds at least
        // size_of::<EventHeader>() bytes and read_unaligned copes with alignment.
        let header: EventHeader = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        let data = &bytes[hs..];
        let nl = (header.name_len as usize).min(data.len());
        let name = &data[..nl];
        let name = name.split(|b| *b == 0).next().unwrap_or_default().into();
        let bl = (header.base_len as usize).min(data.len() - nl);
        Some(RawEvent {
            header,
            name,
            base_raw: data[nl..nl + bl].into(),
        })
    }

    /// The record's canonical container path: the object's, or the name
    /// joined to its base and folded through `symlinks` (the image's).
    #[must_use]
    pub fn path_with(&self, symlinks: &dyn Fn(&CPath) -> Option<CPath>) -> CPath {
        let base = self.base_path();
        if self.header.status & STATUS_BASE_IS_OBJECT != 0 {
            return base;
        }
        canonicalize(&base, &self.name, symlinks)
    }

    /// The record's process name.
    #[must_use]
    pub fn comm(&self) -> Arc<str> {
        let c = &self.header.comm;
        let end = c.iter().position(|b| *b == 0).unwrap_or(c.len());
        String::from_utf8_lossy(&c[..end]).into()
    }

    /// The base path the record's name is relative to (or the object itself).
    #[must_use]
    pub fn base_path(&self) -> CPath {
        let mut p = Vec::with_capacity(self.base_raw.len() + 1);
        for c in self
            .base_raw
            .split(|b| *b == 0)
            .filter(|c| !c.is_empty())
            .rev()
        {
            p.push(b'/');
            p.extend_from_slice(c);
        }
        if p.is_empty() {
            p.push(b'/');
        }
        CPath::new(p)
    }
}

/// Live counts for the progress line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Records received.
    pub events: u64,
    /// Distinct paths so far (approximate without the image listing: names
    /// are then folded at the end).
    pub paths: u64,
    /// Records carrying EROFS.
    pub erofs: u64,
    /// Records of write-type operations (the settle window watches these:
    /// each is a new distinct operation, repeats being folded in the kernel).
    pub writes: u64,
}

/// Where drained ring-buffer records go: a [`Collector`] for one
/// container, or a router that hands each record to its container's
/// collector by [`EventHeader::cgroup`].
pub trait Sink {
    /// Takes one raw record.
    fn push_bytes(&mut self, bytes: &[u8]);
    /// Live counts for the progress line.
    fn progress(&self) -> Progress;
}

impl Sink for Collector {
    fn push_bytes(&mut self, bytes: &[u8]) {
        Collector::push_bytes(self, bytes);
    }

    fn progress(&self) -> Progress {
        Collector::progress(self)
    }
}

/// How an open counts toward the append-only evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpenKind {
    /// Not a write open (or one that failed other than with EROFS).
    No,
    /// Write-only `O_CREAT|O_APPEND` without `O_TRUNC`.
    Log,
    /// Any other write open.
    Other,
}

/// What is left of one record once folded into its observation: what its
/// count, known only at the end, is added to. 32 bytes.
#[derive(Clone, Copy, Debug)]
struct KeyNote {
    /// Dedupe key (`DEDUP`).
    key: u64,
    /// Object identity (`FILES`), 0 if unknown.
    ident: u64,
    /// Index into `Collector::obs`.
    obs: u32,
    /// Index into `Collector::senders`: the task that sent the record.
    sender: u32,
    /// 0 on success, else the negative errno.
    ret: i32,
    op: Op,
    open: OpenKind,
}

/// Accumulates records during a run, one observation per distinct path.
#[derive(Default)]
pub struct Collector {
    /// The image's symlinks (path to target), when known from the start.
    links: Option<HashMap<CPath, CPath>>,
    /// One per distinct path (or, without `links`, per distinct raw name).
    obs: Vec<PathObservation>,
    /// `obs` indices by the hash of their path (the path is stored once).
    index: HashTable<u32>,
    hasher: RandomState,
    keys: Vec<KeyNote>,
    /// Distinct senders (task, comm, uid, gid) of records: few.
    senders: Vec<Arc<ProcRef>>,
    sender_index: HashMap<(u32, [u8; 16], u32, u32), u32>,
    procs: HashMap<u32, Arc<ProcRef>>,
    detached: u64,
    progress: Progress,
    /// The container's cgroup was seen being created.
    pub cgroup_seen: Option<u64>,
    exits: Vec<ExitNote>,
    /// Identities of the regular files opened read-only (`READ` records):
    /// joined with the write records' in `finish`.
    reads: HashSet<u64>,
}

/// Errno names for the errors write paths run into.
#[must_use]
pub fn errno_name(e: i64) -> String {
    let n = match -e {
        1 => "EPERM",
        2 => "ENOENT",
        9 => "EBADF",
        13 => "EACCES",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        26 => "ETXTBSY",
        28 => "ENOSPC",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        61 => "ENODATA",
        95 => "EOPNOTSUPP",
        98 => "EADDRINUSE",
        122 => "EDQUOT",
        other => return format!("E{other}"),
    };
    n.to_owned()
}

/// The report's operation for a kernel op code and its open flags.
#[must_use]
pub fn map_op(kop: u32, flags: u32) -> Option<Op> {
    Some(match kop {
        op::OPEN_WRITE if flags & O_CREAT != 0 => Op::Create,
        op::OPEN_WRITE if flags & O_TRUNC != 0 => Op::Truncate,
        op::OPEN_WRITE => Op::OpenWrite,
        op::MKDIR => Op::Mkdir,
        op::MKNOD => Op::Mknod,
        op::RENAME_FROM => Op::RenameFrom,
        op::RENAME_TO => Op::RenameTo,
        op::LINK => Op::Link,
        op::SYMLINK => Op::Symlink,
        op::UNLINK => Op::Unlink,
        op::RMDIR => Op::Rmdir,
        op::TRUNCATE => Op::Truncate,
        op::CHMOD => Op::Chmod,
        op::CHOWN => Op::Chown,
        op::UTIMES => Op::Utimes,
        op::SETXATTR => Op::Setxattr,
        op::REMOVEXATTR => Op::Removexattr,
        op::BIND => Op::Bind,
        op::ACCESS_W => Op::AccessW,
        op::MMAP_EXEC => Op::MmapExec,
        // Attach mode: the first write through a file opened before tracing.
        op::WRITE => Op::Write,
        op::EXEC => Op::Exec,
        _ => return None,
    })
}

/// The image's symlinks, path to target: what names are folded through.
#[must_use]
pub fn symlinks(listing: &ImageListing) -> HashMap<CPath, CPath> {
    listing
        .entries
        .iter()
        .filter(|(_, e)| e.kind == EntryKind::Symlink)
        .filter_map(|(p, e)| Some((p.clone(), e.link_target.clone()?)))
        .collect()
}

/// What the collector hands to the analysis.
#[derive(Debug, Default)]
pub struct Collected {
    /// Observations sorted by path.
    pub observations: Vec<PathObservation>,
    /// Paths whose directory could not be resolved inside the container.
    pub detached: u64,
    /// Non-zero exits of the container's processes, in arrival order.
    pub exits: Vec<CollectedExit>,
}

/// One program and status a process of the container ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectedExit {
    /// The exit as the report shows it (`at_stop` false: the session
    /// knows when it began stopping the container, see `first_ns`).
    pub exit: ProcessExit,
    /// Monotonic time (ns, `CLOCK_MONOTONIC`) of the first such exit.
    pub first_ns: u64,
}

/// An `EXIT` record: its count is known only at the end.
#[derive(Clone, Debug)]
struct ExitNote {
    key: u64,
    program: Arc<str>,
    status: ExitStatus,
    ts: u64,
}

impl Collector {
    /// A collector that folds names through `listing`'s symlinks as records
    /// arrive (what a run uses: memory stays proportional to distinct
    /// paths). [`Collector::default`] folds them in [`Collector::finish`].
    #[must_use]
    pub fn with_listing(listing: &ImageListing) -> Self {
        Collector {
            links: Some(symlinks(listing)),
            ..Collector::default()
        }
    }

    /// Decodes and stores one record.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let Some(ev) = RawEvent::parse(bytes) else {
            return;
        };
        self.push(ev);
    }

    /// Folds one decoded record in.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "the public API hands the decoded record over"
    )]
    pub fn push(&mut self, ev: RawEvent) {
        self.progress.events += 1;
        match ev.header.kind {
            kind::PROC => {
                self.procs.insert(
                    ev.header.tgid,
                    Arc::new(ProcRef {
                        pid: ev.header.tgid,
                        comm: ev.comm(),
                        uid: ev.header.uid,
                        gid: ev.header.gid,
                    }),
                );
            }
            kind::CGROUP => self.cgroup_seen = Some(ev.header.key),
            kind::READ if ev.header.ident != 0 => {
                self.reads.insert(ev.header.ident);
            }
            kind::EXIT => {
                // The kernel sends only non-zero codes; `ret` holds
                // `task_struct.exit_code`, a u32.
                let code = u32::try_from(ev.header.ret).unwrap_or(0);
                if let Some(status) = ExitStatus::from_kernel(code) {
                    self.exits.push(ExitNote {
                        key: ev.header.key,
                        program: ev.comm(),
                        status,
                        ts: ev.header.ts,
                    });
                }
            }
            kind::PATH_OP => {
                if ev.header.ret == -EROFS {
                    self.progress.erofs += 1;
                }
                if map_op(ev.header.op, ev.header.flags).is_some_and(Op::is_write) {
                    self.progress.writes += 1;
                }
                self.add(&ev);
                self.progress.paths = self.obs.len() as u64;
            }
            _ => {}
        }
    }

    /// Live counts.
    #[must_use]
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// Number of path records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no path record arrived.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Folds a path record into its observation; what depends on the final
    /// counts is noted in `keys`.
    fn add(&mut self, ev: &RawEvent) {
        let h = &ev.header;
        let Some(opk) = map_op(h.op, h.flags) else {
            return;
        };
        if h.status & STATUS_BASE_DETACHED != 0 && h.status & STATUS_NAME_ABSOLUTE == 0 {
            self.detached += 1;
        }
        let path = self.path_of(ev);
        let sender = self.sender(ev);
        let i = self.observation(path, sender);
        let o = &mut self.obs[i as usize];
        if opk.is_write() && (o.first_ns == 0 || h.ts < o.first_ns) {
            o.first_ns = h.ts;
        }
        if h.status & (STATUS_BASE_TRUNCATED | STATUS_NAME_TRUNCATED) != 0 {
            o.truncated = true;
        }
        if matches!(opk, Op::Create | Op::Mkdir) && h.ret >= 0 && o.create_mode.is_none() {
            o.create_mode = Some(h.mode & 0o7777);
        }
        if matches!(opk, Op::Exec | Op::MmapExec) {
            o.executed = true;
        }
        // How the application opens the file for writing is its intent,
        // also when a read-only root refused the open (iterate and verify
        // rounds): the same log open fails with EROFS there.
        let open = if h.op == op::OPEN_WRITE && (h.ret >= 0 || h.ret == -EROFS) {
            if is_log_open(h.flags) {
                OpenKind::Log
            } else {
                OpenKind::Other
            }
        } else {
            OpenKind::No
        };
        self.keys.push(KeyNote {
            key: h.key,
            ident: h.ident,
            obs: i,
            sender,
            ret: if h.ret >= 0 {
                0
            } else {
                i32::try_from(h.ret).unwrap_or(i32::MIN)
            },
            op: opk,
            open,
        });
    }

    /// The record's path: folded now with the image's symlinks when known,
    /// else the base and the raw name joined by a NUL (no path holds one),
    /// folded in `finish`.
    fn path_of(&self, ev: &RawEvent) -> CPath {
        if let Some(links) = &self.links {
            ev.path_with(&|p: &CPath| links.get(p).cloned())
        } else if ev.header.status & STATUS_BASE_IS_OBJECT != 0 {
            ev.base_path()
        } else {
            let base = ev.base_path();
            let mut raw = Vec::with_capacity(base.0.len() + 1 + ev.name.len());
            raw.extend_from_slice(&base.0);
            raw.push(0);
            raw.extend_from_slice(&ev.name);
            CPath::new(raw)
        }
    }

    /// Index of the record's sender in `senders`.
    fn sender(&mut self, ev: &RawEvent) -> u32 {
        let h = &ev.header;
        let id = (h.tgid, h.comm, h.uid, h.gid);
        if let Some(&i) = self.sender_index.get(&id) {
            return i;
        }
        let i = index_u32(self.senders.len());
        self.senders.push(Arc::new(ProcRef {
            pid: h.tgid,
            comm: ev.comm(),
            uid: h.uid,
            gid: h.gid,
        }));
        self.sender_index.insert(id, i);
        i
    }

    /// Index of `path`'s observation, created (first seen by `sender`) if new.
    fn observation(&mut self, path: CPath, sender: u32) -> u32 {
        let hash = self.hasher.hash_one(&path);
        let obs = &self.obs;
        if let Some(&i) = self.index.find(hash, |&i| obs[i as usize].path == path) {
            return i;
        }
        let i = index_u32(self.obs.len());
        let who = self.senders[sender as usize].clone();
        self.obs.push(PathObservation {
            path,
            first: who.clone(),
            last: who,
            ..Default::default()
        });
        let (obs, hasher) = (&self.obs, &self.hasher);
        self.index
            .insert_unique(hash, i, |&j| hasher.hash_one(&obs[j as usize].path));
        i
    }

    /// Applies the final counts and per-file statistics, folds what was not
    /// folded on arrival, and returns the observations sorted by path.
    #[must_use]
    pub fn finish(
        mut self,
        listing: &ImageListing,
        dedup: &impl Lookup<DedupValue>,
        files: &impl Lookup<FileStats>,
    ) -> Collected {
        self.index = HashTable::new();
        // A key carried by several records (a rare insert race in the
        // kernel) shares its total between them.
        let mut keys: Vec<u64> = self.keys.iter().map(|k| k.key).collect();
        keys.sort_unstable();
        let share = |key: u64| {
            let lo = keys.partition_point(|k| *k < key);
            let hi = keys.partition_point(|k| *k <= key);
            u64::try_from(hi - lo).unwrap_or(1).max(1)
        };
        for o in &mut self.obs {
            if let Some(p) = self.procs.get(&o.first.pid) {
                o.first = p.clone();
            }
        }
        for k in &self.keys {
            let d = dedup.lookup(k.key);
            let n = (d.map_or(1, |d| d.count) / share(k.key)).max(1);
            let sender = &self.senders[k.sender as usize];
            let last = match d {
                None => self.procs.get(&sender.pid).unwrap_or(sender).clone(),
                Some(d) => proc_of(&self.procs, d.last_tgid, sender),
            };
            let o = &mut self.obs[k.obs as usize];
            o.last = last;
            // Only a write's object counts: a library mapped executable and
            // opened read-only by the loader is no file read back.
            if k.op.is_write() && k.ident != 0 && self.reads.contains(&k.ident) {
                o.read_back = true;
            }
            let st = o.ops.entry(k.op).or_default();
            if k.ret == 0 {
                st.ok += n;
            } else {
                *st.errors.entry(errno_name(i64::from(k.ret))).or_default() += n;
            }
            match k.open {
                OpenKind::Log => o.append_opens += n,
                OpenKind::Other => o.other_write_opens += n,
                OpenKind::No => {}
            }
            if k.ident != 0
                && let Some(fs) = files.lookup(k.ident)
            {
                if fs.writes > 0 {
                    o.bytes_written = o.bytes_written.max(fs.bytes);
                    o.max_size = o.max_size.max(fs.max_size);
                    o.ops.entry(Op::Write).or_default().ok = fs.writes;
                }
                if fs.fsynced != 0 {
                    o.fsynced = true;
                    o.ops.entry(Op::Fsync).or_default().ok = 1;
                }
                if fs.exec_mapped != 0 {
                    o.executed = true;
                }
            }
        }
        drop(keys);
        self.keys = Vec::new();
        let mut observations = std::mem::take(&mut self.obs);
        if self.links.is_none() {
            fold_late(&mut observations, listing);
        } else {
            observations.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        }
        let exits = self
            .exits
            .iter()
            .map(|e| CollectedExit {
                exit: ProcessExit {
                    program: e.program.to_string(),
                    status: e.status,
                    count: dedup.lookup(e.key).map_or(1, |d| d.count.max(1)),
                    at_stop: false,
                },
                first_ns: e.ts,
            })
            .collect();
        Collected {
            observations,
            detached: self.detached,
            exits,
        }
    }
}

/// `u32` index of a vector's next element. Four billion distinct paths or
/// senders would not fit in memory anyway.
#[expect(
    clippy::cast_possible_truncation,
    reason = "indices of in-memory vectors far below 2^32 (see above)"
)]
fn index_u32(len: usize) -> u32 {
    len as u32
}

/// The process `tgid` as last known: its `PROC` record, else the sender's
/// identity when it is the same task, else the bare pid.
fn proc_of(procs: &HashMap<u32, Arc<ProcRef>>, tgid: u32, sender: &Arc<ProcRef>) -> Arc<ProcRef> {
    match procs.get(&tgid) {
        Some(p) => p.clone(),
        None if tgid == sender.pid => sender.clone(),
        None => Arc::new(ProcRef {
            pid: tgid,
            comm: Arc::from(""),
            uid: sender.uid,
            gid: sender.gid,
        }),
    }
}

/// Folds the names kept raw (`base NUL name`) through the listing's
/// symlinks, sorts, and merges observations that now share a path (the
/// earlier-created one's first process is kept).
fn fold_late(observations: &mut Vec<PathObservation>, listing: &ImageListing) {
    let lookup = |p: &CPath| -> Option<CPath> {
        listing
            .entries
            .get(p)
            .filter(|e| e.kind == EntryKind::Symlink)
            .and_then(|e| e.link_target.clone())
    };
    for o in observations.iter_mut() {
        if let Some(nul) = o.path.0.iter().position(|b| *b == 0) {
            let base = CPath::new(&o.path.0[..nul]);
            o.path = canonicalize(&base, &o.path.0[nul + 1..], &lookup);
        }
    }
    // Stable: equal paths stay in creation order.
    observations.sort_by(|a, b| a.path.cmp(&b.path));
    let mut merged: Vec<PathObservation> = Vec::with_capacity(observations.len());
    for o in observations.drain(..) {
        match merged.last_mut() {
            Some(acc) if acc.path == o.path => acc.absorb_later(&o),
            _ => merged.push(o),
        }
    }
    *observations = merged;
}

#[cfg(test)]
#[path = "collect_tests.rs"]
mod tests;
