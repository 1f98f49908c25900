//! Replicas: containers of one workload are merged into one plan.
//!
//! A workload is keyed by labels the orchestrator puts on every replica:
//! - Compose: `com.docker.compose.project` + `com.docker.compose.service`
//!   → `compose-<project>-<service>`.
//! - Kubernetes (CRI labels on the container): `io.kubernetes.pod.namespace`,
//!   the owner derived from `io.kubernetes.pod.name`, and
//!   `io.kubernetes.container.name` → `k8s-<namespace>-<owner>-<container>`.
//!   The CRI does not put the pod's owner on the container, so it is the
//!   pod name without the suffixes the controllers add: a Deployment's
//!   `-<pod-template-hash>-<5 chars>`, a `DaemonSet`'s or Job's `-<5 chars>`,
//!   a `StatefulSet`'s `-<ordinal>`. A bare pod is its own workload.

use std::collections::BTreeMap;

use crate::model::PathObservation;

/// Compose project label.
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
/// Compose service label.
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub use crate::runtime::containerd::{K8S_CONTAINER, K8S_NAMESPACE, K8S_POD};

/// The workload a container is a replica of, as a directory name under
/// `-o DIR`; `None` for a container that belongs to none.
#[must_use]
pub fn key(labels: &BTreeMap<String, String>) -> Option<String> {
    if let (Some(p), Some(s)) = (labels.get(COMPOSE_PROJECT), labels.get(COMPOSE_SERVICE)) {
        return Some(dir_name(&format!("compose-{p}-{s}")));
    }
    let ns = labels.get(K8S_NAMESPACE)?;
    let pod = labels.get(K8S_POD)?;
    let container = labels.get(K8S_CONTAINER)?;
    Some(dir_name(&format!("k8s-{ns}-{}-{container}", owner(pod))))
}

/// Characters Kubernetes uses for generated name suffixes
/// (`k8s.io/apimachinery/pkg/util/rand`: no vowels, no 0/1/3).
const K8S_ALNUM: &str = "bcdfghjklmnpqrstvwxz2456789";

fn generated(s: &str, lens: std::ops::RangeInclusive<usize>) -> bool {
    lens.contains(&s.len()) && s.chars().all(|c| K8S_ALNUM.contains(c))
}

/// The pod's owner, from its name (see the module docs).
#[must_use]
pub fn owner(pod: &str) -> &str {
    let Some((rest, last)) = pod.rsplit_once('-') else {
        return pod;
    };
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        // StatefulSet ordinal.
        return rest;
    }
    if !generated(last, 5..=5) {
        return pod;
    }
    // Deployment: the ReplicaSet's pod-template-hash before it.
    match rest.rsplit_once('-') {
        Some((deploy, hash)) if generated(hash, 6..=10) => deploy,
        _ => rest,
    }
}

/// A name safe as one directory: `/`, NUL and leading dots replaced.
#[must_use]
pub fn dir_name(s: &str) -> String {
    let mut out: String = s
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// Merges the observations of replicas into one set: per path, the
/// operations' counts add up, sizes take the largest replica's, flags are
/// set when any replica set them, the first process is the first replica's
/// and the last one the last replica's ([`PathObservation::union`]).
#[must_use]
pub fn merge(replicas: &[&[PathObservation]]) -> Vec<PathObservation> {
    PathObservation::union(replicas)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{CPath, ErrorCounts, Op, OpStats};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn workload_keys() {
        assert_eq!(
            key(&labels(&[
                (COMPOSE_PROJECT, "shop"),
                (COMPOSE_SERVICE, "web")
            ]))
            .as_deref(),
            Some("compose-shop-web")
        );
        let k8s = |pod: &str| {
            key(&labels(&[
                (K8S_NAMESPACE, "prod"),
                (K8S_POD, pod),
                (K8S_CONTAINER, "nginx"),
            ]))
        };
        assert_eq!(
            k8s("web-7d4b9c8f6d-x2v9q").as_deref(),
            Some("k8s-prod-web-nginx")
        );
        assert_eq!(k8s("web-7d4b9c8f6d-bq5zt"), k8s("web-7d4b9c8f6d-x2v9q"));
        assert_eq!(k8s("agent-k5t8r").as_deref(), Some("k8s-prod-agent-nginx"));
        assert_eq!(k8s("db-0").as_deref(), Some("k8s-prod-db-nginx"));
        assert_eq!(k8s("db-1"), k8s("db-0"));
        assert_eq!(
            k8s("standalone").as_deref(),
            Some("k8s-prod-standalone-nginx")
        );
        assert_eq!(key(&labels(&[("app", "x")])), None);
        assert_eq!(
            key(&labels(&[
                (COMPOSE_PROJECT, "a/b"),
                (COMPOSE_SERVICE, "..")
            ]))
            .as_deref(),
            Some("compose-a_b-..")
        );
        assert_eq!(dir_name(".."), "_..");
        assert_eq!(dir_name("/web"), "web");
    }

    fn obs(path: &str, ok: u64, size: u64) -> PathObservation {
        let mut o = PathObservation {
            path: CPath::from(path),
            max_size: size,
            ..Default::default()
        };
        o.ops.insert(
            Op::Create,
            OpStats {
                ok,
                errors: ErrorCounts::default(),
            },
        );
        o
    }

    #[test]
    fn merge_adds_counts_and_keeps_every_path() {
        let a = [obs("/tmp/a", 1, 10), obs("/var/log/x", 2, 5)];
        let b = [obs("/tmp/a", 3, 40), obs("/var/cache/y", 1, 1)];
        let m = merge(&[&a, &b]);
        let got: Vec<(String, u64, u64)> = m
            .iter()
            .map(|o| (o.path.display(), o.ops[&Op::Create].ok, o.max_size))
            .collect();
        assert_eq!(
            got,
            [
                ("/tmp/a".to_owned(), 4, 40),
                ("/var/cache/y".to_owned(), 1, 1),
                ("/var/log/x".to_owned(), 2, 5),
            ]
        );
    }
}
