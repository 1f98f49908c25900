//! A [`ContainerSpec`] as Podman's libpod `SpecGenerator` (the body of
//! `POST /libpod/containers/create`). Pure: no engine, unit-tested.
//!
//! Podman's Docker-compatible create cannot make a read-only root really
//! read-only: it always sets `read_write_tmpfs`, so `/run`, `/tmp` and
//! `/var/tmp` become writable tmpfs and a read-only round never sees
//! `EROFS` there. The libpod create says `read_write_tmpfs: false`. The
//! rest of the translation keeps Docker's semantics where Podman's
//! defaults differ: a `--tmpfs` starts empty (`notmpcopyup`; Podman copies
//! the image's files up by default) and gets Docker's default options.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ContainerSpec, RuntimeError, flags::split_tmpfs, parse_memory, parse_publish};

/// Name prefix of the tmpfs volumes made for a tmpfs with an owner; they
/// are removed with their container.
pub const TMPFS_VOLUME_PREFIX: &str = "roprof-tmpfs-";

/// What a libpod create needs: the tmpfs volumes to create first, then
/// the container.
#[derive(Debug)]
pub struct Prepared {
    /// The create body.
    pub spec: SpecGenerator,
    /// `POST /libpod/volumes/create` bodies.
    pub tmpfs_volumes: Vec<TmpfsVolume>,
}

/// A local-driver volume that is a tmpfs (libpod's volume create body).
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsVolume {
    /// Volume name ([`TMPFS_VOLUME_PREFIX`]…).
    pub name: String,
    driver: String,
    label: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
}

/// The subset of libpod's `SpecGenerator` roprof fills (Podman 4.x names).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct SpecGenerator {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    image: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    env: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    work_dir: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    portmappings: Vec<PortMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<Namespace>,
    #[serde(rename = "Networks", skip_serializing_if = "BTreeMap::is_empty")]
    networks: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    selinux_opts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apparmor_profile: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seccomp_profile_path: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_new_privileges: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mounts: Vec<Mount>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<NamedVolume>,
    read_only_filesystem: bool,
    /// Always false: a read-only root is read-only, as with Docker.
    read_write_tmpfs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_limits: Option<Resources>,
}

#[derive(Debug, Serialize, PartialEq)]
struct PortMapping {
    #[serde(skip_serializing_if = "String::is_empty")]
    host_ip: String,
    container_port: u16,
    host_port: u16,
    protocol: String,
}

#[derive(Debug, Serialize, PartialEq)]
struct Namespace {
    nsmode: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
}

/// An OCI mount (binds and tmpfs).
#[derive(Debug, Serialize, PartialEq)]
struct Mount {
    destination: String,
    #[serde(rename = "type")]
    kind: String,
    source: String,
    options: Vec<String>,
}

/// A named volume; an empty name makes an anonymous one.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct NamedVolume {
    name: String,
    dest: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
struct Resources {
    memory: Memory,
}

#[derive(Debug, Serialize, PartialEq)]
struct Memory {
    limit: i64,
    /// Memory plus swap, as Docker's `MemorySwap`: equal to the limit, so
    /// the container gets no swap on top of it.
    swap: i64,
}

impl SpecGenerator {
    /// The image reference, for messages.
    #[must_use]
    pub fn image(&self) -> &str {
        &self.image
    }
}

