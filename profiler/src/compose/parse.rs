//! The compose file read into the keys roprof runs a service with. The
//! YAML library parses; this reads each service's keys from the parsed
//! value into [`Service`], with `${VAR}` interpolation as Compose does it
//! (from roprof's environment and the project's `.env`), and names the file,
//! line and key of anything it cannot use.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use bollard::models::HealthConfig;
use serde_yaml_ng::{Mapping, Value};

pub use super::interpolate::interpolate;
use super::{ComposeError, lines::Lines};

/// The keys roprof applies while profiling.
pub const SUPPORTED: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "user",
    "working_dir",
    "ports",
    "tmpfs",
    "volumes",
    "depends_on",
    "healthcheck",
    "cap_add",
    "security_opt",
    "mem_limit",
    "read_only",
    "stop_signal",
    "stop_grace_period",
];

/// Keys that do not change what a container writes (no warning).
const INERT: &[&str] = &[
    "container_name",
    "restart",
    "labels",
    "logging",
    "expose",
    "networks",
    "profiles",
    "deploy",
    "memswap_limit",
    "hostname",
    "domainname",
    "extra_hosts",
    "dns",
    "links",
    "stdin_open",
    "tty",
];

/// A volume of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Volume {
    /// A host path (absolute), `ro` or not.
    Bind {
        /// Host path.
        source: String,
        /// Mount point.
        target: String,
        /// Read-only.
        ro: bool,
    },
    /// A named volume of the project (`external`: used by its own name).
    Named {
        /// Name in the file.
        name: String,
        /// Mount point.
        target: String,
        /// Read-only.
        ro: bool,
        /// Declared `external: true`.
        external: bool,
    },
    /// An anonymous volume.
    Anonymous {
        /// Mount point.
        target: String,
    },
}

/// What a service waits for before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Started.
    Started,
    /// Healthy.
    Healthy,
    /// Exited 0.
    CompletedSuccessfully,
}

/// One service, as roprof runs it.
#[derive(Clone, Debug, Default)]
pub struct Service {
    /// Name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Command (exec form).
    pub command: Vec<String>,
    /// Entrypoint (exec form).
    pub entrypoint: Option<Vec<String>>,
    /// `NAME=VALUE`, or `NAME` to pass roprof's own through.
    pub environment: Vec<String>,
    /// Env files, absolute.
    pub env_file: Vec<String>,
    /// User.
    pub user: Option<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Ports as `-p` values.
    pub ports: Vec<String>,
    /// tmpfs as `--tmpfs` values.
    pub tmpfs: Vec<String>,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Services to start first.
    pub depends_on: Vec<(String, Condition)>,
    /// Healthcheck.
    pub healthcheck: Option<HealthConfig>,
    /// Added capabilities.
    pub cap_add: Vec<String>,
    /// Security options.
    pub security_opt: Vec<String>,
    /// Memory limit.
    pub mem_limit: Option<String>,
    /// Stop signal.
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_grace_secs: Option<i32>,
}

/// The compose file.
pub struct Project {
    /// The file as given.
    pub file: PathBuf,
    /// Its directory (the project directory).
    pub dir: PathBuf,
    /// Compose's project name (directory name, as docker-compose 1.29).
    pub name: String,
    /// The text.
    pub text: String,
    /// The parsed document.
    pub doc: Value,
    /// Services in file order.
    pub services: Vec<Service>,
    /// Keys roprof does not apply while profiling (for a warning).
    pub ignored: Vec<String>,
}

/// Reads `file`.
pub fn load(file: &Path) -> Result<Project, ComposeError> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|source| ComposeError::Read {
        file: shown.clone(),
        source,
    })?;
    from_text(file, text)
}

