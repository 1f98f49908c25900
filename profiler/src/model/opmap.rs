//! [`OpMap`]: the per-operation counts of one path, and [`ErrorCounts`],
//! the failures of one operation.
//!
//! A path sees one to a few distinct operations, and a run may see 100k
//! paths: a `BTreeMap` would allocate a ~400-byte node per path. This is a
//! boxed slice sorted by operation (16 bytes inline, one exact-size
//! allocation of 24 bytes per operation), with the part of `BTreeMap`'s API
//! the code uses, and the same serialised form (a map in operation order).

use std::{
    collections::BTreeMap,
    ops::{Deref, DerefMut, Index},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::SerializeMap as _};

use super::{Op, OpStats};

/// Outcome counts by operation, sorted by operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpMap(Box<[(Op, OpStats)]>);

/// A slot of an [`OpMap`], see [`OpMap::entry`].
pub struct OpEntry<'a> {
    map: &'a mut OpMap,
    op: Op,
}

impl<'a> OpEntry<'a> {
    /// The counts of the operation, inserted as zero when absent.
    #[must_use]
    pub fn or_default(self) -> &'a mut OpStats {
        let i = match self.map.0.binary_search_by_key(&self.op, |(o, _)| *o) {
            Ok(i) => i,
            Err(i) => {
                // Rare (once per distinct operation of a path): rebuild
                // the slice one longer, allocated at its exact size (a
                // `Vec` would grow to four entries and shrink back, and
                // at 100k paths the chunks it leaves behind add up).
                let old = std::mem::take(&mut self.map.0);
                let mut v = Vec::with_capacity(old.len() + 1);
                let mut rest = old.into_vec().into_iter();
                v.extend(rest.by_ref().take(i));
                v.push((self.op, OpStats::default()));
                v.extend(rest);
                self.map.0 = v.into_boxed_slice();
                i
            }
        };
        &mut self.map.0[i].1
    }
}

impl OpMap {
    /// The counts of `op`, if it was seen.
    #[must_use]
    pub fn get(&self, op: &Op) -> Option<&OpStats> {
        self.0
            .binary_search_by_key(op, |(o, _)| *o)
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Mutable counts of `op`, if it was seen.
    pub fn get_mut(&mut self, op: &Op) -> Option<&mut OpStats> {
        self.0
            .binary_search_by_key(op, |(o, _)| *o)
            .ok()
            .map(|i| &mut self.0[i].1)
    }

    /// The slot of `op` (see [`OpEntry::or_default`]).
    pub fn entry(&mut self, op: Op) -> OpEntry<'_> {
        OpEntry { map: self, op }
    }

    /// Sets the counts of `op`; returns the previous ones.
    pub fn insert(&mut self, op: Op, stats: OpStats) -> Option<OpStats> {
        let slot = self.entry(op).or_default();
        let old = std::mem::replace(slot, stats);
        (old != OpStats::default()).then_some(old)
    }

    /// True if `op` was seen.
    #[must_use]
    pub fn contains_key(&self, op: &Op) -> bool {
        self.get(op).is_some()
    }

    /// Operations and their counts, in operation order.
    pub fn iter(&self) -> impl Iterator<Item = (&Op, &OpStats)> {
        self.0.iter().map(|(o, s)| (o, s))
    }

    /// Operations, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Op> {
        self.0.iter().map(|(o, _)| o)
    }

    /// Counts, in operation order.
    pub fn values(&self) -> impl Iterator<Item = &OpStats> {
        self.0.iter().map(|(_, s)| s)
    }

    /// Number of operations.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no operation was seen.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Index<&Op> for OpMap {
    type Output = OpStats;

    fn index(&self, op: &Op) -> &OpStats {
        self.get(op)
            .unwrap_or_else(|| panic!("no counts for operation {op:?}"))
    }
}

