//! Turns raw ring-buffer records into [`PathObservation`]s.
//!
//! The kernel sends each distinct operation once (later repeats are counted
//! in the `DEDUP` map under the record's key) with the path as the kernel
//! knows it: the canonical path of the object (successful opens, fd-based
//! operations), or a user-supplied name plus the canonical directory it is
//! relative to. Names are folded here, resolving symlinked directories
//! through the image listing and the symlinks the container created.

use std::collections::{BTreeMap, HashMap};

use profiler_common::{
    DedupValue, EventHeader, FileStats, STATUS_BASE_DETACHED, STATUS_BASE_IS_OBJECT,
    STATUS_BASE_TRUNCATED, STATUS_NAME_ABSOLUTE, STATUS_NAME_TRUNCATED, kind, op,
};

use crate::{
    analysis::paths::canonicalize,
    model::{CPath, EntryKind, ImageListing, Op, OpStats, PathObservation, ProcRef},
};

use profiler_common::{EROFS, O_ACCMODE, O_APPEND, O_CREAT, O_TRUNC};

const O_WRONLY: u32 = 1;

/// True for a write-only `O_CREAT|O_APPEND` open without `O_TRUNC`: how
/// logs are opened (see [`PathObservation::append_only`]).
fn is_log_open(flags: u32) -> bool {
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

    fn comm(&self) -> String {
        let c = &self.header.comm;
        let end = c.iter().position(|b| *b == 0).unwrap_or(c.len());
        String::from_utf8_lossy(&c[..end]).into_owned()
    }

    fn base_path(&self) -> CPath {
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
        CPath(p)
    }
}

/// Live counts for the progress line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Records received.
    pub events: u64,
    /// Distinct paths so far (approximate: names are folded at the end).
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

/// Accumulates records during a run.
#[derive(Default)]
pub struct Collector {
    events: Vec<RawEvent>,
    procs: HashMap<u32, ProcRef>,
    progress: Progress,
    /// The container's cgroup was seen being created.
    pub cgroup_seen: Option<u64>,
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

fn map_op(kop: u32, flags: u32) -> Option<Op> {
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

/// What the collector hands to the analysis.
#[derive(Debug, Default)]
pub struct Collected {
    /// Observations sorted by path.
    pub observations: Vec<PathObservation>,
    /// Paths whose directory could not be resolved inside the container.
    pub detached: u64,
}

impl Collector {
    /// Decodes and stores one record.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let Some(ev) = RawEvent::parse(bytes) else {
            return;
        };
        self.push(ev);
    }

