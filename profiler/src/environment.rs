//! The environment given to the profiled container (`-e`, `--env-file`).
//!
//! Values are treated as secrets unless the user says otherwise. They are
//! resolved here the way `docker run` resolves them, into a [`ContainerEnv`]
//! that only the engine call reads: it has no `Serialize` and its `Debug`
//! shows names only, so the closed loop can reuse the real values while
//! nothing writes them down. Reports and every rendered format keep the
//! variables' names ([`EnvVar`] without a value) and refer to env files by
//! path, unless `--reveal-env` ([`crate::model::EnvValues::Revealed`]).
//!
//! [`apply_policy`] is the one place outputs pass through: it drops the
//! values from the run options and removes them from the free text a run
//! brings back from the container (its log tail, notes), where an
//! application may have printed them.

use std::{fmt, path::PathBuf};

use crate::model::{EnvVar, Report};

/// Errors reading `-e` and `--env-file`. None of them quotes a value.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// `-e =value` or `-e ''`.
    #[error("-e/--env argument {index} has no variable name (expected NAME or NAME=VALUE)")]
    NoName {
        /// 1-based position among the `-e` arguments.
        index: usize,
    },
    /// The env file cannot be read.
    #[error("cannot read --env-file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line of the env file is not UTF-8 (Docker refuses those too).
    #[error("--env-file {path}, line {line}: not valid UTF-8")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A line of the env file starts with `=`.
    #[error("--env-file {path}, line {line}: no variable name before `=`")]
    FileNoName {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A variable name in the env file holds a space or a tab. (The name is
    /// not quoted: a malformed line may be a bare value.)
    #[error("--env-file {path}, line {line}: the variable name contains whitespace")]
    Whitespace {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// The env file path cannot be made absolute.
    #[error("cannot resolve the path of --env-file {path}: {reason}")]
    Path {
        /// The path as given.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A pass-through variable holds bytes the Engine API cannot carry.
    #[error(
        "variable {name} in roprof's environment is not valid UTF-8; it cannot be passed to the container"
    )]
    NotUnicode {
        /// The variable.
        name: String,
    },
}

/// What the container is given, in Docker's order (env files, then `-e`):
/// `NAME=value`, or a bare `NAME`, which unsets it (`docker run -e NAME`
/// when NAME is not set). In memory only: not `Serialize`, and `Debug`
/// shows names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ContainerEnv {
    entries: Vec<String>,
    unset: Vec<String>,
}

impl fmt::Debug for ContainerEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.entries
                    .iter()
                    .map(|e| e.split('=').next().unwrap_or("")),
            )
            .finish()
    }
}

impl ContainerEnv {
    /// Resolves `-e` variables (a missing value is looked up with `lookup`,
    /// as `docker run -e NAME` does) after the variables of `env_files`.
    pub fn resolve(
        vars: &[EnvVar],
        env_files: &[String],
        lookup: impl Fn(&str) -> Result<Option<String>, EnvError>,
    ) -> Result<Self, EnvError> {
        let mut env = ContainerEnv::default();
        for f in env_files {
            let path = PathBuf::from(f);
            let bytes = std::fs::read(&path).map_err(|source| EnvError::Read {
                path: path.clone(),
                source,
            })?;
            env.entries.extend(parse_env_file(&bytes, &path, &lookup)?);
        }
        for v in vars {
            let value = match &v.value {
                Some(value) => Some(value.clone()),
                None => lookup(&v.name)?,
            };
            if let Some(value) = value {
                env.entries.push(format!("{}={value}", v.name));
            } else {
                env.entries.push(v.name.clone());
                env.unset.push(v.name.clone());
            }
        }
        Ok(env)
    }

    /// The entries for the Engine API's `Env`.
    #[must_use]
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// `-e NAME` variables that were not set, so the container runs
    /// without them.
    #[must_use]
    pub fn unset_names(&self) -> &[String] {
        &self.unset
    }

    /// `(name, value)` of every variable that has a value.
    pub fn values(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().filter_map(|e| e.split_once('='))
    }
}

/// roprof's own environment, for pass-through names.
pub fn from_process(name: &str) -> Result<Option<String>, EnvError> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(EnvError::NotUnicode { name: name.into() }),
    }
}

/// `-e` arguments as given: `NAME=VALUE` or `NAME`.
pub fn parse_env_args(args: &[String]) -> Result<Vec<EnvVar>, EnvError> {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (a.as_str(), None),
            };
            if name.is_empty() {
                return Err(EnvError::NoName { index: i + 1 });
            }
            Ok(EnvVar {
                name: name.to_owned(),
                value,
            })
        })
        .collect()
}

/// `--env-file` paths made absolute (not canonical: symlinks are kept), so
/// the rendered outputs find the file wherever they are run from.
pub fn absolute_env_files(files: &[String]) -> Result<Vec<String>, EnvError> {
    files
        .iter()
        .map(|f| {
            let err = |reason: String| EnvError::Path {
                path: f.into(),
                reason,
            };
            let abs = std::path::absolute(f).map_err(|e| err(e.to_string()))?;
            abs.to_str()
                .map(str::to_owned)
                .ok_or_else(|| err("the absolute path is not UTF-8".into()))
        })
        .collect()
}

