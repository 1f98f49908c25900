//! How a running container was started, as its runtime reports it, turned
//! back into the run options a user would type (`roprof watch` keeps them,
//! so that its report's docker line runs what ran, not the bare image).
//!
//! The runtime gives the effective configuration, the image's defaults
//! merged in; [`Started::options`] leaves out what equals the image's, so
//! that the rendered line stays what the user wrote.

use std::{collections::BTreeSet, fmt};

use bollard::models::ContainerInspectResponse;

use crate::model::{EnvVar, ImageConfig, RunOptions};

/// The effective start configuration of a container.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Started {
    /// Entrypoint words (Docker), or the whole argv when `argv_whole`.
    pub entrypoint: Vec<String>,
    /// Cmd words (Docker; empty when `argv_whole`).
    pub cmd: Vec<String>,
    /// containerd: the OCI spec's `process.args`, which do not keep the
    /// entrypoint and the command apart.
    pub argv_whole: bool,
    /// `NAME=VALUE` as the runtime has them: only compared with the image's
    /// (values never reach a report, nor `Debug`).
    env: Vec<String>,
    /// `User` (Docker) or `uid:gid` (OCI spec).
    pub user: String,
    /// Working directory.
    pub workdir: String,
    /// `-p` values (`[ip:]host:container[/udp]`).
    pub publish: Vec<String>,
    /// `--tmpfs` values (`dst[:opts]`).
    pub tmpfs: Vec<String>,
    /// `-v` values (binds and named volumes, `src:dst[:opts]`).
    pub volumes: Vec<String>,
    /// `--network`, unless the default.
    pub network: Option<String>,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--security-opt`.
    pub security_opt: Vec<String>,
    /// `--memory` in bytes, when limited.
    pub memory: Option<i64>,
    /// `--group-add`.
    pub group_add: Vec<String>,
}

impl fmt::Debug for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|e| env_name(e)).collect();
        f.debug_struct("Started")
            .field("entrypoint", &self.entrypoint)
            .field("cmd", &self.cmd)
            .field("argv_whole", &self.argv_whole)
            .field("env_names", &names)
            .field("user", &self.user)
            .field("workdir", &self.workdir)
            .field("publish", &self.publish)
            .finish_non_exhaustive()
    }
}

fn env_name(e: &str) -> &str {
    e.split_once('=').map_or(e, |(n, _)| n)
}

impl Started {
    /// From `docker inspect` (Docker and Podman's compatible API).
    #[must_use]
    pub fn from_docker(c: &ContainerInspectResponse) -> Self {
        let cfg = c.config.clone().unwrap_or_default();
        let host = c.host_config.clone().unwrap_or_default();
        let mut publish = Vec::new();
        for (port, binds) in host.port_bindings.unwrap_or_default() {
            let container = port.strip_suffix("/tcp").unwrap_or(&port).to_owned();
            for b in binds.unwrap_or_default() {
                let hp = b.host_port.unwrap_or_default();
                publish.push(match b.host_ip.as_deref() {
                    Some(ip) if !ip.is_empty() => format!("{ip}:{hp}:{container}"),
                    _ if hp.is_empty() => container.clone(),
                    _ => format!("{hp}:{container}"),
                });
            }
        }
        publish.sort();
        let mut tmpfs: Vec<String> = host
            .tmpfs
            .unwrap_or_default()
            .into_iter()
            .map(|(dst, opts)| {
                if opts.is_empty() {
                    dst
                } else {
                    format!("{dst}:{opts}")
                }
            })
            .collect();
        tmpfs.sort();
        let network = host
            .network_mode
            .filter(|n| !n.is_empty() && n != "default" && n != "bridge");
        Started {
            entrypoint: cfg.entrypoint.unwrap_or_default(),
            cmd: cfg.cmd.unwrap_or_default(),
            argv_whole: false,
            env: cfg.env.unwrap_or_default(),
            user: cfg.user.unwrap_or_default(),
            workdir: cfg.working_dir.unwrap_or_default(),
            publish,
            tmpfs,
            volumes: host.binds.unwrap_or_default(),
            network,
            cap_add: host.cap_add.unwrap_or_default(),
            security_opt: host.security_opt.unwrap_or_default(),
            memory: host.memory.filter(|m| *m > 0),
            group_add: host.group_add.unwrap_or_default(),
        }
    }

    /// From a containerd container's OCI runtime spec (JSON): argv, env,
    /// cwd, uid:gid, and its tmpfs mounts and binds (the runtime's own
    /// left out). `None` when it is not such a spec.
    #[must_use]
    pub fn from_oci_spec(json: &[u8]) -> Option<Self> {
        let spec = super::oci::Spec::parse(json)?;
        let p = spec.process.as_ref()?;
        Some(Started {
            entrypoint: p.args.clone(),
            argv_whole: true,
            env: p.env.clone(),
            user: p
                .user
                .map_or_else(String::new, |u| format!("{}:{}", u.uid, u.gid)),
            workdir: p.cwd.clone(),
            tmpfs: spec.tmpfs_flags(),
            volumes: spec.volume_flags(),
            ..Started::default()
        })
    }

    /// The run options that start `image` this way: what equals the
    /// image's own configuration is left out, `-e` variables are names
    /// only (the values are withheld, as in every report).
    #[must_use]
    pub fn options(&self, image: &ImageConfig) -> RunOptions {
        let (entrypoint, command) = self.command(image);
        let shipped: BTreeSet<&str> = image.env.iter().map(String::as_str).collect();
        // An OCI spec's env has the image's merged in; without the image's
        // config to tell them apart, `-e PATH` would pass the host's PATH
        // into the pasted run: none are kept.
        let unknown = self.argv_whole && image.env.is_empty();
        let env = self
            .env
            .iter()
            .filter(|e| !unknown && !shipped.contains(e.as_str()))
            .map(|e| EnvVar {
                name: env_name(e).to_owned(),
                value: None,
            })
            .collect();
        let differs = |v: &str, img: &str| (!v.is_empty() && v != img).then(|| v.to_owned());
        let image_user = if self.argv_whole {
            // The OCI spec has numbers; an image user by name cannot be
            // compared, and root is what an image without one runs as.
            "0:0"
        } else {
            &image.user
        };
        RunOptions {
            env,
            user: differs(&self.user, image_user),
            workdir: differs(&self.workdir, &image.workdir)
                .filter(|w| !(image.workdir.is_empty() && w == "/")),
            entrypoint,
            command,
            publish: self.publish.clone(),
            tmpfs: self.tmpfs.clone(),
            volumes: self.volumes.clone(),
            network: self.network.clone(),
            cap_add: self.cap_add.clone(),
            security_opt: self.security_opt.clone(),
            memory: self.memory.map(|m| m.to_string()),
            group_add: self.group_add.clone(),
            ..RunOptions::default()
        }
    }

    /// `--entrypoint` and the words after the image.
    fn command(&self, image: &ImageConfig) -> (Option<String>, Vec<String>) {
        if self.argv_whole {
            let shipped: Vec<&String> = image.entrypoint.iter().chain(&image.cmd).collect();
            let argv: Vec<&String> = self.entrypoint.iter().collect();
            return match self.entrypoint.split_first() {
                Some(_) if argv == shipped => (None, Vec::new()),
                Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
                None => (None, Vec::new()),
            };
        }
        if self.entrypoint == image.entrypoint {
            let cmd = if self.cmd == image.cmd {
                Vec::new()
            } else {
                self.cmd.clone()
            };
            return (None, cmd);
        }
        match self.entrypoint.split_first() {
            // `--entrypoint X image a b`: Entrypoint [X], Cmd [a b]; a
            // longer entrypoint (compose's list) puts its rest first.
            Some((first, rest)) => (
                Some(first.clone()),
                rest.iter().chain(&self.cmd).cloned().collect(),
            ),
            // `--entrypoint ''`: the command is the whole argv.
            None => (Some(String::new()), self.cmd.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerConfig, ContainerInspectResponse, HostConfig, PortBinding};

    use super::Started;
    use crate::model::ImageConfig;

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec!["/docker-entrypoint.sh".into()],
            cmd: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            workdir: String::new(),
            ..ImageConfig::default()
        }
    }

    fn inspect(entrypoint: &[&str], cmd: &[&str]) -> ContainerInspectResponse {
        let words = |w: &[&str]| Some(w.iter().map(|s| (*s).to_owned()).collect());
        ContainerInspectResponse {
            config: Some(ContainerConfig {
                entrypoint: words(entrypoint),
                cmd: words(cmd),
                env: words(&["PATH=/usr/bin:/bin", "DB_PASSWORD=hunter2"]),
                user: Some("101".into()),
                working_dir: Some("/srv".into()),
                ..ContainerConfig::default()
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(
                    [
                        (
                            "80/tcp".to_owned(),
                            Some(vec![PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some("18080".into()),
                            }]),
                        ),
                        (
                            "53/udp".to_owned(),
                            Some(vec![PortBinding {
                                host_ip: Some(String::new()),
                                host_port: Some("5353".into()),
                            }]),
                        ),
                    ]
                    .into_iter()
                    .collect(),
                ),
                network_mode: Some("bridge".into()),
                ..HostConfig::default()
            }),
            ..ContainerInspectResponse::default()
        }
    }

    #[test]
    fn the_image_defaults_are_left_out_and_the_rest_kept() {
        let img = image();
        let s = Started::from_docker(&inspect(
            &["/docker-entrypoint.sh"],
            &["nginx", "-g", "daemon off;"],
        ));
        let o = s.options(&img);
        assert_eq!(o.entrypoint, None);
        assert!(o.command.is_empty(), "the image's own command: {o:?}");
        assert_eq!(o.publish, ["127.0.0.1:18080:80", "5353:53/udp"]);
        assert_eq!(o.user.as_deref(), Some("101"));
        assert_eq!(o.workdir.as_deref(), Some("/srv"));
        assert_eq!(o.network, None, "the default network is not a flag");
        let names: Vec<&str> = o.env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["DB_PASSWORD"], "the image's PATH is not a flag");
        assert!(o.env.iter().all(|e| e.value.is_none()), "values withheld");
        assert!(!format!("{s:?}").contains("hunter2"), "Debug has no values");
    }

    #[test]
    fn a_command_and_an_entrypoint_are_what_docker_run_was_given() {
        let img = image();
        let cmd = Started::from_docker(&inspect(&["/docker-entrypoint.sh"], &["sh", "-c", "x"]));
        let o = cmd.options(&img);
        assert_eq!(
            (o.entrypoint, o.command),
            (None, vec!["sh".into(), "-c".into(), "x".into()])
        );

        let ep = Started::from_docker(&inspect(&["sh", "-c"], &["mkdir /x"]));
        let o = ep.options(&img);
        assert_eq!(o.entrypoint.as_deref(), Some("sh"));
        assert_eq!(o.command, ["-c", "mkdir /x"]);

        let none = Started::from_docker(&inspect(&[], &["busybox", "true"]));
        let o = none.options(&img);
        assert_eq!(o.entrypoint.as_deref(), Some(""), "--entrypoint ''");
        assert_eq!(o.command, ["busybox", "true"]);
    }

    #[test]
    fn an_oci_spec_gives_the_whole_argv() {
        let spec = br#"{"process":{"args":["sh","-c","echo hi"],"env":["PATH=/bin","TOKEN=s3cret"],
            "cwd":"/","user":{"uid":1000,"gid":1000}}}"#;
        let s = Started::from_oci_spec(spec).expect("a spec");
        let o = s.options(&ImageConfig::default());
        assert_eq!(o.entrypoint.as_deref(), Some("sh"));
        assert_eq!(o.command, ["-c", "echo hi"]);
        assert_eq!(o.user.as_deref(), Some("1000:1000"));
        assert_eq!(o.workdir, None, "/ is the default");
        assert!(o.env.is_empty(), "the image's env is unknown: {:?}", o.env);
        let known = ImageConfig {
            env: vec!["PATH=/bin".into()],
            ..ImageConfig::default()
        };
        let names: Vec<String> = s.options(&known).env.into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["TOKEN"]);
        assert!(Started::from_oci_spec(b"{}").is_none());
    }
}
