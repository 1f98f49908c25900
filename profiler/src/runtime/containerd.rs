//! containerd as a runtime beside Docker and Podman: its own gRPC API (the
//! `containerd-client` crate) on `--containerd-socket`, in one namespace
//! (`k8s.io` for the kubelet's CRI plugin, the one `ctr -n` names).
//!
//! Events come from the events service (`/containers/create`,
//! `/tasks/start`, `/tasks/exit` of the init process, `/containers/delete`);
//! names and labels from the containers service, read at create time so
//! that a container deleted right after it ran is still named. For
//! `roprof guard`, the running tasks and a task's pid come from the tasks
//! service, the root mode and mounts from the container's OCI spec
//! ([`super::oci`]).

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use containerd_client::{
    events::{ContainerCreate, ContainerDelete, TaskExit, TaskStart},
    services::v1::{
        GetContainerRequest, GetRequest, ListTasksRequest, SubscribeRequest,
        containers_client::ContainersClient,
        events_client::EventsClient,
        snapshots::{MountsRequest, snapshots_client::SnapshotsClient},
        tasks_client::TasksClient,
        version_client::VersionClient,
    },
    tonic::{Code, Request, transport::Channel},
    types::v1::Status as TaskStatus,
};
use futures::Stream;

use super::{ContainerInfo, GuardFacts, LifecycleEvent, oci};

/// CRI: the pod's namespace.
pub const K8S_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// CRI: the pod's name.
pub const K8S_POD: &str = "io.kubernetes.pod.name";
/// CRI: the container's name in the pod spec.
pub const K8S_CONTAINER: &str = "io.kubernetes.container.name";