/// Parses an env file as `docker run --env-file` does (docker/cli
/// `parseKeyValueFile`): a UTF-8 BOM is dropped, leading whitespace is
/// trimmed, blank lines and `#` lines are skipped, `NAME=value` keeps the
/// value verbatim (no quote processing), and a bare `NAME` takes its value
/// from `lookup` or is left out when it is not set.
pub fn parse_env_file(
    bytes: &[u8],
    path: &std::path::Path,
    lookup: impl Fn(&str) -> Result<Option<String>, EnvError>,
) -> Result<Vec<String>, EnvError> {
    let mut out = Vec::new();
    let mut raw_lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if bytes.ends_with(b"\n") {
        raw_lines.pop();
    }
    for (i, raw) in raw_lines.into_iter().enumerate() {
        let line_no = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = if i == 0 {
            raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
        } else {
            raw
        };
        let text = std::str::from_utf8(raw).map_err(|_| EnvError::NotUtf8 {
            path: path.to_path_buf(),
            line: line_no,
        })?;
        let line = text.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((n, v)) => (n.trim_start_matches([' ', '\t']), Some(v)),
            None => (line.trim_start_matches([' ', '\t']), None),
        };
        if name.contains([' ', '\t']) {
            return Err(EnvError::Whitespace {
                path: path.to_path_buf(),
                line: line_no,
            });
        }
        if name.is_empty() {
            return Err(EnvError::FileNoName {
                path: path.to_path_buf(),
                line: line_no,
            });
        }
        match value {
            Some(v) => out.push(format!("{name}={v}")),
            None => {
                if let Some(v) = lookup(name)? {
                    out.push(format!("{name}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// Values shorter than this are not scrubbed from free text: `1`, `yes` or
/// `dev` would mangle every log line, and guard nothing.
pub const MIN_SCRUBBED_LEN: usize = 4;

/// Makes `report` fit to print or write, unless `reveal`: every value the
/// run was given (`env`, env files included) or the report carries
/// (schema 1 reports, `--reveal-env` reports) is replaced by
/// `<NAME withheld>` in the report's free text (the container's log tail,
/// notes, reasons, round differences and actions), and the run options
/// keep names only. Returns the names whose value still appears in an
/// observed path or a mount target, which are evidence and are not
/// rewritten, so the caller can warn.
pub fn apply_policy(report: &mut Report, env: &ContainerEnv, reveal: bool) -> Vec<String> {
    if reveal {
        return Vec::new();
    }
    let mut secrets: Vec<(String, String)> = env
        .values()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .chain(
            report
                .run_options
                .env
                .iter()
                .filter_map(|e| Some((e.name.clone(), e.value.clone()?))),
        )
        .filter(|(_, v)| v.len() >= MIN_SCRUBBED_LEN)
        .collect();
    // Longest first, so a value that contains another is replaced whole.
    secrets.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    report.run_options.withhold_env_values();
    if secrets.is_empty() {
        return Vec::new();
    }
    let scrub = |s: &mut String| {
        for (name, value) in &secrets {
            if s.contains(value.as_str()) {
                *s = s.replace(value.as_str(), &format!("<{name} withheld>"));
            }
        }
    };
    let run = &mut report.run;
    run.logs_tail.iter_mut().for_each(scrub);
    run.notes.iter_mut().for_each(scrub);
    run.incomplete_reason.iter_mut().for_each(scrub);
    for r in &mut report.rounds {
        r.differences.iter_mut().for_each(scrub);
        scrub(&mut r.action);
    }
    let plan = &mut report.plan;
    plan.warnings.iter_mut().for_each(scrub);
    for x in &mut plan.excluded {
        // Reasons are shared between exclusions: only one holding a value
        // gets a copy of its own.
        if secrets.iter().any(|(_, v)| x.reason.contains(v.as_str())) {
            let mut reason = x.reason.to_string();
            scrub(&mut reason);
            x.reason = reason.into();
        }
    }
    plan.mounts
        .iter_mut()
        .for_each(|m| scrub(&mut m.evidence.reason));
    let in_paths = |value: &str| {
        let v = value.as_bytes();
        let holds = |p: &[u8]| p.windows(v.len()).any(|w| w == v);
        report.paths.iter().any(|o| holds(o.path.as_bytes()))
            || report.plan.mounts.iter().any(|m| {
                holds(m.target.as_bytes()) || m.evidence.paths.iter().any(|p| holds(p.as_bytes()))
            })
            || report
                .plan
                .excluded
                .iter()
                .any(|x| holds(x.path.as_bytes()))
    };
    let mut names: Vec<String> = secrets
        .iter()
        .filter(|(_, v)| in_paths(v))
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
#[path = "environment_tests.rs"]
mod tests;
