//! Process-wide SIGINT/SIGTERM handling.
//!
//! The first signal asks the current run to wind down: during observation
//! the container is stopped, the events so far are collected and the report
//! is printed marked incomplete; in any other phase the run is abandoned.
//! Either way the containers roprof created are removed and the BPF programs
//! unloaded (by drop) before exiting 130. A second signal removes the
//! containers at once and exits.

use std::sync::{
    Mutex,
    atomic::{AtomicU32, Ordering},
};

use super::SessionError;
use crate::runtime::Engine;

static COUNT: AtomicU32 = AtomicU32::new(0);
static LAST: Mutex<&'static str> = Mutex::new("");
static PHASE: Mutex<&'static str> = Mutex::new("start");
/// Set once verification starts: the phases of its runs are reported as
/// `verify (observe)` and so on.
static CONTEXT: Mutex<Option<&'static str>> = Mutex::new(None);
/// The phase the first signal arrived in.
static SIGNAL_PHASE: Mutex<Option<String>> = Mutex::new(None);
static CONTAINERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the handlers; call once, inside the tokio runtime.
pub fn install() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if let Ok(mut l) = LAST.lock() {
                *l = name;
            }
            if let Ok(mut p) = SIGNAL_PHASE.lock()
                && p.is_none()
            {
                *p = Some(phase());
            }
            let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 1 {
                eprintln!(
                    "roprof: {name}: finishing up (removing containers); press Ctrl-C again to force"
                );
            } else {
                eprintln!("roprof: {name} again: removing containers and exiting now");
                if let Ok(engine) = Engine::connect().await {
                    remove_all(&engine).await;
                }
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

/// True once a signal arrived.
#[must_use]
pub fn interrupted() -> bool {
    COUNT.load(Ordering::SeqCst) > 0
}

/// The error for an interrupted run, naming the signal and the phase.
#[must_use]
pub fn error() -> SessionError {
    SessionError::Interrupted {
        signal: LAST.lock().map_or("a signal", |l| *l),
        phase: SIGNAL_PHASE
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_else(phase),
    }
}

/// "interrupted by SIGINT during observe".
#[must_use]
pub fn describe() -> String {
    match error() {
        SessionError::Interrupted { signal, phase } => {
            format!("interrupted by {signal} during {phase}")
        }
        e => e.to_string(),
    }
}

/// The phase the run is in (`inspect`, `create`, `listing`, `attach`,
/// `observe`, `stop`, `collect`, `analyse`, `verify`).
#[must_use]
pub fn phase() -> String {
    let p = PHASE.lock().map_or("unknown", |p| *p);
    match CONTEXT.lock().ok().and_then(|c| *c) {
        Some(c) if c != p => format!("{c} ({p})"),
        _ => p.to_owned(),
    }
}

/// Enters `name`. Test hook: when `ROPROF_HOLD_PHASE` names this phase,
/// roprof says so on stderr and waits here (up to 120 s) for a signal, so
/// that a test can interrupt every phase deterministically.
pub async fn enter(name: &'static str) {
    if name == "verify"
        && let Ok(mut c) = CONTEXT.lock()
    {
        *c = Some(name);
    }
    if let Ok(mut p) = PHASE.lock() {
        *p = name;
    }
    if std::env::var("ROPROF_HOLD_PHASE").is_ok_and(|h| h == name) {
        eprintln!("roprof: holding in phase {name} (ROPROF_HOLD_PHASE)");
        let _ = tokio::time::timeout(std::time::Duration::from_mins(2), wait()).await;
    }
}

/// Fails with [`error`] when a signal arrived.
pub fn check() -> Result<(), SessionError> {
    if interrupted() { Err(error()) } else { Ok(()) }
}

/// Resolves when a signal arrives.
pub async fn wait() {
    while !interrupted() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs `fut`, abandoning it with [`error`] when a signal arrives.
pub async fn abortable<T>(
    fut: impl Future<Output = Result<T, SessionError>>,
) -> Result<T, SessionError> {
    tokio::select! {
        r = fut => r,
        () = wait() => Err(error()),
    }
}

/// Registers a container to remove on exit.
pub fn register(id: &str) {
    if let Ok(mut v) = CONTAINERS.lock() {
        v.push(id.to_owned());
    }
}

/// Forgets a container (removed, or kept on purpose).
pub fn forget(id: &str) {
    if let Ok(mut v) = CONTAINERS.lock() {
        v.retain(|x| x != id);
    }
}

/// The containers registered for removal.
#[must_use]
pub fn registered() -> Vec<String> {
    CONTAINERS.lock().map(|v| v.clone()).unwrap_or_default()
}

/// Removes every registered container.
pub async fn remove_all(engine: &Engine) {
    for id in registered() {
        match engine.remove(&id).await {
            Ok(()) => forget(&id),
            Err(e) => eprintln!("roprof: cleanup: {e}"),
        }
    }
}
