//! Which engine socket roprof talks to: `DOCKER_HOST`, else Docker's
//! socket, else Podman's when it is the only one there.

use std::path::{Path, PathBuf};

/// Docker's default socket.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// Rootful Podman's API socket (`podman system service`, `podman.socket`).
pub const PODMAN_SOCKET: &str = "/run/podman/podman.sock";

/// The endpoint [`super::Engine::connect`] uses: `DOCKER_HOST`; else Docker's
/// socket; else, when only Podman's exists, Podman's.
#[must_use]
pub fn endpoint() -> String {
    choose_endpoint(
        std::env::var("DOCKER_HOST").ok(),
        Path::new(DOCKER_SOCKET).exists(),
        Path::new(PODMAN_SOCKET).exists(),
    )
}

fn choose_endpoint(docker_host: Option<String>, docker_sock: bool, podman_sock: bool) -> String {
    match docker_host.filter(|h| !h.is_empty()) {
        Some(h) => h,
        None if !docker_sock && podman_sock => format!("unix://{PODMAN_SOCKET}"),
        None => format!("unix://{DOCKER_SOCKET}"),
    }
}

/// The socket path of a `unix://` endpoint.
pub(super) fn unix_socket(endpoint: &str) -> Option<PathBuf> {
    endpoint
        .strip_prefix("unix://")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_docker_host_then_dockers_socket_then_podmans() {
        let host = |h: &str| Some(h.to_owned());
        for (docker_host, docker_sock, podman_sock, want) in [
            (
                host("unix:///run/podman/podman.sock"),
                true,
                true,
                "unix:///run/podman/podman.sock",
            ),
            (
                host("tcp://10.0.0.1:2375"),
                true,
                false,
                "tcp://10.0.0.1:2375",
            ),
            (None, true, true, "unix:///var/run/docker.sock"),
            (None, false, true, "unix:///run/podman/podman.sock"),
            (host(""), false, true, "unix:///run/podman/podman.sock"),
            (None, false, false, "unix:///var/run/docker.sock"),
        ] {
            assert_eq!(
                choose_endpoint(docker_host.clone(), docker_sock, podman_sock),
                want,
                "DOCKER_HOST={docker_host:?}, docker.sock {docker_sock}, podman.sock {podman_sock}"
            );
        }
        assert_eq!(
            unix_socket("unix:///run/podman/podman.sock"),
            Some(PathBuf::from("/run/podman/podman.sock"))
        );
        assert_eq!(unix_socket("tcp://h:2375"), None);
    }
}
