//! Path helpers: queries on the image listing (symlinks, subtrees), and
//! canonicalisation of config paths through it.
//!
//! Everything works on raw bytes: a container path need not be UTF-8 and a
//! single changed byte would put a mount on the wrong directory.

use crate::model::{CPath, EntryKind, ImageEntry, ImageListing, canonicalize};

/// A symlink callback for [`canonicalize`] backed by the image listing.
pub fn listing_symlinks(listing: &ImageListing) -> impl Fn(&CPath) -> Option<CPath> + '_ {
    |p| {
        listing
            .entries
            .get(p)
            .filter(|e| e.kind == EntryKind::Symlink)
            .and_then(|e| e.link_target.clone())
    }
}

/// Canonicalises an absolute path given by a human or an image config
/// (`-v` targets, `VOLUME`s) through the symlinks of the image, including
/// the final component (a mount lands on the link's target).
#[must_use]
pub fn canonicalize_config_path(listing: &ImageListing, path: &[u8]) -> CPath {
    let mut with_slash = path.to_vec();
    with_slash.push(b'/');
    canonicalize(&CPath::from("/"), &with_slash, &listing_symlinks(listing))
}

/// Entries strictly below `dir` in the listing (not `dir` itself).
pub fn entries_below<'a>(
    listing: &'a ImageListing,
    dir: &'a CPath,
) -> impl Iterator<Item = &'a ImageEntry> + 'a {
    // In byte order "/a-b" sorts between "/a" and "/a/x", so a plain
    // `starts_with` scan from `dir` would stop too early: range over
    // ["/a/", "/a0") instead ('0' is the byte after '/').
    let bytes = dir.as_bytes();
    let (lo, hi) = if bytes == b"/" {
        (CPath::from("/"), CPath::from("0"))
    } else {
        let mut lo = bytes.to_vec();
        lo.push(b'/');
        let mut hi = bytes.to_vec();
        hi.push(b'0');
        (CPath::new(lo), CPath::new(hi))
    };
    listing
        .entries
        .range(lo..hi)
        .map(|(_, e)| e)
        .filter(move |e| e.path != *dir)
}

/// True for `/` itself.
#[must_use]
pub fn is_root(p: &CPath) -> bool {
    p.as_bytes() == b"/"
}

/// Number of components (`/` is 0).
#[must_use]
pub fn depth(p: &CPath) -> usize {
    p.components().count()
}

/// Deepest common ancestor of two absolute paths.
#[must_use]
pub fn common_ancestor(a: &CPath, b: &CPath) -> CPath {
    let mut out = CPath::from("/");
    for (x, y) in a.components().zip(b.components()) {
        if x != y {
            break;
        }
        out = out.join(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn links(map: &BTreeMap<&'static [u8], &'static [u8]>) -> impl Fn(&CPath) -> Option<CPath> {
        let map: BTreeMap<Vec<u8>, Vec<u8>> =
            map.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        move |p: &CPath| map.get(p.as_bytes()).cloned().map(CPath::new)
    }

    #[test]
    fn canonicalize_table() {
        let table: BTreeMap<&'static [u8], &'static [u8]> = [
            (&b"/var/run"[..], &b"/run"[..]),
            (b"/lib", b"usr/lib"),
            (b"/usr/lib/rel", b"../share"),
            (b"/loop", b"/loop"),
            (b"/a/up", b".."),
        ]
        .into_iter()
        .collect();
        let cb = links(&table);
        let cases: &[(&[u8], &[u8], &[u8])] = &[
            (b"/", b"/var/run/x.pid", b"/run/x.pid"),
            (b"/var", b"run/x.pid", b"/run/x.pid"),
            (b"/var", b"run", b"/var/run"),
            (b"/var", b"run/", b"/run"),
            (b"/srv", b"a/../b", b"/srv/b"),
            (b"/srv", b"//x", b"/x"),
            (b"/srv", b"./x/./y", b"/srv/x/y"),
            (b"/", b"../../..", b"/"),
            (b"/srv", b"", b"/srv"),
            (b"/srv", b"dir/", b"/srv/dir"),
            (b"/", b"/lib/libc.so", b"/usr/lib/libc.so"),
            (b"/", b"/lib/rel/x", b"/usr/share/x"),
            (b"/a", b"up/b", b"/b"),
            (b"/", b"/with space/it's", b"/with space/it's"),
            (b"/", b"/caf\xe9/\xff\xfe", b"/caf\xe9/\xff\xfe"),
            (b"/", b"/line\nbreak/x", b"/line\nbreak/x"),
            (b"/var/run", b"x.pid", b"/var/run/x.pid"),
        ];
        for (base, name, want) in cases {
            let got = canonicalize(&CPath::new(base.to_vec()), name, &cb);
            assert_eq!(
                got.as_bytes(),
                *want,
                "canonicalize({:?}, {:?}) should be {:?}",
                CPath::new(base.to_vec()),
                CPath::new(name.to_vec()),
                CPath::new(want.to_vec())
            );
        }
    }

    #[test]
    fn canonicalize_stops_after_max_hops() {
        let table: BTreeMap<&'static [u8], &'static [u8]> =
            [(&b"/loop"[..], &b"/loop"[..])].into_iter().collect();
        let got = canonicalize(&CPath::from("/"), b"/loop/x", &links(&table));
        assert_eq!(
            got,
            CPath::from("/loop/x"),
            "a symlink loop must end, kept literally"
        );
    }

    #[test]
    fn entries_below_is_exact_subtree() {
        let mut listing = ImageListing::default();
        for p in ["/a", "/a-b", "/a/x", "/a/x/y", "/ab", "/b"] {
            listing.entries.insert(
                CPath::from(p),
                ImageEntry {
                    path: CPath::from(p),
                    kind: EntryKind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    link_target: None,
                },
            );
        }
        let got: Vec<_> = entries_below(&listing, &CPath::from("/a"))
            .map(|e| e.path.display())
            .collect();
        assert_eq!(
            got,
            ["/a/x", "/a/x/y"],
            "only the subtree of /a, not /a-b or /ab"
        );
        assert_eq!(entries_below(&listing, &CPath::from("/")).count(), 6);
    }

    #[test]
    fn common_ancestor_by_component() {
        assert_eq!(
            common_ancestor(&CPath::from("/var/lib/a"), &CPath::from("/var/libx")),
            CPath::from("/var")
        );
        assert_eq!(
            common_ancestor(&CPath::from("/a"), &CPath::from("/b")),
            CPath::from("/")
        );
    }
}