impl FromIterator<(Op, OpStats)> for OpMap {
    /// Later counts of the same operation replace earlier ones, as
    /// collecting into a map does.
    fn from_iter<I: IntoIterator<Item = (Op, OpStats)>>(iter: I) -> Self {
        let map: BTreeMap<Op, OpStats> = iter.into_iter().collect();
        OpMap(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a OpMap {
    type Item = (&'a Op, &'a OpStats);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Op, OpStats)>,
        fn(&'a (Op, OpStats)) -> (&'a Op, &'a OpStats),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(o, s)| (o, s))
    }
}

impl IntoIterator for OpMap {
    type Item = (Op, OpStats);
    type IntoIter = std::vec::IntoIter<(Op, OpStats)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl Serialize for OpMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (op, st) in self.iter() {
            m.serialize_entry(op, st)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for OpMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<Op, OpStats>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// Failed calls by errno name. Most operations never fail: `None` (one
/// word) stands for no failure, where an empty `BTreeMap` takes three, and
/// at 100k paths the difference is megabytes. Reads (and, through
/// `DerefMut`, writes) as the map; serialised as it.
#[derive(Clone, Debug, Default)]
#[expect(
    clippy::box_collection,
    reason = "the point: one word inline when empty, the map's three only when a call failed"
)]
pub struct ErrorCounts(Option<Box<BTreeMap<String, u64>>>);

static NO_ERRORS: BTreeMap<String, u64> = BTreeMap::new();

impl ErrorCounts {
    /// True when no call failed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|m| m.is_empty())
    }
}

impl Deref for ErrorCounts {
    type Target = BTreeMap<String, u64>;

    fn deref(&self) -> &Self::Target {
        self.0.as_deref().unwrap_or(&NO_ERRORS)
    }
}

impl DerefMut for ErrorCounts {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.get_or_insert_default()
    }
}

impl PartialEq for ErrorCounts {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for ErrorCounts {}

impl From<BTreeMap<String, u64>> for ErrorCounts {
    fn from(m: BTreeMap<String, u64>) -> Self {
        ErrorCounts((!m.is_empty()).then(|| Box::new(m)))
    }
}

impl FromIterator<(String, u64)> for ErrorCounts {
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(iter: I) -> Self {
        iter.into_iter().collect::<BTreeMap<_, _>>().into()
    }
}

impl IntoIterator for ErrorCounts {
    type Item = (String, u64);
    type IntoIter = std::collections::btree_map::IntoIter<String, u64>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.map(|m| *m).unwrap_or_default().into_iter()
    }
}

impl<'a> IntoIterator for &'a ErrorCounts {
    type Item = (&'a String, &'a u64);
    type IntoIter = std::collections::btree_map::Iter<'a, String, u64>;

    fn into_iter(self) -> Self::IntoIter {
        (**self).iter()
    }
}

impl Serialize for ErrorCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ErrorCounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, u64>::deserialize(d)?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_the_map_it_replaces_and_serialises_the_same() {
        let mut m = OpMap::default();
        let mut b: BTreeMap<Op, OpStats> = BTreeMap::new();
        for (op, ok) in [
            (Op::Write, 3),
            (Op::Create, 1),
            (Op::Write, 2),
            (Op::Chmod, 5),
        ] {
            m.entry(op).or_default().ok += ok;
            b.entry(op).or_default().ok += ok;
        }
        *m.entry(Op::Unlink)
            .or_default()
            .errors
            .entry("EROFS".into())
            .or_default() += 1;
        *b.entry(Op::Unlink)
            .or_default()
            .errors
            .entry("EROFS".into())
            .or_default() += 1;
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            b.iter().collect::<Vec<_>>(),
            "same entries, same order"
        );
        assert_eq!(m[&Op::Write].ok, 5);
        assert!(m.get(&Op::Mkdir).is_none());
        assert_eq!(m.len(), 4);
        let json = serde_json::to_string(&m).expect("serialises");
        assert_eq!(json, serde_json::to_string(&b).expect("serialises"));
        let back: OpMap = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, m);
        assert_eq!(
            std::mem::size_of::<OpMap>(),
            16,
            "a boxed slice: two words inline"
        );
        assert_eq!(
            std::mem::size_of::<(Op, OpStats)>(),
            24,
            "an operation's counts: the operation, ok, one word of errors"
        );
        let mut e = ErrorCounts::default();
        assert!(e.is_empty() && e == BTreeMap::new().into());
        let _ = e.get_mut("EROFS");
        assert!(
            e.is_empty() && e == ErrorCounts::default(),
            "a lookup adds nothing"
        );
    }
}
