//! What the runs of one roprof process share: the engine, the one loaded
//! tracer, the image listings, and the clean-up left for after the answer.
//!
//! Loading and verifying the eBPF programs (1.2–1.8 s on the bench
//! machine, `emit` verified on a thread of its own: `trace::load`) starts
//! in the background as soon as the context exists, so it overlaps the
//! image inspection, container creation and filesystem listing; every run
//! then re-arms the same programs instead of loading them again.
//! Containers of finished closed-loop rounds are removed in the background
//! while the next round runs, and the last one after the answer is printed
//! ([`Context::teardown`]).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::{SessionError, interrupt, remove_or_wait};
use crate::{
    model::ImageListing,
    runtime::Engine,
    trace::{Scope, TraceError, Tracer, Wakeups},
};

type Loaded = Result<(Tracer, Duration), TraceError>;

/// State shared by the runs of one process.
pub struct Context {
    /// The engine.
    pub engine: Engine,
    loading: Option<tokio::task::JoinHandle<Loaded>>,
    tracer: Option<Tracer>,
    load_secs: f64,
    listings: HashMap<String, ImageListing>,
    pending: Vec<tokio::task::JoinHandle<()>>,
    seq: usize,
}

impl Context {
    /// Starts loading the eBPF programs in the background (the ring buffer
    /// sized `ringbuf_bytes`, default when `None`).
    #[must_use]
    pub fn new(engine: Engine, ringbuf_bytes: Option<u32>) -> Self {
        let loading = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            // No target yet: the programs record nothing until a run arms
            // them with `Tracer::reset_for`.
            // Every run of a session may end in a settle window.
            Tracer::start(&Scope {
                ringbuf_bytes,
                wakeups: Wakeups::WaitsToo,
                ..Scope::default()
            })
            .map(|tracer| (tracer, t.elapsed()))
        });
        Context {
            engine,
            loading: Some(loading),
            tracer: None,
            load_secs: 0.0,
            listings: HashMap::new(),
            pending: Vec::new(),
            seq: 0,
        }
    }

    /// The loaded tracer, waiting for the background load when it is still
    /// under way (a signal abandons the wait).
    pub async fn tracer(&mut self) -> Result<&mut Tracer, SessionError> {
        if let Some(h) = self.loading.take() {
            let (tracer, took) = interrupt::abortable(async {
                h.await
                    .map_err(|e| TraceError::Poll(std::io::Error::other(e)))?
                    .map_err(SessionError::from)
            })
            .await?;
            self.load_secs = took.as_secs_f64();
            self.tracer = Some(tracer);
        }
        self.tracer
            .as_mut()
            .ok_or(SessionError::Trace(TraceError::MissingMap(
                profiler_common::MAP_EVENTS,
            )))
    }

    /// Seconds the eBPF load took (0 until it finished).
    #[must_use]
    pub fn bpf_load_secs(&self) -> f64 {
        self.load_secs
    }

    /// The filesystem listing of `image_id`, exported from container `id`
    /// the first time and reused after: every container of one image starts
    /// from the same filesystem (mounts are not part of an export).
    pub async fn listing(
        &mut self,
        image_id: &str,
        id: &str,
    ) -> Result<ImageListing, SessionError> {
        if let Some(l) = self.listings.get(image_id) {
            return Ok(l.clone());
        }
        let engine = self.engine.clone();
        let listing = interrupt::abortable(async { Ok(engine.listing(id).await?) }).await?;
        if !image_id.is_empty() {
            self.listings.insert(image_id.to_owned(), listing.clone());
        }
        Ok(listing)
    }

    /// A number unique in this process (names of verification volumes:
    /// a round's fresh volume must never be one a previous round used).
    pub fn next_seq(&mut self) -> usize {
        self.seq += 1;
        self.seq
    }

    /// Removes container `id`, then `volumes`, in the background; awaited
    /// by [`Context::teardown`].
    pub fn remove_later(&mut self, id: String, volumes: Vec<String>) {
        let engine = self.engine.clone();
        self.pending.push(tokio::spawn(async move {
            if remove_or_wait(&engine, &id).await.is_ok() {
                for v in &volumes {
                    if let Err(e) = engine.remove_volume(v).await {
                        eprintln!("roprof: {e}");
                    }
                }
            } else {
                for v in &volumes {
                    eprintln!("roprof: volume {v} stays with its container; remove it with `docker volume rm {v}`");
                }
            }
        }));
    }

    /// Between the rounds of a compose project: finishes the background
    /// removals and removes the containers still registered, keeping the
    /// loaded tracer for the next service.
    pub async fn remove_now(&mut self) {
        for h in self.pending.drain(..) {
            let _ = h.await;
        }
        for id in interrupt::registered() {
            let _ = remove_or_wait(&self.engine, &id).await;
        }
    }

    /// After the answer: finishes the background removals, removes the
    /// containers still registered, and unloads the eBPF programs.
    pub async fn teardown(mut self) {
        for h in self.pending.drain(..) {
            let _ = h.await;
        }
        for id in interrupt::registered() {
            let _ = remove_or_wait(&self.engine, &id).await;
        }
        drop(self.tracer.take());
    }
}