/// Reads `text` as the content of `file`.
pub fn from_text(file: &Path, text: String) -> Result<Project, ComposeError> {
    let shown = file.display().to_string();
    let mut doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        ComposeError::Yaml {
            file: shown.clone(),
            line,
            column,
            reason: e.to_string(),
        }
    })?;
    doc.apply_merge().map_err(|e| ComposeError::Yaml {
        file: shown.clone(),
        line: 1,
        column: 1,
        reason: e.to_string(),
    })?;
    let dir = std::path::absolute(file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let name = std::env::var("COMPOSE_PROJECT_NAME").unwrap_or_else(|_| {
        dir.file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect()
    });
    let lines = Lines::new(&text);
    let r = Reader {
        file: &shown,
        lines: &lines,
        dir: &dir,
        vars: dot_env(&dir),
    };
    let (services, ignored) = r.services(&doc)?;
    Ok(Project {
        file: file.to_path_buf(),
        dir,
        name: if name.is_empty() {
            "default".into()
        } else {
            name
        },
        text,
        doc,
        services,
        ignored,
    })
}

/// `KEY=VALUE` lines of the project's `.env` (interpolation only).
fn dot_env(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dir.join(".env"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

pub(super) struct Reader<'a> {
    file: &'a str,
    lines: &'a Lines<'a>,
    dir: &'a Path,
    vars: BTreeMap<String, String>,
}

impl Reader<'_> {
    pub(super) fn err(&self, path: &[&str], reason: impl Into<String>) -> ComposeError {
        ComposeError::Key {
            file: self.file.to_owned(),
            line: self.lines.line_of(path),
            key: path.join("."),
            reason: reason.into(),
        }
    }

    fn services(&self, doc: &Value) -> Result<(Vec<Service>, Vec<String>), ComposeError> {
        let Some(services) = doc.get("services").and_then(Value::as_mapping) else {
            return Err(self.err(&["services"], "no `services:` mapping in the file"));
        };
        let mut out = Vec::new();
        let mut ignored = Vec::new();
        for (k, v) in services {
            let name = k
                .as_str()
                .ok_or_else(|| self.err(&["services"], "a service name is not a string"))?;
            let m = v
                .as_mapping()
                .ok_or_else(|| self.err(&["services", name], "expected a mapping of keys"))?;
            for key in m.keys().filter_map(Value::as_str) {
                if !SUPPORTED.contains(&key) && !INERT.contains(&key) {
                    ignored.push(format!(
                        "{}:{}: services.{name}.{key}: not applied while profiling",
                        self.file,
                        self.lines.line_of(&["services", name, key])
                    ));
                }
            }
            out.push(self.service(name, m)?);
        }
        for s in &out {
            for (d, _) in &s.depends_on {
                if !out.iter().any(|o| &o.name == d) {
                    return Err(self.err(
                        &["services", &s.name, "depends_on"],
                        format!("depends on `{d}`, which is not a service of this file"),
                    ));
                }
            }
        }
        Ok((out, ignored))
    }

    fn service(&self, name: &str, m: &Mapping) -> Result<Service, ComposeError> {
        let at = |key: &'static str| ["services", name, key];
        let image = match (m.get("image"), m.get("build")) {
            (Some(v), _) => self.string(&at("image"), v)?,
            (None, Some(_)) => {
                return Err(self.err(
                    &at("build"),
                    "`build:` without `image:`: roprof profiles local images and does not build; \
                     build it (docker-compose build), then name it with `image:`",
                ));
            }
            (None, None) => return Err(self.err(&["services", name], "no `image:`")),
        };
        let opt = |key: &'static str| -> Result<Option<String>, ComposeError> {
            m.get(key)
                .filter(|v| !v.is_null())
                .map(|v| self.string(&at(key), v))
                .transpose()
        };
        Ok(Service {
            name: name.to_owned(),
            image,
            command: opt_words(self, &at("command"), m.get("command"))?.unwrap_or_default(),
            entrypoint: opt_words(self, &at("entrypoint"), m.get("entrypoint"))?,
            environment: self.environment(&at("environment"), m.get("environment"))?,
            env_file: self
                .list(&at("env_file"), m.get("env_file"))?
                .into_iter()
                .map(|f| self.dir.join(f).display().to_string())
                .collect(),
            user: opt("user")?,
            working_dir: opt("working_dir")?,
            ports: self.ports(&at("ports"), m.get("ports"))?,
            tmpfs: self.list(&at("tmpfs"), m.get("tmpfs"))?,
            volumes: self.volumes(&at("volumes"), m.get("volumes"))?,
            depends_on: self.depends_on(&at("depends_on"), m.get("depends_on"))?,
            healthcheck: super::health::read(self, &at("healthcheck"), m.get("healthcheck"))?,
            cap_add: self.list(&at("cap_add"), m.get("cap_add"))?,
            security_opt: self.list(&at("security_opt"), m.get("security_opt"))?,
            mem_limit: opt("mem_limit")?,
            stop_signal: opt("stop_signal")?,
            stop_grace_secs: opt("stop_grace_period")?
                .map(|g| {
                    super::health::nanos(&g)
                        .and_then(|n| i32::try_from((n + 999_999_999) / 1_000_000_000).ok())
                        .ok_or_else(|| {
                            self.err(
                                &at("stop_grace_period"),
                                format!("`{g}` is not a duration (e.g. 10s, 1m30s)"),
                            )
                        })
                })
                .transpose()?,
        })
    }

    /// A scalar as a string, interpolated.
    pub(super) fn string(&self, path: &[&str], v: &Value) -> Result<String, ComposeError> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(self.err(path, "expected a string")),
        };
        interpolate(&s, |k| {
            std::env::var(k).ok().or_else(|| self.vars.get(k).cloned())
        })
        .map_err(|why| self.err(path, why))
    }

    /// A string or a list of strings.
    pub(super) fn list(
        &self,
        path: &[&str],
        v: Option<&Value>,
    ) -> Result<Vec<String>, ComposeError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Sequence(s)) => s.iter().map(|x| self.string(path, x)).collect(),
            Some(x) => Ok(vec![self.string(path, x)?]),
        }
    }

    fn environment(&self, path: &[&str], v: Option<&Value>) -> Result<Vec<String>, ComposeError> {
        match v {
            Some(Value::Mapping(m)) => m
                .iter()
                .map(|(k, v)| {
                    let k = self.string(path, k)?;
                    Ok(if v.is_null() {
                        k
                    } else {
                        format!("{k}={}", self.string(path, v)?)
                    })
                })
                .collect(),
            other => self.list(path, other),
        }
    }

    fn ports(&self, path: &[&str], v: Option<&Value>) -> Result<Vec<String>, ComposeError> {
        let Some(Value::Sequence(items)) = v else {
            return self.list(path, v);
        };
        items
            .iter()
            .map(|p| match p {
                Value::Mapping(m) => {
                    let get = |k: &str| m.get(k).map(|v| self.string(path, v)).transpose();
                    let target = get("target")?
                        .ok_or_else(|| self.err(path, "a long-syntax port needs `target:`"))?;
                    let mut s = String::new();
                    if let Some(ip) = get("host_ip")? {
                        s.push_str(&ip);
                        s.push(':');
                    }
                    if let Some(published) = get("published")? {
                        s.push_str(&published);
                        s.push(':');
                    } else if !s.is_empty() {
                        s.push(':');
                    }
                    s.push_str(&target);
                    if let Some(proto) = get("protocol")? {
                        s.push('/');
                        s.push_str(&proto);
                    }
                    Ok(s)
                }
                other => self.string(path, other),
            })
            .collect()
    }

    fn volumes(&self, path: &[&str], v: Option<&Value>) -> Result<Vec<Volume>, ComposeError> {
        let mut out = Vec::new();
        for item in v.and_then(Value::as_sequence).into_iter().flatten() {
            out.push(match item {
                Value::Mapping(m) => self.long_volume(path, m)?,
                other => self.short_volume(path, &self.string(path, other)?)?,
            });
        }
        Ok(out)
    }

    fn short_volume(&self, path: &[&str], s: &str) -> Result<Volume, ComposeError> {
        let parts: Vec<&str> = s.split(':').collect();
        let ro = parts
            .get(2)
            .is_some_and(|o| o.split(',').any(|o| o == "ro"));
        match parts.as_slice() {
            [target] => Ok(Volume::Anonymous {
                target: (*target).to_owned(),
            }),
            [src, target, ..] => Ok(self.source(src, target, ro)),
            [] => Err(self.err(path, format!("`{s}` is no volume"))),
        }
    }

    fn long_volume(&self, path: &[&str], m: &Mapping) -> Result<Volume, ComposeError> {
        let get = |k: &str| m.get(k).map(|v| self.string(path, v)).transpose();
        let target =
            get("target")?.ok_or_else(|| self.err(path, "a long-syntax volume needs `target:`"))?;
        let ro = m.get("read_only").and_then(Value::as_bool).unwrap_or(false);
        match (get("type")?.as_deref(), get("source")?) {
            (Some("tmpfs"), _) => Err(self.err(
                path,
                format!(
                    "the tmpfs at {target} is in long syntax; write it under `tmpfs:` for roprof"
                ),
            )),
            (_, None) => Ok(Volume::Anonymous { target }),
            (Some("bind"), Some(src)) => Ok(Volume::Bind {
                source: self.host_path(&src),
                target,
                ro,
            }),
            (_, Some(src)) => Ok(self.source(&src, &target, ro)),
        }
    }

    fn source(&self, src: &str, target: &str, ro: bool) -> Volume {
        if src.starts_with(['.', '/', '~']) {
            Volume::Bind {
                source: self.host_path(src),
                target: target.to_owned(),
                ro,
            }
        } else {
            Volume::Named {
                name: src.to_owned(),
                target: target.to_owned(),
                ro,
                external: false,
            }
        }
    }

    fn host_path(&self, src: &str) -> String {
        let p = match src.strip_prefix("~/") {
            Some(rest) => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest),
            None => self.dir.join(src),
        };
        // `./a/../b` as docker-compose normalises it.
        let mut out = PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                c => out.push(c),
            }
        }
        out.display().to_string()
    }

    fn depends_on(
        &self,
        path: &[&str],
        v: Option<&Value>,
    ) -> Result<Vec<(String, Condition)>, ComposeError> {
        match v {
            Some(Value::Mapping(m)) => m
                .iter()
                .map(|(k, v)| {
                    let name = self.string(path, k)?;
                    let cond = match v.get("condition").and_then(Value::as_str) {
                        None | Some("service_started") => Condition::Started,
                        Some("service_healthy") => Condition::Healthy,
                        Some("service_completed_successfully") => Condition::CompletedSuccessfully,
                        Some(c) => {
                            return Err(self.err(path, format!("unknown condition `{c}`")));
                        }
                    };
                    Ok((name, cond))
                })
                .collect(),
            other => Ok(self
                .list(path, other)?
                .into_iter()
                .map(|n| (n, Condition::Started))
                .collect()),
        }
    }
}

/// Reads a command or entrypoint: a string is split as a shell would
/// (without running one, as Compose does), a list taken as it is.
fn opt_words(
    r: &Reader<'_>,
    path: &[&str],
    v: Option<&Value>,
) -> Result<Option<Vec<String>>, ComposeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Sequence(s)) => Ok(Some(
            s.iter()
                .map(|x| r.string(path, x))
                .collect::<Result<_, _>>()?,
        )),
        Some(x) => {
            let s = r.string(path, x)?;
            shlex::split(&s)
                .map(Some)
                .ok_or_else(|| r.err(path, "unbalanced quotes"))
        }
    }
}
