//! What running a compose project needs from the engine besides one
//! container: a user-defined network where services find each other by
//! name, a container's health, and whether an image is present locally
//! (roprof never builds, and a compose file must not make it pull).

use std::collections::HashMap;

use bollard::{
    models::{EndpointSettings, HealthStatusEnum, NetworkCreateRequest, NetworkingConfig},
    query_parameters::InspectContainerOptions,
};

use super::{Engine, LABEL, RuntimeError, ServiceExtras, call};

/// The endpoint settings that give a container its aliases on `network`
/// (none without a network or aliases).
pub(super) fn aliases(network: Option<&str>, extras: &ServiceExtras) -> Option<NetworkingConfig> {
    let network = network?;
    if extras.network_aliases.is_empty() {
        return None;
    }
    let endpoint = EndpointSettings {
        aliases: Some(extras.network_aliases.clone()),
        ..Default::default()
    };
    Some(NetworkingConfig {
        endpoints_config: Some(HashMap::from([(network.to_owned(), endpoint)])),
    })
}

/// A container's health as the engine reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// No healthcheck.
    None,
    /// Within its start period or before the first success.
    Starting,
    /// The last checks passed.
    Healthy,
    /// The checks failed `retries` times.
    Unhealthy,
}

impl Engine {
    /// Creates a bridge network labelled as roprof's.
    pub async fn create_network(&self, name: &str) -> Result<(), RuntimeError> {
        let req = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(LABEL.to_owned(), "1".to_owned())])),
            ..Default::default()
        };
        self.docker
            .create_network(req)
            .await
            .map_err(call(format!("creating network {name}")))?;
        Ok(())
    }

    /// Removes a network (gone already is fine).
    pub async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        match self.docker.remove_network(name).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(call(format!("removing network {name}"))(e)),
        }
    }

    /// The container's health.
    pub async fn health(&self, id: &str) -> Result<Health, RuntimeError> {
        let i = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(call(format!("inspecting container {id}")))?;
        let status = i.state.and_then(|s| s.health).and_then(|h| h.status);
        Ok(match status {
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
            _ => Health::None,
        })
    }
}
