//! One container of a pod template as the kubelet hands it to the runtime:
//! `command` replaces the image's entrypoint and drops its CMD, `args`
//! replace CMD, `$(VAR)` references are expanded from the container's own
//! variables, literal `env` values are set (`valueFrom`/`envFrom` are
//! reported as not reproduced), `workingDir`, `runAsUser`/`runAsGroup`
//! (container over pod), `fsGroup` and `supplementalGroups` as extra
//! groups, `runAsNonRoot` refused as the kubelet refuses it, the kubelet's
//! default of no seccomp profile, and initContainers run in order, each to
//! completion, before the app container is created.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::{Container, PodSecurityContext, SecurityContext};

use super::{
    KubeError, Manifest, Workload,
    volumes::{PodVolumes, quantity_bytes},
};
use crate::{
    environment::ContainerEnv,
    model::{EnvVar, RunOptions},
    runtime::{ContainerSpec, Engine},
    session::interrupt,
};

/// Longest an initContainer may run.
const INIT_TIMEOUT: Duration = Duration::from_mins(10);

/// The pod, ready for its app container: volumes made (and kept until
/// this value is dropped), initContainers done.
#[derive(Debug)]
pub struct PodRun {
    /// Host directories of the volumes.
    pub volumes: PodVolumes,
    /// Image of the app container.
    pub image: String,
    /// Its run options (volumes as `-v` binds), as the report records them.
    pub run: RunOptions,
    /// Its environment, values included (never written).
    pub env: ContainerEnv,
    /// `readOnlyRootFilesystem: true`.
    pub read_only: bool,
    /// What is not reproduced, for stderr and the report's notes.
    pub notes: Vec<String>,
}

/// One translated container.
struct Translated {
    run: RunOptions,
    env: ContainerEnv,
    read_only: bool,
}

/// Makes `w`'s volumes, runs its initContainers to completion and
/// translates container `c`. Every image must be present locally (the
/// error names the line of the missing one).
pub async fn prepare(
    engine: &Engine,
    manifest: &Manifest,
    w: &Workload,
    c: &Container,
    quiet: bool,
) -> Result<PodRun, KubeError> {
    let inits = w.spec.init_containers.clone().unwrap_or_default();
    for x in inits.iter().chain(std::iter::once(c)) {
        check_image(engine, manifest, w, x).await?;
    }
    let volumes = PodVolumes::make(manifest, w)?;
    let mut notes = Vec::new();
    for (i, init) in inits.iter().enumerate() {
        let t = translate(engine, manifest, w, init, &volumes, &mut notes).await?;
        if !quiet {
            eprintln!(
                "roprof: running initContainer {} ({}/{})",
                init.name,
                i + 1,
                inits.len()
            );
        }
        run_to_completion(engine, init, t).await?;
    }
    let t = translate(engine, manifest, w, c, &volumes, &mut notes).await?;
    Ok(PodRun {
        volumes,
        image: c.image.clone().unwrap_or_default(),
        run: t.run,
        env: t.env,
        read_only: t.read_only,
        notes,
    })
}

async fn check_image(
    engine: &Engine,
    manifest: &Manifest,
    w: &Workload,
    c: &Container,
) -> Result<(), KubeError> {
    let hints = [&format!("name: {}", c.name) as &str, "image:"];
    let key = format!("container {}: image", c.name);
    let Some(image) = c.image.as_deref().filter(|i| !i.is_empty()) else {
        return Err(manifest.error_at(w, &hints, key, "no image".into()));
    };
    if engine.has_image(image).await? {
        return Ok(());
    }
    Err(manifest.error_at(
        w,
        &hints,
        key,
        format!(
            "image `{image}` is not present locally: roprof runs the manifest with local images \
             only (build it, or `docker pull {image}`, first)"
        ),
    ))
}

