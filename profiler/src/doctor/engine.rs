//! The container engine checks: the Docker Engine API roprof uses
//! (`DOCKER_HOST` or `/var/run/docker.sock`: ping and API version, through
//! the same connection code as a profiling run), and, where their sockets
//! exist, Podman (its Docker-compatible API) and containerd (presence only:
//! roprof cannot use it alone).

use std::{path::Path, time::Duration};

use bollard::Docker;

use super::{Check, CheckId};
use crate::runtime::{Engine, endpoint};

/// Oldest Engine API roprof is tested with (Docker 20.10).
pub const MIN_API: (u32, u32) = (1, 41);
/// How long the doctor waits for an engine to answer.
const TIMEOUT: Duration = Duration::from_secs(15);
/// containerd's default socket.
const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// Rootful Podman's API socket (`podman.socket`).
const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// Parses an API version such as `1.41`.
#[must_use]
pub fn parse_api(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The Docker-API line, then Podman and containerd where present.
pub async fn checks() -> Vec<Check> {
    let mut out = vec![docker().await];
    let endpoint = endpoint();
    for sock in podman_sockets() {
        // Already checked above when DOCKER_HOST points at it.
        if Path::new(&sock).exists() && endpoint != format!("unix://{sock}") {
            out.push(podman(&sock).await);
        }
    }
    if Path::new(CONTAINERD_SOCKET).exists() {
        out.push(Check::pass(
            CheckId::Containerd,
            format!(
                "socket at {CONTAINERD_SOCKET} (roprof does not use it directly: it goes through the Docker API above)"
            ),
        ));
    }
    out
}

/// Rootful and (for this user) rootless Podman sockets.
fn podman_sockets() -> Vec<String> {
    let mut v = vec![PODMAN_SOCKET.to_owned()];
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(format!("{}/podman/podman.sock", Path::new(&dir).display()));
    }
    v
}

/// Connects as `profile` does, then checks the API version.
async fn docker() -> Check {
    let endpoint = endpoint();
    let engine = match tokio::time::timeout(TIMEOUT, Engine::connect()).await {
        Err(_) => {
            return Check::fail(
                CheckId::Engine,
                format!("{endpoint} did not answer within {}s", TIMEOUT.as_secs()),
            );
        }
        Ok(Err(e)) => return Check::fail(CheckId::Engine, one_line(&e)),
        Ok(Ok(engine)) => engine,
    };
    match tokio::time::timeout(TIMEOUT, engine.server_version()).await {
        Err(_) => Check::fail(
            CheckId::Engine,
            format!(
                "{endpoint} answered ping but not /version within {}s",
                TIMEOUT.as_secs()
            ),
        ),
        Ok(Err(e)) => Check::fail(CheckId::Engine, one_line(&e)),
        Ok(Ok(v)) => api_check(
            CheckId::Engine,
            &endpoint,
            &product(&v),
            v.version.as_deref().unwrap_or_default(),
            v.api_version.as_deref().unwrap_or_default(),
        ),
    }
}

/// `Docker Engine - Community`, `Podman Engine`, …: a Podman component's
/// name (Podman's platform name is the OS, e.g. `linux/amd64/debian-12`),
/// else the platform name (Debian's docker.io leaves it empty).
fn product(v: &bollard::models::SystemVersion) -> String {
    v.components
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .find(|n| n.contains("Podman"))
        .or_else(|| {
            v.platform
                .as_ref()
                .map(|p| p.name.clone())
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "Docker Engine".into())
}

/// Pass when `api` is at least [`MIN_API`].
fn api_check(id: CheckId, endpoint: &str, product: &str, version: &str, api: &str) -> Check {
    let what = format!("{product} {version} (API {api}) at {endpoint}");
    match parse_api(api) {
        Some(v) if v >= MIN_API => Check::pass(id, what),
        Some(_) => Check::fail(
            id,
            format!(
                "{what}: roprof needs API {}.{} (Docker 20.10) or newer; upgrade the engine",
                MIN_API.0, MIN_API.1
            ),
        ),
        None => Check::warn(id, format!("{what}: API version not understood")),
    }
}

/// Podman's Docker-compatible API at `sock`.
async fn podman(sock: &str) -> Check {
    let endpoint = format!("unix://{sock}");
    let docker =
        match Docker::connect_with_unix(sock, TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION) {
            Ok(d) => d,
            Err(e) => return Check::warn(CheckId::Podman, format!("{endpoint}: {e}")),
        };
    match tokio::time::timeout(TIMEOUT, docker.version()).await {
        Err(_) => Check::warn(CheckId::Podman, format!("{endpoint} did not answer")),
        Ok(Err(e)) => Check::warn(CheckId::Podman, format!("{endpoint}: {e}")),
        Ok(Ok(v)) => {
            let api = v.api_version.unwrap_or_default();
            let c = api_check(
                CheckId::Podman,
                &endpoint,
                "Podman",
                &v.version.unwrap_or_default(),
                &api,
            );
            // Present and fine, but not what roprof uses unless asked.
            Check {
                detail: format!("{}; roprof uses it with DOCKER_HOST={endpoint}", c.detail),
                ..c
            }
        }
    }
}

fn one_line(e: &dyn std::error::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn api_versions() {
        assert_eq!(parse_api("1.41"), Some((1, 41)));
        assert_eq!(parse_api("1.9"), Some((1, 9)));
        assert_eq!(parse_api("x"), None);
        assert!(parse_api("1.9").unwrap() < MIN_API);
        let ok = api_check(CheckId::Engine, "unix:///s", "Docker", "20.10.24", "1.41");
        assert_eq!(ok.status, Status::Pass);
        assert_eq!(ok.detail, "Docker 20.10.24 (API 1.41) at unix:///s");
        let old = api_check(CheckId::Engine, "unix:///s", "Docker", "19.03", "1.40");
        assert_eq!(old.status, Status::Fail);
        assert!(old.detail.contains("needs API 1.41"), "{}", old.detail);
    }

    #[test]
    fn product_names() {
        use bollard::models::{SystemVersion, SystemVersionComponents};
        let component = |name: &str| SystemVersionComponents {
            name: name.into(),
            ..Default::default()
        };
        let mut v = SystemVersion {
            components: Some(vec![component("Engine"), component("containerd")]),
            ..Default::default()
        };
        assert_eq!(product(&v), "Docker Engine");
        v.components = Some(vec![component("Podman Engine")]);
        assert_eq!(product(&v), "Podman Engine");
        v.platform = Some(bollard::models::SystemVersionPlatform {
            name: "linux/amd64/debian-12".into(),
        });
        assert_eq!(product(&v), "Podman Engine", "not Podman's OS name");
    }
}
