//! A service's surroundings while it is profiled, started the way Compose
//! starts them: a user-defined bridge network `<project>_default` where
//! every container answers to its service name, and the service's
//! dependencies (`depends_on`, transitively) started first, untraced, each
//! once the services it depends on are started, healthy or completed as
//! its `condition:` asks.
//!
//! Each round (one profiled service) starts its dependencies afresh with
//! fresh named volumes, so a database initialises as on a new host; all of
//! it is removed when the round ends, also after an error or a signal
//! (dependency containers are registered with [`interrupt`]).

use std::time::{Duration, Instant};

use super::{
    Project, Service,
    parse::{Condition, Volume},
};
use crate::{
    environment::{ContainerEnv, EnvError},
    model::RunOptions,
    request::RunRequest,
    runtime::{ContainerSpec, Engine, Health, RuntimeError, ServiceExtras},
    session::{Context, SessionError, interrupt},
};

/// Errors starting a service's dependencies.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The engine refused something.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A signal, or the session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The environment of a service.
    #[error("services.{service}: {source}")]
    Env {
        /// Service.
        service: String,
        /// Cause.
        source: EnvError,
    },
    /// A dependency did not become ready.
    #[error("services.{service} never became {what}: {why}{logs}")]
    NotReady {
        /// The dependency.
        service: String,
        /// `healthy`, `completed successfully`.
        what: &'static str,
        /// What happened instead.
        why: String,
        /// Its last log lines.
        logs: String,
    },
    /// `depends_on` loops.
    #[error("services.{0}.depends_on: the dependencies form a cycle")]
    Cycle(String),
}

/// The project's network and the containers and volumes of the round.
pub struct ProjectRun<'p> {
    project: &'p Project,
    engine: Engine,
    /// Prefix of everything created: `<project>-roprof<pid>`.
    pub prefix: String,
    /// The network.
    pub network: String,
    volumes: Vec<String>,
    containers: Vec<(String, String)>,
}

impl<'p> ProjectRun<'p> {
    /// Creates the project network.
    pub async fn start(engine: &Engine, project: &'p Project) -> Result<Self, ProjectError> {
        let prefix = format!("{}-roprof{}", project.name, std::process::id());
        let network = format!("{prefix}_default");
        engine.create_network(&network).await?;
        Ok(ProjectRun {
            project,
            engine: engine.clone(),
            prefix,
            network,
            volumes: Vec::new(),
            containers: Vec::new(),
        })
    }

    /// The service's run options (env values withheld unless `reveal`),
    /// its environment with values, and what has no `docker run` flag.
    pub fn options(
        &mut self,
        svc: &Service,
        reveal: bool,
    ) -> Result<(RunOptions, ContainerEnv, ServiceExtras), ProjectError> {
        let mut volume = Vec::new();
        for (i, v) in svc.volumes.iter().enumerate() {
            let ro = |ro: bool| if ro { ":ro" } else { "" };
            volume.push(match v {
                Volume::Bind {
                    source,
                    target,
                    ro: r,
                } => format!("{source}:{target}{}", ro(*r)),
                Volume::Named {
                    name,
                    target,
                    ro: r,
                    external,
                } => {
                    let declared = self
                        .project
                        .doc
                        .get("volumes")
                        .and_then(|v| v.get(name.as_str()));
                    let external = *external
                        || declared
                            .and_then(|d| d.get("external"))
                            .is_some_and(|e| e.as_bool() == Some(true));
                    let full = if external {
                        name.clone()
                    } else {
                        let full = format!("{}_{name}", self.prefix);
                        self.volumes.push(full.clone());
                        full
                    };
                    format!("{full}:{target}{}", ro(*r))
                }
                Volume::Anonymous { target } => {
                    let full = format!("{}_{}_anon{i}", self.prefix, svc.name);
                    self.volumes.push(full.clone());
                    format!("{full}:{target}")
                }
            });
        }
        let args = RunRequest {
            env: svc.environment.clone(),
            env_file: svc.env_file.clone(),
            volume,
            tmpfs: svc.tmpfs.clone(),
            publish: svc.ports.clone(),
            user: svc.user.clone(),
            workdir: svc.working_dir.clone(),
            entrypoint: None,
            network: Some(self.network.clone()),
            cap_add: svc.cap_add.clone(),
            security_opt: svc.security_opt.clone(),
            memory: svc.mem_limit.clone(),
        };
        let (mut opts, env) =
            args.resolve(&svc.command, reveal)
                .map_err(|source| ProjectError::Env {
                    service: svc.name.clone(),
                    source,
                })?;
        // The report shows the entrypoint's first word; the engine gets all.
        opts.entrypoint = svc.entrypoint.as_ref().map(|e| e.join(" "));
        let extras = ServiceExtras {
            network_aliases: vec![svc.name.clone()],
            healthcheck: svc.healthcheck.clone(),
            entrypoint: svc.entrypoint.clone(),
            stop_signal: svc.stop_signal.clone(),
        };
        Ok((opts, env, extras))
    }

