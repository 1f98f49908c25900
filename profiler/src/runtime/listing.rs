//! The container's initial filesystem, read from `docker export`: the tar
//! stream is parsed as it arrives (on a thread of its own, fed by a channel)
//! into an [`ImageListing`] of paths, types, modes, owners and link targets.

use std::io::Read;

use super::RuntimeError;
use crate::model::{CPath, EntryKind, ImageEntry, ImageListing};

/// A blocking [`Read`] over the chunks the export stream sends.
pub(super) struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    /// Reads what arrives on `rx` until the sender is dropped.
    pub(super) fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Parses an exported filesystem tar into a listing.
pub fn parse_tar(r: impl Read, id: &str) -> Result<ImageListing, RuntimeError> {
    let err = |e: std::io::Error| RuntimeError::Listing {
        id: id.into(),
        reason: e.to_string(),
    };
    let mut ar = tar::Archive::new(r);
    let mut listing = ImageListing::default();
    for entry in ar.entries().map_err(err)? {
        let entry = entry.map_err(err)?;
        let h = entry.header();
        let raw = entry.path_bytes();
        let mut p: Vec<u8> = Vec::with_capacity(raw.len() + 1);
        p.push(b'/');
        p.extend_from_slice(raw.strip_prefix(b"./").unwrap_or(&raw));
        while p.len() > 1 && p.last() == Some(&b'/') {
            p.pop();
        }
        if p == b"/." {
            p.truncate(1);
        }
        let kind = match h.entry_type() {
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        };
        let link_target = if kind == EntryKind::Symlink {
            entry.link_name_bytes().map(|l| CPath::new(l.into_owned()))
        } else {
            None
        };
        let path = CPath::new(p);
        listing.entries.insert(
            path.clone(),
            ImageEntry {
                path,
                kind,
                mode: h.mode().map_err(err)? & 0o7777,
                uid: u32::try_from(h.uid().map_err(err)?).unwrap_or(u32::MAX),
                gid: u32::try_from(h.gid().map_err(err)?).unwrap_or(u32::MAX),
                size: h.size().unwrap_or(0),
                link_target,
            },
        );
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: tar::EntryType, mode: u32, owner: u64, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner);
        h.set_gid(owner);
        h.set_size(size);
        h
    }

    /// An export as `docker export` writes it: a `./` root, then paths
    /// relative to it (some with a `./` prefix, directories with a `/`).
    fn export() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let dir = tar::EntryType::Directory;
        b.append_data(&mut header(dir, 0o755, 0, 0), "./", std::io::empty())
            .expect("root entry");
        b.append_data(&mut header(dir, 0o1777, 0, 0), "tmp/", std::io::empty())
            .expect("tmp entry");
        b.append_data(
            &mut header(dir, 0o750, 999, 0),
            "./var/lib/db/",
            std::io::empty(),
        )
        .expect("db entry");
        let file = tar::EntryType::Regular;
        b.append_data(
            &mut header(file, 0o104_755, 1000, 5),
            "usr/bin/su",
            &b"hello"[..],
        )
        .expect("file entry");
        b.append_link(
            &mut header(tar::EntryType::Symlink, 0o777, 0, 0),
            "var/run",
            "/run",
        )
        .expect("symlink entry");
        b.into_inner().expect("tar")
    }

    #[test]
    fn tar_listing_keeps_types_modes_owners_and_link_targets() {
        let l = parse_tar(&export()[..], "x").expect("a valid export parses");
        let at = |p: &str| {
            l.entries
                .get(&CPath::from(p))
                .unwrap_or_else(|| panic!("{p} should be listed; got {:?}", l.entries.keys()))
        };
        assert_eq!(l.entries.len(), 5, "{:?}", l.entries.keys());
        assert_eq!(at("/").kind, EntryKind::Dir, "`./` is the root");
        assert_eq!(at("/tmp").mode, 0o1777, "sticky bit kept");
        let db = at("/var/lib/db");
        assert_eq!((db.kind, db.mode, db.uid), (EntryKind::Dir, 0o750, 999));
        let su = at("/usr/bin/su");
        assert_eq!(
            (su.kind, su.mode, su.uid, su.gid, su.size),
            (EntryKind::File, 0o4755, 1000, 1000, 5),
            "file type bits dropped, setuid kept, owner and size read"
        );
        let run = at("/var/run");
        assert_eq!(run.kind, EntryKind::Symlink);
        assert_eq!(run.link_target, Some(CPath::from("/run")));
    }

    #[test]
    fn the_stream_may_arrive_in_chunks_of_any_size() {
        let data = export();
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        let reader = std::thread::spawn(move || parse_tar(ChannelReader::new(rx), "x"));
        for chunk in data.chunks(7) {
            // The parser stops at the end-of-archive blocks and hangs up,
            // as it does on a real export's padding.
            if tx.send(chunk.to_vec()).is_err() {
                break;
            }
        }
        drop(tx);
        let l = reader
            .join()
            .expect("reader thread")
            .expect("a chunked export parses");
        assert_eq!(l, parse_tar(&data[..], "x").expect("whole export parses"));
    }

    #[test]
    fn a_truncated_export_is_an_error_naming_the_container() {
        let data = export();
        let e = parse_tar(&data[..700], "c0ffee")
            .expect_err("a tar cut inside an entry must not parse")
            .to_string();
        assert!(e.contains("container c0ffee"), "{e}");
    }
}
