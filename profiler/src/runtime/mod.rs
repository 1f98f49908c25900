//! The Docker Engine API (bollard): image config, the container's initial
//! filesystem listing, and the container lifecycle. No `docker` CLI.
//!
//! The user's run flags are parsed in [`flags`], the exported filesystem in
//! [`listing`]; this file only talks to the engine. Podman answers the same
//! API on its own socket; where it behaves differently (read-only roots,
//! container states), [`podman`] and [`specgen`] take over.

pub mod containerd;
mod endpoint;
mod events;
mod flags;
pub mod layers;
mod listing;
mod network;
pub mod oci;
mod podman;
mod specgen;
mod started;

use std::collections::{BTreeMap, HashMap};

use bollard::{
    Docker,
    models::{ContainerCreateBody, HostConfig},
    query_parameters::{
        CreateContainerOptions, CreateImageOptions, InspectContainerOptions, LogsOptions,
        RemoveContainerOptions, StartContainerOptions, StopContainerOptions,
    },
};
use futures::StreamExt as _;

use self::endpoint::unix_socket;
pub use self::{
    endpoint::{PODMAN_SOCKET, endpoint},
    events::{ContainerInfo, GuardFacts, LifecycleEvent},
    flags::{Ports, parse_memory, parse_publish},
    listing::parse_tar,
    network::Health,
    podman::Flavor,
    started::Started,
};
use self::{flags::split_tmpfs, listing::ChannelReader};
use crate::{
    environment::ContainerEnv,
    model::{CPath, ImageConfig, ImageListing, RunOptions},
};

/// Label put on every container roprof creates.
pub const LABEL: &str = "io.roprof.managed";

/// Errors talking to the engine, each naming what it is about.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine does not answer.
    #[error(
        "cannot reach the Docker engine at {endpoint}: {source} (is dockerd running? set DOCKER_HOST to use another socket)"
    )]
    Unreachable {
        /// Socket or URL.
        endpoint: String,
        /// Cause.
        source: Box<bollard::errors::Error>,
    },
    /// Image missing and not pullable.
    #[error("image `{image}` is not available locally and could not be pulled: {reason}")]
    Image {
        /// Image reference.
        image: String,
        /// Why.
        reason: String,
    },
    /// An engine call failed.
    #[error("Docker engine: {what} failed: {source}")]
    Call {
        /// What was attempted, naming the container or image.
        what: String,
        /// Cause.
        source: Box<bollard::errors::Error>,
    },
    /// A user option is malformed.
    #[error("invalid {option} `{value}`: {reason}")]
    Option {
        /// Flag.
        option: &'static str,
        /// Value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A call to Podman that bollard does not make failed.
    #[error("Podman: {what} failed: {reason}")]
    Podman {
        /// What was attempted, naming the container or image.
        what: String,
        /// Why.
        reason: String,
    },
    /// Podman answers on an endpoint roprof cannot use for its own calls.
    #[error(
        "Podman answers at {endpoint}, but roprof talks to Podman through its unix socket only (e.g. DOCKER_HOST=unix:///run/podman/podman.sock)"
    )]
    PodmanEndpoint {
        /// The endpoint.
        endpoint: String,
    },
    /// Reading the exported filesystem failed.
    #[error("reading the filesystem of container {id}: {reason}")]
    Listing {
        /// Container.
        id: String,
        /// Why.
        reason: String,
    },
}

fn call(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> RuntimeError {
    let what = what.into();
    move |source| RuntimeError::Call {
        what,
        source: Box::new(source),
    }
}

/// Everything needed to create one container.
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    /// Image reference.
    pub image: String,
    /// The user's run options (their `env` is not read: see `env`).
    pub run: RunOptions,
    /// The container's environment, values included (in memory only).
    pub env: ContainerEnv,
    /// Run with a read-only root.
    pub read_only: bool,
    /// Extra tmpfs mounts (target → options), from a plan.
    pub extra_tmpfs: Vec<(String, String)>,
    /// Extra volume binds (`name:/target`), from a plan.
    pub extra_binds: Vec<String>,
    /// Container name.
    pub name: Option<String>,
    /// Settings of a compose service that have no `docker run` flag here.
    pub extras: ServiceExtras,
}