    /// `target`'s dependencies, each after its own.
    pub fn dependencies(&self, target: &Service) -> Result<Vec<&'p Service>, ProjectError> {
        fn visit<'s>(
            all: &'s [Service],
            name: &str,
            path: &mut Vec<String>,
            out: &mut Vec<&'s Service>,
        ) -> Result<(), ProjectError> {
            if out.iter().any(|s| s.name == name) {
                return Ok(());
            }
            if path.iter().any(|p| p == name) {
                return Err(ProjectError::Cycle(name.to_owned()));
            }
            let Some(svc) = all.iter().find(|s| s.name == name) else {
                return Ok(());
            };
            path.push(name.to_owned());
            for (d, _) in &svc.depends_on {
                visit(all, d, path, out)?;
            }
            path.pop();
            out.push(svc);
            Ok(())
        }
        let mut out = Vec::new();
        visit(
            &self.project.services,
            &target.name,
            &mut Vec::new(),
            &mut out,
        )?;
        out.retain(|s| s.name != target.name);
        Ok(out)
    }

    /// Starts `target`'s dependencies in order (untraced) and waits for
    /// what `target` waits for.
    pub async fn start_dependencies(&mut self, target: &Service) -> Result<(), ProjectError> {
        for dep in self.dependencies(target)? {
            self.wait_for(dep).await?;
            let (run, env, extras) = self.options(dep, false)?;
            let spec = ContainerSpec {
                image: dep.image.clone(),
                run,
                env,
                name: Some(format!("{}_{}_1", self.prefix, dep.name)),
                extras,
                ..ContainerSpec::default()
            };
            interrupt::check()?;
            let id = self.engine.create(&spec).await?;
            interrupt::register(&id);
            self.containers.push((dep.name.clone(), id.clone()));
            self.engine.start(&id).await?;
            eprintln!(
                "roprof: services.{}: started (dependency, not traced)",
                dep.name
            );
        }
        self.wait_for(target).await
    }

    /// Waits until the services `svc` depends on meet their conditions.
    async fn wait_for(&self, svc: &Service) -> Result<(), ProjectError> {
        for (name, cond) in &svc.depends_on {
            let Some((_, id)) = self.containers.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let dep = self.project.services.iter().find(|s| &s.name == name);
            let limit = dep
                .and_then(|d| d.healthcheck.as_ref())
                .map_or(Duration::from_mins(2), health_limit);
            if *cond != Condition::Started {
                self.until(name, id, *cond, limit).await?;
            }
        }
        Ok(())
    }

    async fn not_ready(
        &self,
        name: &str,
        id: &str,
        what: &'static str,
        why: String,
    ) -> ProjectError {
        let logs = self.engine.logs_tail(id, 10).await;
        ProjectError::NotReady {
            service: name.to_owned(),
            what,
            why,
            logs: if logs.is_empty() {
                String::new()
            } else {
                format!("; its last log lines:\n  {}", logs.join("\n  "))
            },
        }
    }

    /// Polls dependency `name` until `cond` holds (`Ok`), can no longer
    /// hold, or `limit` passes (an error naming why, with its last logs).
    async fn until(
        &self,
        name: &str,
        id: &str,
        cond: Condition,
        limit: Duration,
    ) -> Result<(), ProjectError> {
        let wanted = if cond == Condition::Healthy {
            "healthy"
        } else {
            "completed successfully"
        };
        let deadline = Instant::now() + limit;
        loop {
            interrupt::check()?;
            let state = self.engine.state(id).await?;
            let verdict = match cond {
                Condition::Started => Ok(true),
                Condition::Healthy if !state.running => Err(format!(
                    "it exited with code {}",
                    state.exit_code.unwrap_or(-1)
                )),
                Condition::Healthy => match self.engine.health(id).await? {
                    Health::Healthy => Ok(true),
                    Health::None => {
                        Err("it has no healthcheck (condition: service_healthy)".to_owned())
                    }
                    Health::Unhealthy => Err("its healthcheck failed".to_owned()),
                    Health::Starting => Ok(false),
                },
                Condition::CompletedSuccessfully => match state.exit_code {
                    Some(0) if !state.running => Ok(true),
                    Some(c) if !state.running => Err(format!("it exited with code {c}")),
                    _ => Ok(false),
                },
            };
            let why = match verdict {
                Ok(true) => return Ok(()),
                Err(why) => why,
                Ok(false) if Instant::now() > deadline => {
                    let still = if cond == Condition::Healthy {
                        "still starting"
                    } else {
                        "still running"
                    };
                    format!("{still} after {}s", limit.as_secs())
                }
                Ok(false) => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            return Err(self.not_ready(name, id, wanted, why).await);
        }
    }

    /// Ends the round: removes its containers (the profiled ones included)
    /// and volumes.
    pub async fn end_round(&mut self, ctx: &mut Context) {
        ctx.remove_now().await;
        for (_, id) in self.containers.drain(..) {
            if let Err(e) = self.engine.remove(&id).await {
                eprintln!("roprof: {e}");
            }
            interrupt::forget(&id);
        }
        self.volumes.sort();
        self.volumes.dedup();
        for v in self.volumes.drain(..) {
            if let Err(e) = self.engine.remove_volume(&v).await {
                eprintln!("roprof: {e}");
            }
        }
    }

    /// Removes the network (after the last round).
    pub async fn finish(mut self, ctx: &mut Context) {
        self.end_round(ctx).await;
        if let Err(e) = self.engine.remove_network(&self.network).await {
            eprintln!("roprof: {e}");
        }
    }
}

/// How long a healthcheck may take to pass: its start period and all its
/// retries (Docker's defaults: 30 s interval and timeout, 3 retries).
fn health_limit(h: &bollard::models::HealthConfig) -> Duration {
    let secs = |ns: Option<i64>, default: u64| {
        ns.and_then(|n| u64::try_from(n).ok())
            .filter(|n| *n > 0)
            .map_or(default, |n| n.div_ceil(1_000_000_000))
    };
    let retries = h
        .retries
        .and_then(|r| u64::try_from(r).ok())
        .filter(|r| *r > 0)
        .unwrap_or(3);
    let total =
        secs(h.start_period, 0) + (secs(h.interval, 30) + secs(h.timeout, 30)) * (retries + 1);
    Duration::from_secs(total.max(10))
}
