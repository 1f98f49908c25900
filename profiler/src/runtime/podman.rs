//! What Podman needs beyond its Docker-compatible API: telling it apart
//! from Docker, creating containers through the libpod endpoint (see
//! [`super::specgen`] for why), and reading container state that bollard's
//! Docker types cannot hold (Podman reports states such as `stopped`,
//! `initialized` or `configured` that Docker's enum does not list).
//!
//! Both go over the same unix socket as bollard, with hyper.

use std::{path::PathBuf, time::Duration};

use bollard::models::SystemVersion;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use hyperlocal::{UnixConnector, Uri};
use serde::Deserialize;

use super::{
    ExitState, RuntimeError,
    specgen::{Prepared, TMPFS_VOLUME_PREFIX},
};

/// The libpod API version roprof speaks (Podman 4.0 and newer accept it).
const LIBPOD_API: &str = "v4.0.0";
/// The Docker API version prefix for the compatible calls made here.
const COMPAT_API: &str = "v1.41";
/// Longest wait for one call.
const CALL_TIMEOUT: Duration = Duration::from_mins(2);

/// Which engine answers on the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Docker (dockerd).
    Docker,
    /// Podman's API service (`podman system service`).
    Podman,
}

impl Flavor {
    /// From `GET /version`: Podman lists a `Podman Engine` component
    /// (its platform name is the OS, e.g. `linux/amd64/debian-12`).
    #[must_use]
    pub fn of(v: &SystemVersion) -> Self {
        let podman = v
            .components
            .iter()
            .flatten()
            .any(|c| c.name.contains("Podman"))
            || v.platform
                .as_ref()
                .is_some_and(|p| p.name.contains("Podman"));
        if podman { Self::Podman } else { Self::Docker }
    }
}

/// A client for the calls bollard cannot make, on Podman's unix socket.
#[derive(Clone)]
pub struct Libpod {
    socket: PathBuf,
    client: Client<UnixConnector, Full<Bytes>>,
}

/// The part of a (Docker-compatible) container inspect that roprof reads,
/// with the state's status kept as a plain string.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    #[serde(default)]
    state: InspectState,
    #[serde(default)]
    mounts: Vec<InspectMount>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectMount {
    #[serde(default, rename = "Type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
}

fn to_json(what: &str, body: &impl serde::Serialize) -> Result<Vec<u8>, RuntimeError> {
    serde_json::to_vec(body).map_err(|e| RuntimeError::Podman {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    #[serde(default)]
    status: String,
    #[serde(default)]
    running: bool,
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default, rename = "OOMKilled")]
    oom_killed: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    pid: i64,
}

/// Podman's reply to a create, and the shape of its errors.
#[derive(Debug, Deserialize)]
struct Created {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    cause: String,
}

fn server_error(what: &str, status: u16, body: &[u8]) -> RuntimeError {
    let message = serde_json::from_slice::<ErrorBody>(body).map_or_else(
        |_| String::from_utf8_lossy(body).trim().to_owned(),
        |e| {
            if e.message.is_empty() {
                e.cause
            } else {
                e.message
            }
        },
    );
    RuntimeError::Podman {
        what: what.to_owned(),
        reason: format!("HTTP {status}: {message}"),
    }
}

impl Libpod {
    /// A client for the socket at `socket` (a path, no scheme).
    #[must_use]
    pub fn new(socket: PathBuf) -> Self {
        let client = Client::builder(TokioExecutor::new()).build(UnixConnector);
        Self { socket, client }
    }

    /// One call (`what` names it in errors); the body of a 2xx answer,
    /// else an error with the engine's message.
    async fn call(
        &self,
        what: &str,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, RuntimeError> {
        let fail = |reason: String| RuntimeError::Podman {
            what: what.to_owned(),
            reason,
        };
        let uri: http::Uri = Uri::new(&self.socket, path).into();
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| fail(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| fail(format!("{} ({e})", self.socket.display())))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| fail(e.to_string()))?
                .to_bytes();
            if status.is_success() {
                Ok(bytes)
            } else {
                Err(server_error(what, status.as_u16(), &bytes))
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| fail(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))?
    }

    /// Creates the tmpfs volumes, then the container (`POST
    /// /libpod/containers/create`); returns the container's id. Nothing is
    /// left behind when a step fails.
    pub async fn create(&self, p: &Prepared) -> Result<String, RuntimeError> {
        let mut made = Vec::new();
        let mut result = Ok(String::new());
        for v in &p.tmpfs_volumes {
            let what = format!("creating tmpfs volume {}", v.name);
            let path = format!("/{LIBPOD_API}/libpod/volumes/create");
            result = match to_json(&what, v) {
                Ok(body) => self
                    .call(&what, http::Method::POST, &path, Some(body))
                    .await
                    .map(|_| String::new()),
                Err(e) => Err(e),
            };
            if result.is_err() {
                break;
            }
            made.push(v.name.clone());
        }
        if result.is_ok() {
            result = self.create_container(p).await;
        }
        if result.is_err() {
            for name in &made {
                let _ = self.remove_volume(name).await;
            }
        }
        result
    }

