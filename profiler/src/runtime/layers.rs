//! The initial filesystem of a containerd container, from its image's
//! layers: the overlay snapshot's `lowerdir`s, read on the host (the
//! snapshotter keeps an image's layers as long as the image exists, so
//! they are still there after a short-lived container was deleted).
//!
//! Layers are applied bottom to top with overlayfs's rules: a character
//! device 0/0 is a whiteout (the path and everything below it are gone),
//! a directory with `trusted.overlay.opaque=y` hides what lower layers
//! had below it.

use std::{
    os::unix::fs::{FileTypeExt as _, MetadataExt as _},
    path::{Path, PathBuf},
};

use crate::model::{CPath, EntryKind, ImageEntry, ImageListing};

/// The lower directories of an overlay mount's options, top first as
/// overlayfs lists them; empty for other mounts.
#[must_use]
pub fn lowerdirs(options: &[String]) -> Vec<PathBuf> {
    options
        .iter()
        .find_map(|o| o.strip_prefix("lowerdir="))
        .map(|l| {
            l.split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Most entries walked per listing: a bound against a runaway walk.
const MAX_ENTRIES: usize = 2_000_000;

/// The listing of layers `top_first` (as [`lowerdirs`] gives them).
pub fn listing(top_first: &[PathBuf]) -> Result<ImageListing, String> {
    let mut l = ImageListing::default();
    for layer in top_first.iter().rev() {
        apply(&mut l, layer).map_err(|e| format!("layer {}: {e}", layer.display()))?;
    }
    Ok(l)
}

fn remove_below(l: &mut ImageListing, dir: &CPath, keep_dir: bool) {
    let mut prefix = dir.0.to_vec();
    if prefix != b"/" {
        prefix.push(b'/');
    }
    l.entries
        .retain(|p, _| !(p.0.starts_with(&prefix) || (!keep_dir && p == dir)));
}

fn opaque(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut v = [0u8; 2];
    // SAFETY: both pointers are valid for the call: a NUL-terminated path,
    // a NUL-terminated attribute name, and a buffer of the length given.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

fn apply(l: &mut ImageListing, root: &Path) -> std::io::Result<()> {
    let mut stack = vec![(root.to_path_buf(), CPath::from("/"))];
    while let Some((dir, cdir)) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let meta = e.path().symlink_metadata()?;
            let mut p = cdir.0.to_vec();
            if p != b"/" {
                p.push(b'/');
            }
            {
                use std::os::unix::ffi::OsStrExt as _;
                p.extend_from_slice(e.file_name().as_bytes());
            }
            let cp = CPath::new(p);
            let ft = meta.file_type();
            if ft.is_char_device() && meta.rdev() == 0 {
                remove_below(l, &cp, false);
                continue;
            }
            let kind = if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else if ft.is_symlink() {
                EntryKind::Symlink
            } else {
                EntryKind::Other
            };
            if kind != EntryKind::Dir {
                // A file over a lower directory replaces it whole.
                remove_below(l, &cp, true);
            } else if opaque(&e.path()) {
                remove_below(l, &cp, true);
            }
            let link_target = if kind == EntryKind::Symlink {
                use std::os::unix::ffi::OsStrExt as _;
                std::fs::read_link(e.path())
                    .ok()
                    .map(|t| CPath::new(t.as_os_str().as_bytes().to_vec()))
            } else {
                None
            };
            l.entries.insert(
                cp.clone(),
                ImageEntry {
                    path: cp.clone(),
                    kind,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid(),
                    gid: meta.gid(),
                    size: if kind == EntryKind::File {
                        meta.size()
                    } else {
                        0
                    },
                    link_target,
                },
            );
            if l.entries.len() > MAX_ENTRIES {
                return Err(std::io::Error::other(format!(
                    "more than {MAX_ENTRIES} entries"
                )));
            }
            if kind == EntryKind::Dir {
                stack.push((e.path(), cp));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_from_overlay_options() {
        let opts = vec![
            "index=off".to_owned(),
            "workdir=/w".to_owned(),
            "upperdir=/u".to_owned(),
            "lowerdir=/s/3/fs:/s/2/fs:/s/1/fs".to_owned(),
        ];
        assert_eq!(
            lowerdirs(&opts),
            ["/s/3/fs", "/s/2/fs", "/s/1/fs"].map(PathBuf::from)
        );
        assert!(lowerdirs(&["ro".to_owned()]).is_empty());
    }

    #[test]
    fn upper_layers_replace_and_whiteout_lower_ones() {
        let base = std::env::temp_dir().join(format!("roprof-layers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (low, top) = (base.join("1"), base.join("2"));
        std::fs::create_dir_all(low.join("etc/app")).unwrap();
        std::fs::write(low.join("etc/app/a.conf"), "a").unwrap();
        std::fs::write(low.join("etc/old"), "o").unwrap();
        std::fs::create_dir_all(low.join("var/run")).unwrap();
        std::fs::create_dir_all(top.join("etc")).unwrap();
        std::fs::write(top.join("etc/app"), "now a file").unwrap();
        std::os::unix::fs::symlink("/run", top.join("var")).unwrap_or(());
        // A whiteout needs mknod (root): checked when the tests run as root.
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let c = std::ffi::CString::new(top.join("etc/old").to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path; mode and device are plain values.
            assert_eq!(unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) }, 0);
        }
        let l = listing(&[top.clone(), low.clone()]).unwrap();
        let has = |p: &str| l.entries.contains_key(&CPath::from(p));
        assert!(has("/etc"), "untouched lower directories stay");
        assert_eq!(!has("/etc/old"), root, "a whiteout removes the lower file");
        assert_eq!(l.entries[&CPath::from("/etc/app")].kind, EntryKind::File);
        assert!(
            !has("/etc/app/a.conf"),
            "a file over a directory hides below"
        );
        assert_eq!(l.entries[&CPath::from("/var")].kind, EntryKind::Symlink);
        assert!(!has("/var/run"));
        assert_eq!(
            l.entries[&CPath::from("/var")].link_target,
            Some(CPath::from("/run"))
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
