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

/// Docker's options for a `--tmpfs` given without any.
const DOCKER_TMPFS_DEFAULTS: [&str; 4] = ["rw", "noexec", "nosuid", "nodev"];

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

/// The libpod create body for `spec`, labelled with `labels`.
pub fn spec_generator(
    spec: &ContainerSpec,
    labels: BTreeMap<String, String>,
) -> Result<SpecGenerator, RuntimeError> {
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
    for (target, opts) in tmpfs {
        let mut options = options(&opts);
        if options.is_empty() {
            options = DOCKER_TMPFS_DEFAULTS.map(str::to_owned).to_vec();
        }
        options.push("notmpcopyup".into());
        g.mounts.push(Mount {
            destination: target,
            kind: "tmpfs".into(),
            source: "tmpfs".into(),
            options,
        });
    }
    for bind in run.volumes.iter().chain(&spec.extra_binds) {
        volume(&mut g, bind)?;
    }
    Ok(g)
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
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::model::RunOptions;

    fn body(spec: &ContainerSpec) -> Value {
        let labels = BTreeMap::from([("io.roprof.managed".to_owned(), "1".to_owned())]);
        serde_json::to_value(spec_generator(spec, labels).expect("spec translates"))
            .expect("serialises")
    }

    #[test]
    fn a_read_only_round_is_read_only_with_the_plans_mounts() {
        let spec = ContainerSpec {
            image: "roprof-fixture/nginx".into(),
            read_only: true,
            extra_tmpfs: vec![("/run".into(), "rw,noexec,size=16m,mode=755".into())],
            extra_binds: vec!["/var/cache/nginx".into(), "roprof-x:/var/lib/db".into()],
            ..ContainerSpec::default()
        };
        let b = body(&spec);
        assert_eq!(b["read_only_filesystem"], json!(true));
        assert_eq!(
            b["read_write_tmpfs"],
            json!(false),
            "Podman's tmpfs on /run, /tmp, /var/tmp must stay off"
        );
        assert_eq!(
            b["mounts"],
            json!([{"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                    "options": ["rw", "noexec", "size=16m", "mode=755", "notmpcopyup"]}])
        );
        assert_eq!(
            b["volumes"],
            json!([{"Name": "", "Dest": "/var/cache/nginx"},
                   {"Name": "roprof-x", "Dest": "/var/lib/db"}]),
            "an anonymous volume has an empty name, a named one its name"
        );
        assert_eq!(b["labels"], json!({"io.roprof.managed": "1"}));
        assert!(b.get("command").is_none() && b.get("entrypoint").is_none());
    }

    #[test]
    fn the_users_run_flags_keep_their_docker_meaning() {
        let run = RunOptions {
            command: vec!["sh".into(), "-c".into(), "true".into()],
            entrypoint: Some("/bin/env".into()),
            user: Some("101:101".into()),
            workdir: Some("/srv".into()),
            tmpfs: vec!["/tmp".into()],
            volumes: vec!["/host/data:/data:ro".into()],
            publish: vec!["127.0.0.1:18080:80".into(), "53/udp".into()],
            network: Some("host".into()),
            cap_add: vec!["NET_ADMIN".into()],
            security_opt: vec!["no-new-privileges".into(), "seccomp=unconfined".into()],
            memory: Some("64m".into()),
            ..RunOptions::default()
        };
        let b = body(&ContainerSpec {
            image: "img".into(),
            run,
            name: Some("roprof-1".into()),
            ..ContainerSpec::default()
        });
        assert_eq!(b["name"], json!("roprof-1"));
        assert_eq!(b["command"], json!(["sh", "-c", "true"]));
        assert_eq!(b["entrypoint"], json!(["/bin/env"]));
        assert_eq!((&b["user"], &b["work_dir"]), (&json!("101:101"), &json!("/srv")));
        assert_eq!(b["read_only_filesystem"], json!(false));
        assert_eq!(
            b["mounts"],
            json!([
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                 "options": ["rw", "noexec", "nosuid", "nodev", "notmpcopyup"]},
                {"destination": "/data", "type": "bind", "source": "/host/data",
                 "options": ["ro", "rbind"]},
            ]),
            "a bare --tmpfs gets Docker's defaults and starts empty"
        );
        assert_eq!(
            b["portmappings"],
            json!([
                {"container_port": 53, "host_port": 0, "protocol": "udp"},
                {"host_ip": "127.0.0.1", "container_port": 80, "host_port": 18080, "protocol": "tcp"},
            ])
        );
        assert_eq!(b["netns"], json!({"nsmode": "host"}));
        assert_eq!(b["cap_add"], json!(["NET_ADMIN"]));
        assert_eq!(b["no_new_privileges"], json!(true));
        assert_eq!(b["seccomp_profile_path"], json!("unconfined"));
        assert_eq!(
            b["resource_limits"],
            json!({"memory": {"limit": 64 << 20, "swap": 64 << 20}})
        );
    }

    #[test]
    fn networks_by_mode_and_by_name() {
        for (flag, netns, networks) in [
            ("none", json!({"nsmode": "none"}), Value::Null),
            ("bridge", json!({"nsmode": "bridge"}), Value::Null),
            (
                "container:db",
                json!({"nsmode": "container", "value": "db"}),
                Value::Null,
            ),
            ("appnet", json!({"nsmode": "bridge"}), json!({"appnet": {}})),
        ] {
            let b = body(&ContainerSpec {
                run: RunOptions {
                    network: Some(flag.into()),
                    ..RunOptions::default()
                },
                ..ContainerSpec::default()
            });
            assert_eq!(b["netns"], netns, "--network {flag}");
            assert_eq!(b["Networks"], networks, "--network {flag}");
        }
    }

    #[test]
    fn values_podman_cannot_take_name_the_flag_and_the_value() {
        for (run, flag, value) in [
            (
                RunOptions {
                    security_opt: vec!["systempaths=unconfined".into()],
                    ..RunOptions::default()
                },
                "--security-opt",
                "systempaths=unconfined",
            ),
            (
                RunOptions {
                    volumes: vec!["a:b:c:d".into()],
                    ..RunOptions::default()
                },
                "--volume",
                "a:b:c:d",
            ),
            (
                RunOptions {
                    volumes: vec!["data:relative".into()],
                    ..RunOptions::default()
                },
                "--volume",
                "data:relative",
            ),
        ] {
            let spec = ContainerSpec {
                run,
                ..ContainerSpec::default()
            };
            let e = spec_generator(&spec, BTreeMap::new())
                .expect_err("must be refused")
                .to_string();
            assert!(
                e.contains(flag) && e.contains(&format!("`{value}`")),
                "expected an error naming {flag} and `{value}`, got: {e}"
            );
        }
    }
}
