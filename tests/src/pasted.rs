//! Running roprof's docker and compose outputs as a user pastes them: the
//! `docker run` line through `sh -c`, the compose file with
//! `docker-compose` (Debian's 1.29, which `cargo xtask setup` installs).
//! Each runner removes what it started (containers, anonymous and named
//! volumes) when dropped.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::{TEST_LABEL, docker, owner_label, unique_name};

/// A container started from a `docker run` line.
pub struct DockerLine {
    /// The container's name.
    pub name: String,
    volumes: Vec<String>,
}

impl Drop for DockerLine {
    fn drop(&mut self) {
        let _ = docker(["rm", "-f", "-v", self.name.as_str()]);
        remove_volumes(&self.volumes);
    }
}

fn remove_volumes(names: &[String]) {
    if !names.is_empty() {
        let mut args = vec!["volume".to_owned(), "rm".to_owned(), "-f".to_owned()];
        args.extend(names.iter().cloned());
        let _ = docker(&args);
    }
}

/// The named volumes (`-v NAME:/dst`) of a docker line.
#[must_use]
pub fn named_volumes(line: &str) -> Vec<String> {
    let words = shlex::split(line).unwrap_or_default();
    words
        .windows(2)
        .filter(|w| w[0] == "-v")
        .filter_map(|w| w[1].split_once(':').map(|(src, _)| src.to_owned()))
        .filter(|src| !src.starts_with('/'))
        .collect()
}

/// Runs the `docker run …` line of `output` (roprof's `--format docker`)
/// in a shell, detached, named and labelled for cleanup. Named volumes of
/// the line are removed first, so the run starts as on a new host.
pub fn run_docker_line(output: &str) -> Result<DockerLine, String> {
    let line = output
        .lines()
        .find(|l| l.starts_with("docker run "))
        .ok_or_else(|| format!("no `docker run` line in:\n{output}"))?;
    let name = unique_name("line");
    let volumes = named_volumes(line);
    remove_volumes(&volumes);
    let run = DockerLine {
        name: name.clone(),
        volumes,
    };
    let cmd = line.replacen(
        "docker run ",
        &format!(
            "docker run -d --name {name} --label {TEST_LABEL} --label {} ",
            owner_label()
        ),
        1,
    );
    let out = Command::new("sh")
        .args(["-c", &cmd])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("sh: {e}"))?;
    if out.status.success() {
        Ok(run)
    } else {
        Err(format!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A compose project started with `docker-compose up -d`.
pub struct ComposeProject {
    /// The project name (`-p`).
    pub name: String,
    file: PathBuf,
}

impl ComposeProject {
    fn compose(&self) -> Command {
        let mut c = Command::new("docker-compose");
        c.arg("-p").arg(&self.name).arg("-f").arg(&self.file);
        c.stdin(Stdio::null());
        c
    }

    /// The id of the service's container.
    pub fn container(&self, service: &str) -> Result<String, String> {
        let out = self
            .compose()
            .args(["ps", "-q", service])
            .output()
            .map_err(|e| format!("docker-compose ps: {e}"))?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if id.is_empty() {
            Err(format!("no container for service {service}"))
        } else {
            Ok(id)
        }
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        let _ = self
            .compose()
            .args(["down", "-v", "--remove-orphans", "-t", "5"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// [`compose_up`] with `env` added to docker-compose's environment (the
/// variables a compose file takes by name, as a user exports them).
pub fn compose_up_env(yaml: &str, env: &[(&str, &str)]) -> Result<ComposeProject, String> {
    let file = std::env::temp_dir().join(format!("{}.yaml", unique_name("roprof")));
    std::fs::write(&file, yaml).map_err(|e| format!("{}: {e}", file.display()))?;
    let p = ComposeProject {
        name: unique_name("roprof").replace('-', ""),
        file,
    };
    let out = p
        .compose()
        .envs(env.iter().copied())
        .args(["up", "-d"])
        .output()
        .map_err(|e| format!("docker-compose: {e}"))?;
    if out.status.success() {
        Ok(p)
    } else {
        Err(format!(
            "docker-compose up failed: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Writes `yaml` to a file and runs `docker-compose -p UNIQUE -f FILE up -d`
/// (panics when `docker-compose` is missing: install Debian's
/// `docker-compose`, as `cargo xtask setup` does).
pub fn compose_up(yaml: &str) -> Result<ComposeProject, String> {
    let file = std::env::temp_dir().join(format!("{}.yaml", unique_name("roprof")));
    std::fs::write(&file, yaml).map_err(|e| format!("{}: {e}", file.display()))?;
    compose_up_file(&file).map_err(|e| format!("{e}\n{yaml}"))
}

/// Runs `docker-compose -p UNIQUE -f FILE up -d` on a file in its project
/// directory (relative paths in it resolve there); the file is removed
/// with the project.
pub fn compose_up_file(file: &std::path::Path) -> Result<ComposeProject, String> {
    let name = unique_name("roprof").replace('-', "");
    let p = ComposeProject {
        name,
        file: file.to_path_buf(),
    };
    let out = p.compose().args(["up", "-d"]).output().unwrap_or_else(|e| {
        panic!(
            "expected docker-compose to run (apt-get install docker-compose, or \
                 `cargo xtask setup`): {e}"
        )
    });
    if out.status.success() {
        Ok(p)
    } else {
        Err(format!(
            "docker-compose up -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_volumes_of_a_line() {
        assert_eq!(
            named_volumes(
                "docker run --read-only -v /run -v roprof-redis-var-lib-redis-0:/var/lib/redis \
                 --tmpfs '/x:rw' img"
            ),
            ["roprof-redis-var-lib-redis-0"]
        );
    }
}