    async fn create_container(&self, p: &Prepared) -> Result<String, RuntimeError> {
        let what = format!(
            "creating a container from `{}` (libpod API)",
            p.spec.image()
        );
        let body = to_json(&what, &p.spec)?;
        let path = format!("/{LIBPOD_API}/libpod/containers/create");
        let answer = self
            .call(&what, http::Method::POST, &path, Some(body))
            .await?;
        serde_json::from_slice::<Created>(&answer)
            .map(|c| c.id)
            .map_err(|e| RuntimeError::Podman {
                what,
                reason: format!("unexpected answer: {e}"),
            })
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        let what = format!("removing tmpfs volume {name}");
        let path = format!("/{LIBPOD_API}/libpod/volumes/{name}?force=true");
        match self.call(&what, http::Method::DELETE, &path, None).await {
            Err(RuntimeError::Podman { reason, .. }) if reason.starts_with("HTTP 404") => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// The tmpfs volumes roprof made for container `id` (to remove once
    /// the container is gone); none when it no longer exists.
    pub async fn tmpfs_volumes_of(&self, id: &str) -> Vec<String> {
        self.inspect(id)
            .await
            .map(|i| {
                i.mounts
                    .into_iter()
                    .filter(|m| m.kind == "volume")
                    .filter_map(|m| m.name)
                    .filter(|n| n.starts_with(TMPFS_VOLUME_PREFIX))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes the tmpfs volumes `names` (after their container).
    pub async fn remove_tmpfs_volumes(&self, names: &[String]) -> Result<(), RuntimeError> {
        for name in names {
            self.remove_volume(name).await?;
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<Inspect, RuntimeError> {
        let what = format!("inspecting container {id}");
        let path = format!("/{COMPAT_API}/containers/{id}/json");
        let answer = self.call(&what, http::Method::GET, &path, None).await?;
        parse_inspect(&answer).map_err(|reason| RuntimeError::Podman { what, reason })
    }

    /// The container's state, whatever status name Podman gives it.
    pub async fn state(&self, id: &str) -> Result<ExitState, RuntimeError> {
        Ok(exit_state(&self.inspect(id).await?.state))
    }

    /// Host pid of the container's init (0 when not running).
    pub async fn pid(&self, id: &str) -> Result<i64, RuntimeError> {
        Ok(self.inspect(id).await?.state.pid)
    }
}

fn parse_inspect(body: &[u8]) -> Result<Inspect, String> {
    serde_json::from_slice(body).map_err(|e| format!("unexpected answer: {e}"))
}

fn exit_state(s: &InspectState) -> ExitState {
    // `stopped` (exited, not yet cleaned up) and `exited` both carry the
    // exit code; a `running` flag is what says it still runs.
    let running = s.running && !matches!(s.status.as_str(), "stopped" | "exited");
    ExitState {
        running,
        exit_code: if running { None } else { s.exit_code },
        oom_killed: s.oom_killed,
        error: s.error.clone().filter(|e| !e.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{SystemVersionComponents, SystemVersionPlatform};

    use super::*;

    #[test]
    fn podman_is_told_apart_by_its_component() {
        let component = |name: &str| SystemVersionComponents {
            name: name.into(),
            ..Default::default()
        };
        let mut v = SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "linux/amd64/debian-12".into(),
            }),
            components: Some(vec![component("Podman Engine"), component("Conmon")]),
            ..Default::default()
        };
        assert_eq!(Flavor::of(&v), Flavor::Podman);
        v.components = Some(vec![component("Engine"), component("containerd")]);
        v.platform = Some(SystemVersionPlatform {
            name: "Docker Engine - Community".into(),
        });
        assert_eq!(Flavor::of(&v), Flavor::Docker);
        assert_eq!(Flavor::of(&SystemVersion::default()), Flavor::Docker);
    }

    #[test]
    fn states_docker_does_not_know_are_read() {
        for (status, running, exit, want_running, want_exit) in [
            ("stopped", false, 3, false, Some(3)),
            ("exited", false, 0, false, Some(0)),
            ("running", true, 0, true, None),
            ("initialized", false, 0, false, Some(0)),
            ("stopping", true, 0, true, None),
        ] {
            let body = serde_json::json!({
                "Id": "c0ffee",
                "State": {"Status": status, "Running": running, "ExitCode": exit,
                          "OOMKilled": false, "Error": "", "Pid": 0,
                          "Health": {"Status": "", "FailingStreak": 0, "Log": null}},
            });
            let i = parse_inspect(body.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("status {status} must parse: {e}"));
            let s = exit_state(&i.state);
            assert_eq!(
                (s.running, s.exit_code, s.error),
                (want_running, want_exit, None),
                "status {status}"
            );
        }
    }

    #[test]
    fn engine_errors_keep_podmans_message() {
        let e = server_error(
            "creating a container from `x`",
            500,
            br#"{"cause":"no such image","message":"x: image not known","response":500}"#,
        )
        .to_string();
        assert!(
            e.contains("creating a container from `x`") && e.contains("x: image not known"),
            "{e}"
        );
    }
}
