//! The runtime `watch` follows: its container events, a container's
//! identity, and the image a report needs (its config and filesystem).

use std::{collections::HashMap, path::PathBuf, pin::Pin};

use futures::{Stream, StreamExt as _};

use super::WatchError;
use crate::runtime::containerd::Containerd;
use crate::{
    model::{ImageConfig, ImageListing},
    runtime::{ContainerInfo, ContainerSpec, Engine, GuardFacts, LifecycleEvent},
    session::interrupt,
};

/// Which runtime, from `--runtime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Docker, or Podman's Docker-compatible API (`DOCKER_HOST`).
    Docker,
    /// containerd's own API.
    Containerd {
        /// `--containerd-socket`.
        socket: PathBuf,
        /// `--namespace`.
        namespace: String,
    },
}

/// Lifecycle events as a stream.
pub type Events = Pin<Box<dyn Stream<Item = Result<LifecycleEvent, WatchError>> + Send>>;

/// A connected runtime.
pub enum Source {
    /// Engine API.
    Docker(Engine),
    /// containerd.
    Containerd(Containerd),
}

/// The image part of a report.
#[derive(Clone, Default)]
pub struct ImageFacts {
    /// Config.
    pub config: ImageConfig,
    /// Initial filesystem.
    pub listing: ImageListing,
    /// What the reader must know about them.
    pub notes: Vec<String>,
}

impl Source {
    /// Connects to the runtime `kind` names; a bad socket is an error
    /// naming it.
    pub async fn connect(kind: &RuntimeKind) -> Result<Self, WatchError> {
        Ok(match kind {
            RuntimeKind::Docker => Source::Docker(Engine::connect().await?),
            RuntimeKind::Containerd { socket, namespace } => {
                Source::Containerd(Containerd::connect(socket.clone(), namespace.clone()).await?)
            }
        })
    }

    /// The runtime's name, for messages.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Source::Docker(_) => "Docker engine",
            Source::Containerd(_) => "containerd",
        }
    }

    /// Lifecycle events from now on.
    /// (Subscribing failures arrive as the stream's first item.)
    #[must_use]
    pub fn events(&self) -> Events {
        match self {
            // Polled at once by a task of its own, so that the request is
            // made now, not when the loop first asks (streams are lazy).
            Source::Docker(e) => forward(e.container_events().map(|r| r.map_err(Into::into))),
            Source::Containerd(c) => Box::pin(c.events().map(|r| r.map_err(Into::into))),
        }
    }

    /// A container's identity; `None` when the runtime (namespace) has no
    /// such container.
    pub async fn info(&self, id: &str) -> Result<Option<ContainerInfo>, WatchError> {
        match self {
            Source::Docker(e) => Ok(e.container_info(id).await?),
            Source::Containerd(c) => Ok(c.info(id).await?),
        }
    }

    /// Ids of the running containers (`roprof guard` starts with them).
    pub async fn running_ids(&self) -> Result<Vec<String>, WatchError> {
        match self {
            Source::Docker(e) => Ok(e.running_ids().await?),
            Source::Containerd(c) => Ok(c.running_ids().await?),
        }
    }

    /// What `roprof guard` needs to know about container `id`: identity,
    /// root mode, pid, mounts (Docker's inspect, or containerd's OCI spec
    /// and task); `None` when the runtime has no such container.
    pub async fn guard_facts(&self, id: &str) -> Result<Option<GuardFacts>, WatchError> {
        match self {
            Source::Docker(e) => Ok(e.guard_facts(id).await?),
            Source::Containerd(c) => Ok(c.guard_facts(id).await?),
        }
    }

    /// The config and initial filesystem of `image`.
    ///
    /// Docker: exported from a container created from the image and never
    /// started (the watched container may be gone already: `--rm`), then
    /// removed. containerd: listed from the image's layers on the host
    /// (see [`super::layers`]); the image config is not read.
    pub async fn image(&self, image: &str) -> ImageFacts {
        match self {
            Source::Docker(e) => docker_image(e, image).await,
            Source::Containerd(c) => containerd_image(c, image).await,
        }
    }
}

/// Drives `s` in a task from now on; its items come out of the returned
/// stream (dropping it ends the task at the next item).
fn forward(s: impl Stream<Item = Result<LifecycleEvent, WatchError>> + Send + 'static) -> Events {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut s = std::pin::pin!(s);
        while let Some(item) = s.next().await {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|x| (x, rx))
    }))
}

async fn containerd_image(c: &Containerd, image: &str) -> ImageFacts {
    let mut facts = ImageFacts {
        config: ImageConfig {
            image: image.to_owned(),
            ..ImageConfig::default()
        },
        listing: ImageListing::default(),
        notes: vec!["containerd: the image config (USER, VOLUME, WORKDIR) was not read".to_owned()],
    };
    let listed = match c.layers_of(image) {
        Some(dirs) => tokio::task::spawn_blocking(move || crate::runtime::layers::listing(&dirs))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r),
        None => Err("its snapshot's layers were not found".to_owned()),
    };
    match listed {
        Ok(l) => facts.listing = l,
        Err(e) => facts.notes.push(format!(
            "the filesystem of image {image} was not listed ({e}), so the plan cannot tell \
             image content from new files; check each mount against the image"
        )),
    }
    facts
}

async fn docker_image(engine: &Engine, image: &str) -> ImageFacts {
    let mut facts = ImageFacts::default();
    match engine.image_config(image).await {
        Ok(c) => facts.config = c,
        Err(e) => {
            facts.config.image = image.to_owned();
            facts
                .notes
                .push(format!("the image config was not read: {e}"));
        }
    }
    let spec = ContainerSpec {
        image: image.to_owned(),
        ..ContainerSpec::default()
    };
    match engine.create(&spec).await {
        Ok(id) => {
            interrupt::register(&id);
            match engine.listing(&id).await {
                Ok(l) => facts.listing = l,
                Err(e) => facts
                    .notes
                    .push(format!("the image filesystem was not listed: {e}")),
            }
            match engine.remove(&id).await {
                Ok(()) => interrupt::forget(&id),
                Err(e) => eprintln!("roprof: {e}"),
            }
        }
        Err(e) => facts
            .notes
            .push(format!("the image filesystem was not listed: {e}")),
    }
    facts
}

/// Image facts cached per image reference: replicas share an image.
#[derive(Default)]
pub struct ImageCache(HashMap<String, ImageFacts>);

impl ImageCache {
    /// The facts of `image`, read once.
    pub async fn get(&mut self, source: &Source, image: &str) -> ImageFacts {
        if let Some(f) = self.0.get(image) {
            return f.clone();
        }
        let f = source.image(image).await;
        self.0.insert(image.to_owned(), f.clone());
        f
    }
}