/// Errors talking to containerd, naming the socket.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    /// A bad value given by the user (the namespace).
    #[error("{0}")]
    Usage(String),
    /// containerd did not answer as expected.
    #[error(
        "containerd at {}: {what} failed: {reason} (is containerd running? give its socket with --containerd-socket)",
        socket.display()
    )]
    Rpc {
        /// The socket.
        socket: PathBuf,
        /// What was attempted.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

/// CRI label telling containers from pod sandboxes (the pause container).
const CRI_KIND: &str = "io.cri-containerd.kind";

/// A connected containerd, scoped to one namespace.
#[derive(Clone)]
pub struct Containerd {
    channel: Channel,
    namespace: String,
    socket: PathBuf,
    /// Image layers (overlay lower directories, top first) by image,
    /// learnt from the first container of each image.
    layers: Arc<Mutex<HashMap<String, Vec<PathBuf>>>>,
}

fn rpc(
    socket: &std::path::Path,
    what: &str,
) -> impl FnOnce(containerd_client::tonic::Status) -> ContainerdError {
    let (socket, what) = (socket.to_path_buf(), what.to_owned());
    move |s| ContainerdError::Rpc {
        socket,
        what,
        reason: format!("{}: {}", s.code(), s.message()),
    }
}

fn with_ns<T>(msg: T, ns: &str) -> Result<Request<T>, ContainerdError> {
    let mut req = Request::new(msg);
    let v = ns.parse().map_err(|_| {
        ContainerdError::Usage(format!("--namespace `{ns}` is not a valid namespace"))
    })?;
    req.metadata_mut().insert("containerd-namespace", v);
    Ok(req)
}

impl Containerd {
    /// Connects and checks that containerd answers (its version).
    pub async fn connect(socket: PathBuf, namespace: String) -> Result<Self, ContainerdError> {
        let meta = std::fs::metadata(&socket).map_err(|e| ContainerdError::Rpc {
            socket: socket.clone(),
            what: "opening the socket".into(),
            reason: e.to_string(),
        })?;
        {
            use std::os::unix::fs::FileTypeExt as _;
            if !meta.file_type().is_socket() {
                return Err(ContainerdError::Rpc {
                    socket,
                    what: "opening the socket".into(),
                    reason: "not a unix socket".into(),
                });
            }
        }
        let channel =
            containerd_client::connect(&socket)
                .await
                .map_err(|e| ContainerdError::Rpc {
                    socket: socket.clone(),
                    what: "connecting".into(),
                    reason: e.to_string(),
                })?;
        let version = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            VersionClient::new(channel.clone()).version(()),
        )
        .await
        .map_err(|_| ContainerdError::Rpc {
            socket: socket.clone(),
            what: "asking for its version".into(),
            reason: "no answer within 10 s (is this containerd's gRPC socket, not its ttrpc one?)"
                .into(),
        })?
        .map_err(rpc(&socket, "asking for its version"))?;
        eprintln!(
            "roprof: containerd {} at {}, namespace {namespace}",
            version.into_inner().version,
            socket.display()
        );
        Ok(Containerd {
            channel,
            namespace,
            socket,
            layers: Arc::default(),
        })
    }

    /// Name, labels and image of container `id`; `None` when the
    /// namespace has no such container, or it is a CRI pod sandbox.
    pub async fn info(&self, id: &str) -> Result<Option<ContainerInfo>, ContainerdError> {
        Ok(self.container(id).await?.map(|(info, _)| info))
    }

    /// Container `id` as [`Self::info`] gives it, and its OCI spec.
    async fn container(
        &self,
        id: &str,
    ) -> Result<Option<(ContainerInfo, Option<oci::Spec>)>, ContainerdError> {
        let req = with_ns(GetContainerRequest { id: id.to_owned() }, &self.namespace)?;
        let c = match ContainersClient::new(self.channel.clone()).get(req).await {
            Ok(r) => r.into_inner().container.unwrap_or_default(),
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(rpc(&self.socket, &format!("getting container {id}"))(s)),
        };
        let labels: BTreeMap<String, String> = c.labels.into_iter().collect();
        if labels.get(CRI_KIND).is_some_and(|k| k == "sandbox") {
            return Ok(None);
        }
        self.learn_layers(&c.image, &c.snapshotter, &c.snapshot_key)
            .await;
        let spec = c.spec.as_ref().map(|s| s.value.as_slice());
        let started = spec.and_then(super::Started::from_oci_spec).map(Box::new);
        let info = ContainerInfo {
            name: display_name(&c.id, &labels),
            id: c.id,
            labels,
            image: c.image,
            started,
        };
        Ok(Some((info, spec.and_then(oci::Spec::parse))))
    }

    /// Ids of the namespace's containers whose task is running.
    pub async fn running_ids(&self) -> Result<Vec<String>, ContainerdError> {
        let req = with_ns(
            ListTasksRequest {
                filter: String::new(),
            },
            &self.namespace,
        )?;
        let tasks = TasksClient::new(self.channel.clone())
            .list(req)
            .await
            .map_err(rpc(&self.socket, "listing the tasks"))?
            .into_inner()
            .tasks;
        Ok(tasks
            .into_iter()
            .filter(|t| t.status == TaskStatus::Running as i32)
            // containerd 1.6 fills in the task's id (the container's) and
            // leaves `container_id` empty.
            .map(|t| {
                if t.container_id.is_empty() {
                    t.id
                } else {
                    t.container_id
                }
            })
            .collect())
    }

    /// Identity, root mode (the spec's `root.readonly`), the host pid of
    /// its task and its tmpfs and pod-volume mounts (the spec's), for
    /// `roprof guard`; `None` when the namespace has no such container
    /// (or it is a pod sandbox). The pid is 0 when no task runs.
    pub async fn guard_facts(&self, id: &str) -> Result<Option<GuardFacts>, ContainerdError> {
        let Some((info, spec)) = self.container(id).await? else {
            return Ok(None);
        };
        let spec = spec.unwrap_or_default();
        let req = with_ns(
            GetRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            },
            &self.namespace,
        )?;
        let pid = match TasksClient::new(self.channel.clone()).get(req).await {
            Ok(r) => r
                .into_inner()
                .process
                .filter(|p| p.status == TaskStatus::Running as i32)
                .map_or(0, |p| i64::from(p.pid)),
            Err(s) if s.code() == Code::NotFound => 0,
            Err(s) => return Err(rpc(&self.socket, &format!("getting the task of {id}"))(s)),
        };
        Ok(Some(GuardFacts {
            info,
            read_only: spec.root.readonly,
            pid,
            writable_mounts: spec.writable_mounts(),
        }))
    }

    /// Records the layers of `image` from a container's snapshot (its
    /// overlay mount's lower directories), once per image.
    async fn learn_layers(&self, image: &str, snapshotter: &str, key: &str) {
        if key.is_empty() || self.layers.lock().is_ok_and(|m| m.contains_key(image)) {
            return;
        }
        let Ok(req) = with_ns(
            MountsRequest {
                snapshotter: snapshotter.to_owned(),
                key: key.to_owned(),
            },
            &self.namespace,
        ) else {
            return;
        };
        if let Ok(r) = SnapshotsClient::new(self.channel.clone()).mounts(req).await {
            let dirs: Vec<PathBuf> = r
                .into_inner()
                .mounts
                .iter()
                .flat_map(|m| super::layers::lowerdirs(&m.options))
                .collect();
            if !dirs.is_empty()
                && let Ok(mut m) = self.layers.lock()
            {
                m.insert(image.to_owned(), dirs);
            }
        }
    }

    /// The layers of `image` (top first), if a container of it was seen.
    #[must_use]
    pub fn layers_of(&self, image: &str) -> Option<Vec<PathBuf>> {
        self.layers.lock().ok()?.get(image).cloned()
    }

    /// Lifecycle events of the namespace's containers from now on.
    ///
    /// The subscription runs in a task of its own: containerd's gRPC server
    /// sends the response headers of the event stream only with its first
    /// event, so awaiting the call itself would wait for one. The request
    /// is sent at once, so containers created from here on are seen.
    pub fn events(&self) -> impl Stream<Item = Result<LifecycleEvent, ContainerdError>> + use<> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let this = self.clone();
        tokio::spawn(async move {
            let res = EventsClient::new(this.channel.clone())
                .subscribe(SubscribeRequest { filters: vec![] })
                .await;
            let mut stream = match res {
                Ok(r) => r.into_inner(),
                Err(s) => {
                    let _ = tx.send(Err(rpc(&this.socket, "subscribing to events")(s)));
                    return;
                }
            };
            loop {
                let item = match stream.message().await {
                    Ok(Some(env)) if env.namespace == this.namespace => {
                        match this.lifecycle(env).await {
                            Ok(Some(e)) => Ok(e),
                            Ok(None) => continue,
                            Err(e) => Err(e),
                        }
                    }
                    Ok(Some(_)) => continue,
                    // The stream ended: the receiver sees the channel close.
                    Ok(None) => return,
                    Err(s) => Err(rpc(&this.socket, "following events")(s)),
                };
                let failed = item.is_err();
                // The receiver is gone: watch ended.
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
    }

    async fn lifecycle(
        &self,
        env: containerd_client::types::Envelope,
    ) -> Result<Option<LifecycleEvent>, ContainerdError> {
        let Some(mut any) = env.event else {
            return Ok(None);
        };
        // containerd leaves out the leading slash the `Any` type URL needs.
        if !any.type_url.starts_with('/') {
            any.type_url.insert(0, '/');
        }
        let bad = |e: prost::DecodeError| ContainerdError::Rpc {
            socket: self.socket.clone(),
            what: format!("decoding the event {}", env.topic),
            reason: e.to_string(),
        };
        Ok(match env.topic.as_str() {
            "/containers/create" => {
                let c: ContainerCreate = any.to_msg().map_err(bad)?;
                self.info(&c.id).await?.map(LifecycleEvent::Created)
            }
            "/tasks/start" => {
                let t: TaskStart = any.to_msg().map_err(bad)?;
                Some(LifecycleEvent::Started { id: t.container_id })
            }
            "/tasks/exit" => {
                let t: TaskExit = any.to_msg().map_err(bad)?;
                // An exec'd process's exit is not the container's.
                (t.id == t.container_id || t.id.is_empty()).then(|| LifecycleEvent::Exited {
                    code: Some(i64::from(t.exit_status)),
                    id: t.container_id,
                })
            }
            "/containers/delete" => {
                let c: ContainerDelete = any.to_msg().map_err(bad)?;
                Some(LifecycleEvent::Removed { id: c.id })
            }
            _ => None,
        })
    }
}

/// A readable, unique name: `<namespace>_<pod>_<container>` for a CRI
/// container, else its id.
#[must_use]
pub fn display_name(id: &str, labels: &BTreeMap<String, String>) -> String {
    match (
        labels.get(K8S_NAMESPACE),
        labels.get(K8S_POD),
        labels.get(K8S_CONTAINER),
    ) {
        (Some(ns), Some(pod), Some(c)) => format!("{ns}_{pod}_{c}"),
        _ => id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Containerd, display_name};

    #[tokio::test]
    async fn a_bad_socket_is_an_error_naming_it() {
        for (path, why) in [
            ("/nonexistent/containerd.sock", "No such file"),
            ("/etc/hostname", "not a unix socket"),
        ] {
            let Err(e) = Containerd::connect(path.into(), "k8s.io".into()).await else {
                panic!("connecting to {path} should fail");
            };
            let msg = e.to_string();
            assert!(
                msg.contains(path) && msg.contains(why) && msg.contains("--containerd-socket"),
                "the error names the socket, the cause and the flag: {msg}"
            );
        }
    }

    #[test]
    fn cri_containers_are_named_namespace_pod_container() {
        let mut l = BTreeMap::new();
        assert_eq!(display_name("abc", &l), "abc");
        l.insert("io.kubernetes.pod.namespace".into(), "shop".into());
        l.insert(
            "io.kubernetes.pod.name".into(),
            "web-7d4b9c8f6d-x2v9q".into(),
        );
        l.insert("io.kubernetes.container.name".into(), "nginx".into());
        assert_eq!(display_name("abc", &l), "shop_web-7d4b9c8f6d-x2v9q_nginx");
    }
}