    /// Stores one decoded record.
    pub fn push(&mut self, ev: RawEvent) {
        self.progress.events += 1;
        match ev.header.kind {
            kind::PROC => {
                self.procs.insert(
                    ev.header.tgid,
                    ProcRef {
                        pid: ev.header.tgid,
                        comm: ev.comm(),
                        uid: ev.header.uid,
                        gid: ev.header.gid,
                    },
                );
            }
            kind::CGROUP => self.cgroup_seen = Some(ev.header.key),
            kind::PATH_OP => {
                self.progress.paths += 1;
                if ev.header.ret == -EROFS {
                    self.progress.erofs += 1;
                }
                if map_op(ev.header.op, ev.header.flags).is_some_and(Op::is_write) {
                    self.progress.writes += 1;
                }
                self.events.push(ev);
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
        self.events.len()
    }

    /// True when no path record arrived.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Folds every record into per-path observations.
    #[must_use]
    pub fn finish(
        &self,
        listing: &ImageListing,
        dedup: &HashMap<u64, DedupValue>,
        files: &HashMap<u64, FileStats>,
    ) -> Collected {
        // Symlinks: the image's, overlaid with those the container created
        // (a symlink created at runtime redirects later names through it).
        let mut runtime_links: HashMap<CPath, CPath> = HashMap::new();
        let mut out: BTreeMap<CPath, PathObservation> = BTreeMap::new();
        let mut detached = 0;
        let mut seen_keys: HashMap<u64, u32> = HashMap::new();
        for ev in &self.events {
            *seen_keys.entry(ev.header.key).or_default() += 1;
        }
        for ev in &self.events {
            let h = &ev.header;
            let Some(opk) = map_op(h.op, h.flags) else {
                continue;
            };
            if h.status & STATUS_BASE_DETACHED != 0 && h.status & STATUS_NAME_ABSOLUTE == 0 {
                detached += 1;
            }
            let lookup = |p: &CPath| -> Option<CPath> {
                if let Some(t) = runtime_links.get(p) {
                    return Some(t.clone());
                }
                listing
                    .entries
                    .get(p)
                    .filter(|e| e.kind == EntryKind::Symlink)
                    .and_then(|e| e.link_target.clone())
            };
            let path = if h.status & STATUS_BASE_IS_OBJECT != 0 {
                ev.base_path()
            } else {
                canonicalize(&ev.base_path(), &ev.name, &lookup)
            };
            // Count: the kernel's dedupe entry holds the total for this key,
            // shared by every record that carries it (a rare insert race).
            let total = dedup.get(&h.key).map_or(1, |d| d.count);
            let share = seen_keys.get(&h.key).copied().unwrap_or(1).max(1);
            let n = (total / u64::from(share)).max(1);
            let proc_first = self.proc_of(h.tgid, ev);
            let proc_last = dedup
                .get(&h.key)
                .map_or_else(|| proc_first.clone(), |d| self.proc_of(d.last_tgid, ev));
            let o = out.entry(path.clone()).or_insert_with(|| PathObservation {
                path: path.clone(),
                first: proc_first.clone(),
                last: proc_last.clone(),
                ..Default::default()
            });
            o.last = proc_last;
            let st: &mut OpStats = o.ops.entry(opk).or_default();
            if h.ret >= 0 {
                st.ok += n;
            } else {
                *st.errors.entry(errno_name(h.ret)).or_default() += n;
            }
            if h.status & (STATUS_BASE_TRUNCATED | STATUS_NAME_TRUNCATED) != 0 {
                o.truncated = true;
            }
            // How the application opens the file for writing is its intent,
            // also when a read-only root refused the open (iterate and
            // verify rounds): the same log open fails with EROFS there.
            if h.op == op::OPEN_WRITE && (h.ret >= 0 || h.ret == -EROFS) {
                if is_log_open(h.flags) {
                    o.append_opens += n;
                } else {
                    o.other_write_opens += n;
                }
            }
            if matches!(opk, Op::Create | Op::Mkdir) && h.ret >= 0 && o.create_mode.is_none() {
                o.create_mode = Some(h.mode & 0o7777);
            }
            if matches!(opk, Op::Exec | Op::MmapExec) {
                o.executed = true;
            }
            if opk == Op::Symlink && h.ret >= 0 {
                // The target text is not recorded; mark that names below this
                // link cannot be folded through it.
                runtime_links.remove(&path);
            }
            if h.ident != 0
                && let Some(fs) = files.get(&h.ident)
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
        Collected {
            observations: out.into_values().collect(),
            detached,
        }
    }

    fn proc_of(&self, tgid: u32, ev: &RawEvent) -> ProcRef {
        self.procs.get(&tgid).cloned().unwrap_or_else(|| ProcRef {
            pid: tgid,
            comm: if tgid == ev.header.tgid {
                ev.comm()
            } else {
                String::new()
            },
            uid: ev.header.uid,
            gid: ev.header.gid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &[u8], base_leaf_first: &[&[u8]], status: u32) -> Vec<u8> {
        raw_open(name, base_leaf_first, status, O_CREAT, -30, 7)
    }

    fn raw_open(
        name: &[u8],
        base_leaf_first: &[&[u8]],
        status: u32,
        flags: u32,
        ret: i64,
        key: u64,
    ) -> Vec<u8> {
        let mut data = Vec::new();
        data.extend_from_slice(name);
        data.push(0);
        let nl = data.len();
        for c in base_leaf_first {
            data.extend_from_slice(c);
            data.push(0);
        }
        let h = EventHeader {
            kind: kind::PATH_OP,
            op: op::OPEN_WRITE,
            ret,
            key,
            ident: 0,
            pid: 1,
            tgid: 1,
            ppid: 0,
            uid: 0,
            gid: 0,
            flags,
            mode: 0o644,
            status,
            base_len: u32::try_from(data.len() - nl).unwrap(),
            name_len: u32::try_from(nl).unwrap(),
            ts: 0,
            comm: *b"nginx\0\0\0\0\0\0\0\0\0\0\0",
            cgroup: 0,
        };
        let mut v = vec![0u8; std::mem::size_of::<EventHeader>()];
        // SAFETY: writing a POD header into a buffer of its exact size.
        unsafe { std::ptr::write_unaligned(v.as_mut_ptr().cast(), h) };
        v.extend_from_slice(&data);
        v
    }

    #[test]
    fn relative_name_joins_reversed_base_and_resolves_image_symlinks() {
        let mut listing = ImageListing::default();
        listing.entries.insert(
            CPath::from("/var/run"),
            crate::model::ImageEntry {
                path: CPath::from("/var/run"),
                kind: EntryKind::Symlink,
                mode: 0o777,
                uid: 0,
                gid: 0,
                size: 0,
                link_target: Some(CPath::from("/run")),
            },
        );
        let mut c = Collector::default();
        c.push_bytes(&raw(b"run/nginx.pid", &[b"var"], 0));
        c.push_bytes(&raw(b"/var/run/x \xff.pid", &[], STATUS_NAME_ABSOLUTE));
        let got = c.finish(&listing, &HashMap::new(), &HashMap::new());
        let paths: Vec<_> = got.observations.iter().map(|o| o.path.clone()).collect();
        assert_eq!(
            paths,
            vec![
                CPath::new(b"/run/nginx.pid".to_vec()),
                CPath::new(b"/run/x \xff.pid".to_vec())
            ]
        );
        assert_eq!(got.observations[0].ops[&Op::Create].errors["EROFS"], 1);
        assert_eq!(got.observations[0].first.comm, "nginx");
    }

    #[test]
    fn log_style_opens_are_told_apart_from_other_write_opens() {
        let mut c = Collector::default();
        let abs = STATUS_NAME_ABSOLUTE;
        let log = O_WRONLY | O_CREAT | O_APPEND;
        for (key, (name, flags, ret)) in [
            (&b"/var/log/a.log"[..], log, 3),
            (b"/var/log/b.log", log, 3),
            (b"/var/log/b.log", 2 | O_CREAT | O_APPEND, 3),
            (b"/var/log/c.log", log | O_TRUNC, 3),
            (b"/var/log/d.log", O_WRONLY | O_APPEND, 3),
            (b"/var/log/e.log", log, -13),
            (b"/var/log/f.log", log, -EROFS),
        ]
        .into_iter()
        .enumerate()
        {
            c.push_bytes(&raw_open(
                name,
                &[],
                abs,
                flags,
                ret,
                100 + u64::try_from(key).unwrap(),
            ));
        }
        let got = c.finish(&ImageListing::default(), &HashMap::new(), &HashMap::new());
        let counts: Vec<(String, u64, u64)> = got
            .observations
            .iter()
            .map(|o| (o.path.display(), o.append_opens, o.other_write_opens))
            .collect();
        assert_eq!(
            counts,
            [
                ("/var/log/a.log".to_owned(), 1, 0),
                ("/var/log/b.log".to_owned(), 1, 1),
                ("/var/log/c.log".to_owned(), 0, 1),
                ("/var/log/d.log".to_owned(), 0, 1),
                ("/var/log/e.log".to_owned(), 0, 0),
                ("/var/log/f.log".to_owned(), 1, 0),
            ],
            "write-only O_CREAT|O_APPEND without O_TRUNC is a log open; O_RDWR, O_TRUNC, no \
             O_CREAT are not; failed opens count neither, but one refused by a read-only \
             root (EROFS) shows the intent"
        );
        assert!(
            got.observations[5].append_only(),
            "f.log, seen only read-only, is append-only"
        );
        assert!(got.observations[0].append_only(), "a.log is append-only");
        assert!(
            !got.observations[1].append_only(),
            "b.log was also opened O_RDWR"
        );
    }

    #[test]
    fn dedupe_count_is_applied_once() {
        let mut c = Collector::default();
        c.push_bytes(&raw(b"/tmp/a", &[], STATUS_NAME_ABSOLUTE));
        let mut d = HashMap::new();
        d.insert(
            7,
            DedupValue {
                count: 500,
                last_tgid: 1,
                last_pid: 1,
            },
        );
        let got = c.finish(&ImageListing::default(), &d, &HashMap::new());
        assert_eq!(got.observations[0].ops[&Op::Create].errors["EROFS"], 500);
    }
}
