//! Reading the kernel's per-key counts (`DEDUP`, `FILES`) one key at a
//! time, for the records a collector holds.
//!
//! A run of 100k distinct paths has 100k entries in each map: copied into
//! a userspace hash map they weighed ~10 MiB at the moment the run's memory
//! peaks, and iterating the map cost two system calls per entry where one
//! lookup per record does.

use std::{cell::RefCell, collections::HashMap as StdHashMap, hash::BuildHasher};

use aya::{
    Pod,
    maps::{HashMap, MapData, MapError},
};

use super::{TraceError, map_err};

/// Values by `u64` key: a kernel map read in place, or a snapshot of one.
pub trait Lookup<V> {
    /// The value of `key`, if there is one.
    fn lookup(&self, key: u64) -> Option<V>;
}

impl<V: Copy, S: BuildHasher> Lookup<V> for StdHashMap<u64, V, S> {
    fn lookup(&self, key: u64) -> Option<V> {
        self.get(&key).copied()
    }
}

/// A kernel hash map read one key at a time. A lookup that fails other than
/// with "no such key" reads as absent and is kept for [`KernelLookup::check`].
pub struct KernelLookup<'a, V> {
    name: &'static str,
    map: HashMap<&'a MapData, u64, V>,
    failed: RefCell<Option<MapError>>,
}

impl<'a, V: Pod> KernelLookup<'a, V> {
    pub(super) fn new(name: &'static str, map: &'a aya::maps::Map) -> Result<Self, TraceError> {
        Ok(KernelLookup {
            name,
            map: HashMap::try_from(map).map_err(map_err(name))?,
            failed: RefCell::new(None),
        })
    }

    /// The first lookup error, if any: the values read are then incomplete.
    pub fn check(self) -> Result<(), TraceError> {
        match self.failed.into_inner() {
            Some(e) => Err(map_err(self.name)(e)),
            None => Ok(()),
        }
    }
}

impl<V: Pod> Lookup<V> for KernelLookup<'_, V> {
    fn lookup(&self, key: u64) -> Option<V> {
        match self.map.get(&key, 0) {
            Ok(v) => Some(v),
            Err(MapError::KeyNotFound) => None,
            Err(e) => {
                self.failed.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}
