//! The user's run options as a report records them: docker-run-like
//! options, and the `-e` variables by name (values only with
//! `--reveal-env`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One variable given with `-e`: its name, and its value only in a report
/// written with `--reveal-env` (or read from a schema 1 report).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    /// Variable name.
    pub name: String,
    /// Value as given; `None` when withheld or passed through (`-e NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("EnvVar");
        d.field("name", &self.name);
        if self.value.is_some() {
            d.field("value", &"<not shown>");
        }
        d.finish()
    }
}

/// Whether a report holds the `-e` values it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvValues {
    /// Names only (the default): whoever runs the output exports the
    /// variables first.
    #[default]
    Withheld,
    /// Values written as given (`--reveal-env`; files are then 0600).
    Revealed,
}

/// The user's docker-run-like options, kept to render them back verbatim,
/// except the environment's values (see `crate::environment`).
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
