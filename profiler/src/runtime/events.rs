//! The engine's container events (`GET /events`, `type=container`) and
//! the identity of a container (name, labels, image), for `roprof watch`.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{EventsOptions, InspectContainerOptions};
use futures::{Stream, StreamExt as _};

use super::{Engine, RuntimeError, call};

/// What `watch` needs to know about a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Full id.
    pub id: String,
    /// Name (without Docker's leading `/`).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Image reference as the runtime gives it.
    pub image: String,
    /// How it was started, when the runtime was asked (an event alone
    /// does not say).
    pub started: Option<Box<super::Started>>,
}

/// One container lifecycle event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// Created: its name and labels (kept, so that a container removed
    /// right after it ran is still named).
    Created(ContainerInfo),
    /// Its first process started.
    Started {
        /// Container id.
        id: String,
    },
    /// Its main process exited.
    Exited {
        /// Container id.
        id: String,
        /// Exit code, when the runtime says.
        code: Option<i64>,
    },
    /// Removed.
    Removed {
        /// Container id.
        id: String,
    },
}

/// Engine attributes of a container event that are not labels.
const NOT_LABELS: &[&str] = &["name", "image", "exitCode", "signal", "execDuration"];

/// The lifecycle event an engine event message stands for, if any.
#[must_use]
pub fn lifecycle(msg: &bollard::models::EventMessage) -> Option<LifecycleEvent> {
    let actor = msg.actor.as_ref()?;
    let id = actor.id.clone()?;
    let attrs = actor.attributes.clone().unwrap_or_default();
    match msg.action.as_deref()? {
        "create" => {
            let labels = attrs
                .iter()
                .filter(|(k, _)| !NOT_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Some(LifecycleEvent::Created(ContainerInfo {
                name: attrs
                    .get("name")
                    .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned()),
                image: attrs.get("image").cloned().unwrap_or_default(),
                id,
                labels,
                started: None,
            }))
        }
        "start" => Some(LifecycleEvent::Started { id }),
        "die" => Some(LifecycleEvent::Exited {
            code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
            id,
        }),
        "destroy" => Some(LifecycleEvent::Removed { id }),
        _ => None,
    }
}

impl Engine {
    /// Container create/start/die/destroy events from now on.
    pub fn container_events(
        &self,
    ) -> impl Stream<Item = Result<LifecycleEvent, RuntimeError>> + use<> {
        let mut filters = HashMap::new();
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        filters.insert(
            "event".to_owned(),
            ["create", "start", "die", "destroy"]
                .map(str::to_owned)
                .to_vec(),
        );
        self.docker
            .events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .filter_map(|r| async move {
                match r {
                    Ok(msg) => lifecycle(&msg).map(Ok),
                    Err(e) => Some(Err(call("following the engine's events")(e))),
                }
            })
    }

    /// Name, labels and image of container `id`; `None` when the engine
    /// does not know it.
    pub async fn container_info(&self, id: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        Ok(self.inspect(id).await?.map(|c| info_of(&c, id)))
    }

    /// `docker inspect`; `None` when the engine does not know `id`.
    async fn inspect(
        &self,
        id: &str,
    ) -> Result<Option<bollard::models::ContainerInspectResponse>, RuntimeError> {
        match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(call(format!("inspecting container {id}"))(e)),
        }
    }
}

/// The identity of an inspected container.
fn info_of(c: &bollard::models::ContainerInspectResponse, id: &str) -> ContainerInfo {
    let cfg = c.config.clone().unwrap_or_default();
    ContainerInfo {
        id: c.id.clone().unwrap_or_else(|| id.to_owned()),
        name: c
            .name
            .clone()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        labels: cfg.labels.unwrap_or_default().into_iter().collect(),
        image: c.image.clone().or(cfg.image).unwrap_or_default(),
        started: Some(Box::new(super::Started::from_docker(c))),
    }
}

/// What `roprof guard` needs to know about a running container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardFacts {
    /// Identity.
    pub info: ContainerInfo,
    /// Its root filesystem is read-only (Docker's
    /// `HostConfig.ReadonlyRootfs`, the OCI spec's `root.readonly`).
    pub read_only: bool,
    /// Host pid of its init (0 when not running).
    pub pid: i64,
    /// Mount points of its tmpfs and volume mounts (not binds; on
    /// containerd, the spec's tmpfs mounts and the kubelet's pod volumes):
    /// where an `EACCES` says a mount a plan made has the wrong owner or
    /// mode.
    pub writable_mounts: Vec<String>,
}

impl Engine {
    /// Ids of the running containers.
    pub async fn running_ids(&self) -> Result<Vec<String>, RuntimeError> {
        let list = self
            .docker
            .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
            .await
            .map_err(call("listing the running containers"))?;
        Ok(list.into_iter().filter_map(|c| c.id).collect())
    }

    /// Identity, root mode, pid and mounts of container `id` (one
    /// inspect); `None` when the engine does not know it (it was removed
    /// meanwhile).
    pub async fn guard_facts(&self, id: &str) -> Result<Option<GuardFacts>, RuntimeError> {
        let Some(c) = self.inspect(id).await? else {
            return Ok(None);
        };
        let mut info = info_of(&c, id);
        // The reference it was run with, not the image id: what a user
        // reads in a finding, and what a fix's names derive from.
        if let Some(r) = c.config.as_ref().and_then(|k| k.image.clone())
            && !r.is_empty()
        {
            info.image = r;
        }
        let host = c.host_config.unwrap_or_default();
        let mut writable_mounts: Vec<String> = host.tmpfs.unwrap_or_default().into_keys().collect();
        for m in c.mounts.unwrap_or_default() {
            let Some(dst) = m.destination else { continue };
            let planned = matches!(m.typ.as_deref(), Some("tmpfs" | "volume"));
            if planned && !writable_mounts.contains(&dst) {
                writable_mounts.push(dst);
            }
        }
        let pid = match &self.libpod {
            Some(libpod) => libpod.pid(id).await.unwrap_or(0),
            None => c.state.and_then(|s| s.pid).unwrap_or(0),
        };
        Ok(Some(GuardFacts {
            info,
            read_only: host.readonly_rootfs.unwrap_or(false),
            pid,
            writable_mounts,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{EventActor, EventMessage};

    use super::{LifecycleEvent, lifecycle};

    fn msg(action: &str, attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            action: Some(action.to_owned()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect::<HashMap<_, _>>(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn create_carries_name_and_labels_die_the_exit_code() {
        let Some(LifecycleEvent::Created(info)) = lifecycle(&msg(
            "create",
            &[("name", "web-1"), ("image", "busybox"), ("tier", "web")],
        )) else {
            panic!("a create event should give Created");
        };
        assert_eq!(info.name, "web-1");
        assert_eq!(info.image, "busybox");
        assert_eq!(info.labels.len(), 1, "name and image are not labels");
        assert_eq!(
            lifecycle(&msg("die", &[("exitCode", "3")])),
            Some(LifecycleEvent::Exited {
                id: "abc".into(),
                code: Some(3)
            })
        );
        assert_eq!(lifecycle(&msg("exec_start: sh", &[])), None);
    }
}