/// What a compose service sets beyond [`RunOptions`]: its aliases on the
/// project network, its healthcheck, and an entrypoint of several words.
#[derive(Clone, Debug, Default)]
pub struct ServiceExtras {
    /// DNS aliases on `RunOptions::network` (the service name).
    pub network_aliases: Vec<String>,
    /// The service's healthcheck (replaces the image's).
    pub healthcheck: Option<bollard::models::HealthConfig>,
    /// The whole entrypoint (`--entrypoint` takes one word only).
    pub entrypoint: Option<Vec<String>>,
    /// The service's `stop_signal` (replaces the image's).
    pub stop_signal: Option<String>,
}

/// Final state of a container.
#[derive(Clone, Debug, Default)]
pub struct ExitState {
    /// Still running.
    pub running: bool,
    /// Exit code.
    pub exit_code: Option<i64>,
    /// OOM-killed.
    pub oom_killed: bool,
    /// Engine-reported error (e.g. exec failure).
    pub error: Option<String>,
}

/// A connected engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    flavor: Flavor,
    /// Set for Podman: the calls its compatible API gets wrong.
    libpod: Option<podman::Libpod>,
}

/// The labels every container roprof creates carries.
fn labels() -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(LABEL.to_owned(), "1".to_owned());
    if let Some(owner) = std::env::var_os("ROPROF_TEST_LABEL") {
        // Test harness only: which test process started this roprof,
        // so suites running side by side leave each other's containers.
        labels.insert("roprof.test".to_owned(), "1".to_owned());
        labels.insert(
            "roprof.test.owner".to_owned(),
            owner.to_string_lossy().into_owned(),
        );
    }
    labels
}

