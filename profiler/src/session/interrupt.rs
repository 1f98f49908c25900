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
use crate::{model::Phase, runtime::Engine};

/// The signal state of the process, in one place.
///
/// Why a static and not a value passed along with [`super::Context`]: the
/// handler task is installed once, before any command knows whether it
/// will build a `Context` (`attach`, `verify` and `doctor` also need it),
/// and on a second signal it must remove every container any run
/// registered and exit the process from inside that task, whatever the
/// main task is doing. Readers only ask "did a signal arrive?" and "which
/// phase is this?", so the state is behind the functions of this module
/// and nothing else in the crate sees it.
struct Signals {
    /// Signals received.
    count: AtomicU32,
    /// Name of the last one (`SIGINT`, `SIGTERM`).
    last: Mutex<&'static str>,
    /// The phase the run is in.
    phase: Mutex<Phase>,
    /// Set once verification starts: the phases of its runs are reported
    /// as `verify (observe)` and so on.
    context: Mutex<Option<Phase>>,
    /// The phase the first signal arrived in.
    signal_phase: Mutex<Option<String>>,
    /// Containers to remove on exit.
    containers: Mutex<Vec<String>>,
}

static SIGNALS: Signals = Signals {
    count: AtomicU32::new(0),
    last: Mutex::new(""),
    phase: Mutex::new(Phase::Start),
    context: Mutex::new(None),
    signal_phase: Mutex::new(None),
    containers: Mutex::new(Vec::new()),
};

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
            if let Ok(mut l) = SIGNALS.last.lock() {
                *l = name;
            }
            if let Ok(mut p) = SIGNALS.signal_phase.lock()
                && p.is_none()
            {
                *p = Some(phase());
            }
            let n = SIGNALS.count.fetch_add(1, Ordering::SeqCst) + 1;
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
    SIGNALS.count.load(Ordering::SeqCst) > 0
}

/// The error for an interrupted run, naming the signal and the phase.
#[must_use]
pub fn error() -> SessionError {
    SessionError::Interrupted {
        signal: SIGNALS.last.lock().map_or("a signal", |l| *l),
        phase: SIGNALS
            .signal_phase
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
    let Ok(p) = SIGNALS.phase.lock().map(|p| *p) else {
        return "unknown".to_owned();
    };
    match SIGNALS.context.lock().ok().and_then(|c| *c) {
        Some(c) if c != p => format!("{} ({})", c.as_str(), p.as_str()),
        _ => p.as_str().to_owned(),
    }
}

/// Enters `phase`, which names it in interruption reports.
pub fn enter(phase: Phase) {
    if phase == Phase::Verify
        && let Ok(mut c) = SIGNALS.context.lock()
    {
        *c = Some(phase);
    }
    if let Ok(mut p) = SIGNALS.phase.lock() {
        *p = phase;
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
    if let Ok(mut v) = SIGNALS.containers.lock() {
        v.push(id.to_owned());
    }
}

/// Forgets a container (removed, or kept on purpose).
pub fn forget(id: &str) {
    if let Ok(mut v) = SIGNALS.containers.lock() {
        v.retain(|x| x != id);
    }
}

/// The containers registered for removal.
#[must_use]
pub fn registered() -> Vec<String> {
    SIGNALS
        .containers
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default()
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