/// Kubernetes' `$(VAR)` expansion: `$$` is a literal `$`, a reference to
/// an unknown variable stays as written.
#[must_use]
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(')
            && let Some(end) = r.find(')')
        {
            let name = &r[..end];
            if let Some(v) = vars.get(name) {
                out.push_str(v);
            } else {
                out.push_str("$(");
                out.push_str(name);
                out.push(')');
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

async fn translate(
    engine: &Engine,
    manifest: &Manifest,
    w: &Workload,
    c: &Container,
    volumes: &PodVolumes,
    notes: &mut Vec<String>,
) -> Result<Translated, KubeError> {
    let image = c.image.clone().unwrap_or_default();
    let psc = w.spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let (env, vars) = environment(c, notes);
    let values = ContainerEnv::resolve(&env, &[], |_| Ok(None)).map_err(|e| {
        manifest.error_at(
            w,
            &[&format!("name: {}", c.name), "env:"],
            format!("container {}: env", c.name),
            e.to_string(),
        )
    })?;
    let command: Vec<String> = c
        .command
        .iter()
        .flatten()
        .map(|s| expand(s, &vars))
        .collect();
    let args: Vec<String> = c.args.iter().flatten().map(|s| expand(s, &vars)).collect();
    let (entrypoint, cmd) = match command.split_first() {
        Some((first, rest)) => (
            Some(first.clone()),
            rest.iter().chain(&args).cloned().collect(),
        ),
        None => (None, args),
    };
    let user = identity(engine, manifest, w, c, &sc, &psc, &image).await?;
    let security_opt = security_opts(c, &sc, &psc, notes);
    let memory = c
        .resources
        .as_ref()
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.get("memory"))
        .and_then(|q| quantity_bytes(&q.0))
        .map(|b| b.to_string());
    let group_add = psc
        .fs_group
        .iter()
        .chain(psc.supplemental_groups.iter().flatten())
        .map(ToString::to_string)
        .collect();
    let mut run = RunOptions {
        env,
        volumes: volumes.binds(manifest, w, c)?,
        user,
        workdir: c.working_dir.clone().filter(|d| !d.is_empty()),
        entrypoint,
        cap_add: sc
            .capabilities
            .as_ref()
            .and_then(|x| x.add.clone())
            .unwrap_or_default(),
        security_opt,
        memory,
        group_add,
        command: cmd,
        ..RunOptions::default()
    };
    run.env_values = crate::model::EnvValues::Revealed;
    Ok(Translated {
        run,
        env: values,
        read_only: sc.read_only_root_filesystem == Some(true),
    })
}

/// The literal variables in order (each value may refer to the ones
/// before it), and their values for `$(VAR)` in command and args;
/// `valueFrom` and `envFrom` are noted as not reproduced.
fn environment(c: &Container, notes: &mut Vec<String>) -> (Vec<EnvVar>, BTreeMap<String, String>) {
    // Environment, in order: each value may refer to the ones before it.
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut env = Vec::new();
    if c.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        notes.push(format!(
            "container {}: envFrom is not reproduced; the container ran without those variables",
            c.name
        ));
    }
    for e in c.env.iter().flatten() {
        if e.value_from.is_some() {
            notes.push(format!(
                "container {}: env {} comes from valueFrom, which is not reproduced; the \
                 container ran without it",
                c.name, e.name
            ));
            continue;
        }
        let value = expand(e.value.as_deref().unwrap_or_default(), &vars);
        vars.insert(e.name.clone(), value.clone());
        env.push(EnvVar {
            name: e.name.clone(),
            value: Some(value),
        });
    }
    (env, vars)
}

/// `--security-opt` values: no-new-privileges, and the kubelet's default
/// of no seccomp profile.
fn security_opts(
    c: &Container,
    sc: &SecurityContext,
    psc: &PodSecurityContext,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut security_opt = Vec::new();
    if sc.allow_privilege_escalation == Some(false) {
        security_opt.push("no-new-privileges".to_owned());
    }
    // The kubelet runs containers unconfined unless a profile is asked
    // for; RuntimeDefault is the engine's default profile.
    match sc
        .seccomp_profile
        .as_ref()
        .or(psc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str())
    {
        Some("RuntimeDefault") => {}
        None | Some("Unconfined") => security_opt.push("seccomp=unconfined".into()),
        Some(other) => notes.push(format!(
            "container {}: seccompProfile {other} is not reproduced; it ran with the engine's default",
            c.name
        )),
    }
    if sc
        .capabilities
        .as_ref()
        .and_then(|x| x.drop.as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        notes.push(format!(
            "container {}: capabilities.drop is not reproduced",
            c.name
        ));
    }
    security_opt
}

/// `uid[:gid]` from `runAsUser`/`runAsGroup` (container over pod), after
/// the kubelet's `runAsNonRoot` check.
async fn identity(
    engine: &Engine,
    manifest: &Manifest,
    w: &Workload,
    c: &Container,
    sc: &SecurityContext,
    psc: &PodSecurityContext,
    image: &str,
) -> Result<Option<String>, KubeError> {
    let uid = sc.run_as_user.or(psc.run_as_user);
    let gid = sc.run_as_group.or(psc.run_as_group);
    let refuse = |why: String| {
        manifest.error_at(
            w,
            &[&format!("name: {}", c.name)],
            format!("container {}: securityContext.runAsNonRoot", c.name),
            format!("{why}: the kubelet refuses to start it (CreateContainerConfigError)"),
        )
    };
    let needs_image_user = uid.is_none()
        && (gid.is_some() || sc.run_as_non_root.or(psc.run_as_non_root) == Some(true));
    let image_user = if needs_image_user {
        engine.image_config(image).await?.user
    } else {
        String::new()
    };
    if sc.run_as_non_root.or(psc.run_as_non_root) == Some(true) {
        match uid {
            Some(0) => return Err(refuse("runAsNonRoot with runAsUser 0".into())),
            Some(_) => {}
            None => {
                let name = image_user.split(':').next().unwrap_or_default();
                match name.parse::<u32>() {
                    Ok(0) => return Err(refuse("runAsNonRoot and the image runs as root".into())),
                    Ok(_) => {}
                    Err(_) if name.is_empty() || name == "root" => {
                        return Err(refuse("runAsNonRoot and the image runs as root".into()));
                    }
                    Err(_) => {
                        return Err(refuse(format!(
                            "runAsNonRoot and the image has non-numeric user ({name}), which \
                             cannot be verified as non-root"
                        )));
                    }
                }
            }
        }
    }
    Ok(match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => {
            let name = image_user.split(':').next().unwrap_or_default();
            Some(format!("{}:{g}", if name.is_empty() { "0" } else { name }))
        }
        (None, None) => None,
    })
}

