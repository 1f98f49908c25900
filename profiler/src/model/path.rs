//! [`CPath`]: a canonical path inside the container, as raw bytes, and
//! [`canonicalize`], which folds the names the tracer sees into one.

use std::{collections::VecDeque, fmt, sync::Arc};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// The kernel's limit on symlinks followed while resolving one path
/// (`MAXSYMLINKS`); past it the kernel returns `ELOOP`.
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Joins `name` onto the canonical absolute `base` and folds it into a
/// canonical path.
///
/// - An absolute `name` starts again from `/`.
/// - `.` is dropped, `..` goes to the parent (`..` at `/` stays at `/`), as
///   the kernel does after symlinks are resolved.
/// - Directory components that are symlinks (as told by `symlinks`, which
///   returns the verbatim link target of a path that is a symlink) are
///   replaced by their target, relative to the link's parent or absolute, at
///   most [`MAX_SYMLINK_HOPS`] times; past that the rest is kept literally.
/// - The final component is not resolved (the operation acts on the link
///   itself, as `unlink`, `lstat` or `O_NOFOLLOW` do), unless the name ends
///   with `/`, which makes it a directory component like the others.
/// - Every other byte is kept exactly (spaces, newlines, non-UTF-8).
#[must_use]
pub fn canonicalize(
    base: &CPath,
    name: &[u8],
    symlinks: &dyn Fn(&CPath) -> Option<CPath>,
) -> CPath {
    let mut cur = if name.first() == Some(&b'/') || base.as_bytes().first() != Some(&b'/') {
        CPath::new(b"/".to_vec())
    } else {
        base.clone()
    };
    let trailing_slash = name.last() == Some(&b'/');
    let mut pending: VecDeque<Vec<u8>> = split(name).collect();
    let mut hops = 0;
    while let Some(comp) = pending.pop_front() {
        match comp.as_slice() {
            b"." => {}
            b".." => cur = cur.parent(),
            _ => {
                let next = cur.join(&comp);
                let is_final = pending.is_empty() && !trailing_slash;
                let target = if is_final || hops >= MAX_SYMLINK_HOPS {
                    None
                } else {
                    symlinks(&next)
                };
                match target {
                    Some(target) => {
                        hops += 1;
                        if target.as_bytes().first() == Some(&b'/') {
                            cur = CPath::new(b"/".to_vec());
                        }
                        for c in split(target.as_bytes()).rev() {
                            pending.push_front(c);
                        }
                    }
                    None => cur = next,
                }
            }
        }
    }
    cur
}

fn split(bytes: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    bytes
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
}
