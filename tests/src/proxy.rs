//! A Unix-socket proxy in front of the Docker socket, for tests that
//! break a roprof's connection to the engine (`DOCKER_HOST` pointed at
//! it) without touching the engine every other test uses.

use std::{path::Path, time::Duration};

/// A Unix-socket proxy in front of the Docker socket that the test can
/// cut and bring back, to break guard's connection to the engine without
/// touching the engine other tests use.
pub struct EngineProxy {
    path: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl EngineProxy {
    /// Listens on `path`, forwarding to the Docker socket.
    #[must_use]
    pub fn start(path: &Path) -> Self {
        use std::{
            os::unix::net::{UnixListener, UnixStream},
            sync::atomic::Ordering,
        };
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("expected to bind {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop2, conns2) = (stop.clone(), conns.clone());
        let accept = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                let pipe = |mut from: UnixStream, mut to: UnixStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                if let (Ok(c2), Ok(e2)) = (client.try_clone(), engine.try_clone()) {
                    if let Ok(mut v) = conns2.lock() {
                        v.extend(c2.try_clone().ok());
                        v.extend(e2.try_clone().ok());
                    }
                    pipe(client, e2);
                    pipe(engine, c2);
                }
            }
        });
        EngineProxy {
            path: path.to_path_buf(),
            stop,
            conns,
            accept: Some(accept),
        }
    }

    /// Closes the socket and every connection through it.
    pub fn cut(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        if let Ok(mut v) = self.conns.lock() {
            for c in v.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
