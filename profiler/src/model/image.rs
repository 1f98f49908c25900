//! The image's filesystem listing and the config fields the analysis
//! reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::CPath;

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