impl Engine {
    /// Connects (to [`endpoint`]), negotiates the API version and finds
    /// out whether Docker or Podman answers.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let endpoint = endpoint();
        let unreachable = |source| RuntimeError::Unreachable {
            endpoint: endpoint.clone(),
            source: Box::new(source),
        };
        let docker = if std::env::var_os("DOCKER_HOST").is_some() {
            Docker::connect_with_defaults()
        } else {
            Docker::connect_with_host(&endpoint)
        }
        .map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let version = docker.version().await.map_err(unreachable)?;
        let flavor = Flavor::of(&version);
        let libpod = match flavor {
            Flavor::Docker => None,
            Flavor::Podman => Some(podman::Libpod::new(
                unix_socket(&endpoint).ok_or_else(|| RuntimeError::PodmanEndpoint { endpoint })?,
            )),
        };
        Ok(Engine {
            docker,
            flavor,
            libpod,
        })
    }

    /// Docker or Podman.
    #[must_use]
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The API version in use.
    #[must_use]
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// `GET /version`: the engine's product, version and API version.
    pub async fn server_version(&self) -> Result<bollard::models::SystemVersion, RuntimeError> {
        self.docker
            .version()
            .await
            .map_err(call("asking the engine for its version"))
    }

    /// Image config, pulling the image when it is not present.
    pub async fn image_config(&self, image: &str) -> Result<ImageConfig, RuntimeError> {
        let inspect = if let Ok(i) = self.docker.inspect_image(image).await {
            i
        } else {
            self.pull(image).await?;
            self.docker
                .inspect_image(image)
                .await
                .map_err(|e| RuntimeError::Image {
                    image: image.into(),
                    reason: e.to_string(),
                })?
        };
        let c = inspect.config.unwrap_or_default();
        let mut volumes: Vec<CPath> = c
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| CPath::from(v.as_str()))
            .collect();
        volumes.sort();
        let mut exposed: Vec<String> = c.exposed_ports.unwrap_or_default().into_iter().collect();
        exposed.sort();
        Ok(ImageConfig {
            image: image.into(),
            id: inspect.id.unwrap_or_default(),
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            workdir: c.working_dir.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            volumes,
            exposed_ports: exposed,
            stop_signal: c.stop_signal,
            healthcheck: c.healthcheck.and_then(|h| h.test),
        })
    }

    /// Whether `image` is present locally (never pulls).
    pub async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(call(format!("inspecting image `{image}`"))(e)),
        }
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        let opts = CreateImageOptions {
            from_image: Some(image.into()),
            ..Default::default()
        };
        let mut s = self.docker.create_image(Some(opts), None, None);
        while let Some(r) = s.next().await {
            r.map_err(|e| RuntimeError::Image {
                image: image.into(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Creates (does not start) a container.
    pub async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        if let Some(libpod) = &self.libpod {
            return libpod
                .create(&specgen::spec_generator(spec, labels())?)
                .await;
        }
        let run = &spec.run;
        let mut tmpfs: HashMap<String, String> = HashMap::new();
        for t in run
            .tmpfs
            .iter()
            .map(|t| split_tmpfs(t))
            .chain(spec.extra_tmpfs.iter().cloned())
        {
            tmpfs.insert(t.0, t.1);
        }
        let mut binds = run.volumes.clone();
        binds.extend(spec.extra_binds.iter().cloned());
        let (exposed, ports) = parse_publish(&run.publish)?;
        let memory = run.memory.as_deref().map(parse_memory).transpose()?;
        let labels: HashMap<String, String> = labels().into_iter().collect();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: (!run.command.is_empty()).then(|| run.command.clone()),
            entrypoint: spec
                .extras
                .entrypoint
                .clone()
                .or_else(|| run.entrypoint.as_ref().map(|e| vec![e.clone()])),
            healthcheck: spec.extras.healthcheck.clone(),
            stop_signal: spec.extras.stop_signal.clone(),
            networking_config: network::aliases(run.network.as_deref(), &spec.extras),
            env: (!spec.env.entries().is_empty()).then(|| spec.env.entries().to_vec()),
            user: run.user.clone(),
            working_dir: run.workdir.clone(),
            labels: Some(labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            host_config: Some(HostConfig {
                binds: (!binds.is_empty()).then_some(binds),
                tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
                port_bindings: (!ports.is_empty()).then_some(ports),
                network_mode: run.network.clone(),
                cap_add: (!run.cap_add.is_empty()).then(|| run.cap_add.clone()),
                group_add: (!run.group_add.is_empty()).then(|| run.group_add.clone()),
                security_opt: (!run.security_opt.is_empty()).then(|| run.security_opt.clone()),
                readonly_rootfs: Some(spec.read_only),
                memory,
                // No swap on top of the limit, so the limit is what the
                // container really gets.
                memory_swap: memory,
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: spec.name.clone(),
            ..Default::default()
        };
        let r = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(call(format!("creating a container from `{}`", spec.image)))?;
        Ok(r.id)
    }

    /// The container's initial filesystem (image + init layer), from an export.
    pub async fn listing(&self, id: &str) -> Result<ImageListing, RuntimeError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let reader = std::thread::spawn({
            let id = id.to_owned();
            move || parse_tar(ChannelReader::new(rx), &id)
        });
        let mut s = self.docker.export_container(id);
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(call(format!("exporting container {id}")))?;
            if tx.send(chunk.to_vec()).is_err() {
                break;
            }
        }
        drop(tx);
        reader.join().map_err(|_| RuntimeError::Listing {
            id: id.into(),
            reason: "tar reader panicked".into(),
        })?
    }

    /// Starts a created container.
    pub async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None::<StartContainerOptions>)
            .await
            .map_err(call(format!("starting container {id}")))
    }

    /// Stops gracefully (the image's `StopSignal`, then SIGKILL after `timeout`).
    pub async fn stop(&self, id: &str, timeout_secs: i32) -> Result<(), RuntimeError> {
        let opts = StopContainerOptions {
            t: Some(timeout_secs),
            signal: None,
        };
        // The engine answers after the container stopped: allow for the
        // whole grace period (bollard's default timeout is 120 s).
        let docker = self
            .docker
            .clone()
            .with_timeout(std::time::Duration::from_secs(
                u64::try_from(timeout_secs.max(0)).unwrap_or(0) + 60,
            ));
        match docker.stop_container(id, Some(opts)).await {
            // 304: already stopped.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(call(format!("stopping container {id}"))(e)),
        }
    }

    /// Current state.
    pub async fn state(&self, id: &str) -> Result<ExitState, RuntimeError> {
        if let Some(libpod) = &self.libpod {
            return libpod.state(id).await;
        }
        let i = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(call(format!("inspecting container {id}")))?;
        let s = i.state.unwrap_or_default();
        let running = s.running.unwrap_or(false);
        Ok(ExitState {
            running,
            exit_code: if running { None } else { s.exit_code },
            oom_killed: s.oom_killed.unwrap_or(false),
            error: s.error.filter(|e| !e.is_empty()),
        })
    }

    /// Host pid of the container's init (0 when not running).
    pub async fn pid(&self, id: &str) -> Result<i64, RuntimeError> {
        if let Some(libpod) = &self.libpod {
            return libpod.pid(id).await;
        }
        let i = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(call(format!("inspecting container {id}")))?;
        Ok(i.state.and_then(|s| s.pid).unwrap_or(0))
    }

    /// The writable mounts a running container already has, as run
    /// options (`-v SRC:DST` and `--tmpfs DST[:OPTS]`), so that `attach`
    /// never proposes a mount over them.
    pub async fn mounts_of(&self, id: &str) -> Result<(Vec<String>, Vec<String>), RuntimeError> {
        let i = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(call(format!("inspecting container {id}")))?;
        let mut volumes = Vec::new();
        let mut tmpfs: Vec<String> = i
            .host_config
            .and_then(|h| h.tmpfs)
            .map(|t| {
                t.into_iter()
                    .map(|(dst, opts)| {
                        if opts.is_empty() {
                            dst
                        } else {
                            format!("{dst}:{opts}")
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        for m in i.mounts.unwrap_or_default() {
            let Some(dst) = m.destination else { continue };
            match m.typ.as_deref() {
                Some("tmpfs") if !tmpfs.iter().any(|t| t.split(':').next() == Some(&dst)) => {
                    tmpfs.push(dst);
                }
                Some("tmpfs") => {}
                _ => {
                    let src = m.name.or(m.source).unwrap_or_default();
                    volumes.push(format!("{src}:{dst}"));
                }
            }
        }
        Ok((volumes, tmpfs))
    }

    /// The image reference a container runs.
    pub async fn image_of(&self, id: &str) -> Result<String, RuntimeError> {
        let i = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(call(format!("inspecting container {id}")))?;
        Ok(i.config
            .and_then(|c| c.image)
            .or(i.image)
            .unwrap_or_default())
    }

    /// Full id of a container given by name or id.
    pub async fn resolve(&self, name: &str) -> Result<String, RuntimeError> {
        let i = self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
            .map_err(call(format!("finding container `{name}`")))?;
        Ok(i.id.unwrap_or_default())
    }

    /// Last `n` log lines (stdout and stderr).
    pub async fn logs_tail(&self, id: &str, n: usize) -> Vec<String> {
        let opts = LogsOptions {
            stdout: true,
            stderr: true,
            tail: n.to_string(),
            ..Default::default()
        };
        let mut s = self.docker.logs(id, Some(opts));
        let mut out = String::new();
        while let Some(Ok(chunk)) = s.next().await {
            out.push_str(&chunk.to_string());
        }
        out.lines().map(str::to_owned).collect()
    }

    /// Removes a container and its anonymous volumes (under Podman, and
    /// the tmpfs volumes made for it).
    pub async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(libpod) = &self.libpod else {
            return self.remove_container(id).await;
        };
        let volumes = libpod.tmpfs_volumes_of(id).await;
        self.remove_container(id).await?;
        libpod.remove_tmpfs_volumes(&volumes).await
    }

    async fn remove_container(&self, id: &str) -> Result<(), RuntimeError> {
        let opts = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(call(format!("removing container {id}"))(e)),
        }
    }

    /// Removes a named volume (created for verification).
    pub async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(call(format!("removing volume {name}"))(e)),
        }
    }
}