fn options(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The libpod create body for `spec`, labelled with `labels`, and the
/// tmpfs volumes it mounts.
pub fn spec_generator(
    spec: &ContainerSpec,
    labels: BTreeMap<String, String>,
) -> Result<Prepared, RuntimeError> {
    let run = &spec.run;
    let mut g = SpecGenerator {
        name: spec.name.clone(),
        image: spec.image.clone(),
        command: run.command.clone(),
        entrypoint: run.entrypoint.iter().cloned().collect(),
        env: spec
            .env
            .entries()
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        labels,
        user: run.user.clone(),
        work_dir: run.workdir.clone(),
        cap_add: run.cap_add.clone(),
        read_only_filesystem: spec.read_only,
        read_write_tmpfs: false,
        ..SpecGenerator::default()
    };
    ports(&mut g, &run.publish)?;
    network(&mut g, run.network.as_deref());
    for opt in &run.security_opt {
        security_opt(&mut g, opt)?;
    }
    if let Some(m) = run.memory.as_deref() {
        let limit = parse_memory(m)?;
        g.resource_limits = Some(Resources {
            memory: Memory { limit, swap: limit },
        });
    }
    let tmpfs = run
        .tmpfs
        .iter()
        .map(|t| split_tmpfs(t))
        .chain(spec.extra_tmpfs.iter().cloned());
    let mut volumes = Vec::new();
    for (target, opts) in tmpfs {
        let t = TmpfsOptions::docker(&target, &opts)?;
        if t.owned {
            // Podman refuses uid=/gid= on a tmpfs mount: a tmpfs volume
            // of the local driver takes them (and `nocopy` keeps it
            // empty, as Docker's tmpfs is).
            let name = format!(
                "{TMPFS_VOLUME_PREFIX}{}",
                volume_suffix(spec, volumes.len())
            );
            let mut options = t.flags;
            options.push("nocopy".into());
            g.volumes.push(NamedVolume {
                name: name.clone(),
                dest: target,
                options,
            });
            volumes.push(TmpfsVolume {
                name,
                driver: "local".into(),
                label: g.labels.clone(),
                options: BTreeMap::from([
                    ("type".to_owned(), "tmpfs".to_owned()),
                    ("device".to_owned(), "tmpfs".to_owned()),
                    ("o".to_owned(), t.data.join(",")),
                ]),
            });
        } else {
            let mut options = t.flags;
            options.extend(t.data);
            options.push("notmpcopyup".into());
            g.mounts.push(Mount {
                destination: target,
                kind: "tmpfs".into(),
                source: "tmpfs".into(),
                options,
            });
        }
    }
    for bind in run.volumes.iter().chain(&spec.extra_binds) {
        volume(&mut g, bind)?;
    }
    Ok(Prepared {
        spec: g,
        tmpfs_volumes: volumes,
    })
}

/// A unique enough suffix for the `n`th tmpfs volume of one container.
fn volume_suffix(spec: &ContainerSpec, n: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let who = spec
        .name
        .clone()
        .unwrap_or_else(|| std::process::id().to_string());
    format!("{who}-{nanos}-{n}")
}

/// A `--tmpfs` value split the way Docker applies it: mount flags (with
/// Docker's `noexec,nosuid,nodev` unless the value says otherwise) and
/// the filesystem's own options.
struct TmpfsOptions {
    flags: Vec<String>,
    data: Vec<String>,
    /// `uid=` or `gid=` given.
    owned: bool,
}

impl TmpfsOptions {
    fn docker(target: &str, opts: &str) -> Result<Self, RuntimeError> {
        let mut flags = vec!["rw".to_owned()];
        let mut data = Vec::new();
        let mut owned = false;
        for o in options(opts) {
            let key = o.split_once('=').map_or(o.as_str(), |(k, _)| k);
            match key {
                "rw" => {}
                "ro" => flags[0] = o,
                "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev" | "atime" | "noatime"
                | "relatime" | "strictatime" | "sync" | "async" => flags.push(o),
                "uid" | "gid" => {
                    owned = true;
                    data.push(o);
                }
                _ => data.push(o),
            }
        }
        for (off, on) in [("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")] {
            if !flags.iter().any(|f| f == off || f == on) {
                flags.push(off.to_owned());
            }
        }
        if owned {
            // The local driver reads `size` as a quota: give tmpfs's own
            // block count instead.
            for d in &mut data {
                if let Some(size) = d.strip_prefix("size=") {
                    let bytes = tmpfs_bytes(size).ok_or_else(|| RuntimeError::Option {
                        option: "--tmpfs",
                        value: format!("{target}:{opts}"),
                        reason: format!("size `{size}` is not a size Podman's tmpfs volume can take (bytes, k, m or g)"),
                    })?;
                    *d = format!("nr_blocks={}", bytes.div_ceil(4096));
                }
            }
        }
        Ok(Self { flags, data, owned })
    }
}

/// A tmpfs `size=` value in bytes (`16m`, `1g`, `65536k`, `4096`).
fn tmpfs_bytes(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (num, mult) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (v.as_str(), 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn ports(g: &mut SpecGenerator, publish: &[String]) -> Result<(), RuntimeError> {
    let (_, map) = parse_publish(publish)?;
    let mut keys: Vec<_> = map.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let container_port: u16 = port.parse().map_err(|_| RuntimeError::Option {
            option: "--publish",
            value: key.clone(),
            reason: "ports must be numbers from 1 to 65535".into(),
        })?;
        for b in map.get(&key).into_iter().flatten().flatten() {
            g.portmappings.push(PortMapping {
                host_ip: b.host_ip.clone().unwrap_or_default(),
                container_port,
                // 0: Podman picks a free port, as Docker does.
                host_port: b
                    .host_port
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                protocol: proto.to_owned(),
            });
        }
    }
    Ok(())
}

/// `--network`: Docker's modes map onto libpod's namespace modes; any other
/// value is a network's name.
fn network(g: &mut SpecGenerator, network: Option<&str>) {
    let Some(n) = network else { return };
    let ns = |mode: &str, value: &str| Namespace {
        nsmode: mode.into(),
        value: value.into(),
    };
    g.netns = Some(match n {
        "host" | "none" | "bridge" => ns(n, ""),
        "default" => ns("bridge", ""),
        _ => {
            if let Some(c) = n.strip_prefix("container:") {
                ns("container", c)
            } else {
                g.networks.insert(n.to_owned(), serde_json::json!({}));
                ns("bridge", "")
            }
        }
    });
}

/// `--security-opt` in Docker's spellings.
fn security_opt(g: &mut SpecGenerator, opt: &str) -> Result<(), RuntimeError> {
    let (key, value) = opt
        .split_once('=')
        .or_else(|| opt.split_once(':'))
        .unwrap_or((opt, ""));
    match key {
        "no-new-privileges" => g.no_new_privileges = value.is_empty() || value == "true",
        "seccomp" if !value.is_empty() => g.seccomp_profile_path = Some(value.to_owned()),
        "apparmor" if !value.is_empty() => g.apparmor_profile = Some(value.to_owned()),
        "label" if !value.is_empty() => g.selinux_opts.push(value.to_owned()),
        _ => {
            return Err(RuntimeError::Option {
                option: "--security-opt",
                value: opt.to_owned(),
                reason: "roprof passes no-new-privileges, seccomp=…, apparmor=… and label=… to Podman; this one it does not know".into(),
            });
        }
    }
    Ok(())
}

/// `-v SRC:DST[:OPTS]`, `-v NAME:DST[:OPTS]` or `-v DST` (anonymous).
fn volume(g: &mut SpecGenerator, bind: &str) -> Result<(), RuntimeError> {
    let parts: Vec<&str> = bind.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [dst] => ("", *dst, ""),
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => {
            return Err(RuntimeError::Option {
                option: "--volume",
                value: bind.to_owned(),
                reason: "expected [SRC:]DST[:OPTS]".into(),
            });
        }
    };
    if !dst.starts_with('/') {
        return Err(RuntimeError::Option {
            option: "--volume",
            value: bind.to_owned(),
            reason: "the target must be an absolute path".into(),
        });
    }
    if src.starts_with('/') {
        let mut options = options(opts);
        options.push("rbind".into());
        g.mounts.push(Mount {
            destination: dst.to_owned(),
            kind: "bind".into(),
            source: src.to_owned(),
            options,
        });
    } else {
        g.volumes.push(NamedVolume {
            name: src.to_owned(),
            dest: dst.to_owned(),
            options: options(opts),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "specgen_tests.rs"]
mod tests;