/// Runs an initContainer to completion and removes it; a non-zero exit is
/// [`KubeError::Init`] with its last log lines (variable values withheld).
async fn run_to_completion(engine: &Engine, c: &Container, t: Translated) -> Result<(), KubeError> {
    let spec = ContainerSpec {
        image: c.image.clone().unwrap_or_default(),
        run: t.run,
        env: t.env.clone(),
        read_only: t.read_only,
        ..ContainerSpec::default()
    };
    let id = engine.create(&spec).await?;
    interrupt::register(&id);
    let res = wait_exit(engine, &id).await;
    let res = match res {
        Ok(0) => Ok(()),
        Ok(code) => {
            let mut logs = engine.logs_tail(&id, 20).await.join("\n");
            for (name, value) in t.env.values() {
                if value.len() >= 4 {
                    logs = logs.replace(value, &format!("<{name} withheld>"));
                }
            }
            Err(KubeError::Init {
                name: c.name.clone(),
                code,
                logs,
            })
        }
        Err(e) => Err(e),
    };
    if let Err(e) = engine.remove(&id).await {
        eprintln!("roprof: {e}");
    } else {
        interrupt::forget(&id);
    }
    res
}

async fn wait_exit(engine: &Engine, id: &str) -> Result<i64, KubeError> {
    engine.start(id).await?;
    let deadline = std::time::Instant::now() + INIT_TIMEOUT;
    loop {
        interrupt::check()?;
        let s = engine.state(id).await?;
        if !s.running {
            return Ok(s.exit_code.unwrap_or(-1));
        }
        if std::time::Instant::now() > deadline {
            return Ok(-1);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn dollar_references_expand_like_kubernetes() {
        let vars = [
            ("A".to_owned(), "x".to_owned()),
            ("B".to_owned(), "y z".to_owned()),
        ]
        .into_iter()
        .collect();
        for (input, want) in [
            ("$(A)", "x"),
            ("-D$(A)/$(B)", "-Dx/y z"),
            ("$$(A)", "$(A)"),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("cost $5", "cost $5"),
            ("$(A", "$(A"),
        ] {
            assert_eq!(expand(input, &vars), want, "expanding {input:?}");
        }
    }
}
