//! Podman for the privileged tests: Debian's podman, its API service on
//! the rootful socket (Docker-compatible; roprof talks to it with
//! `DOCKER_HOST`), the one containers.conf setting this kind of host needs,
//! and the fixture images copied over from Docker's store.
//!
//! Everything is checked first and done only when missing, so a second run
//! costs a few `podman` calls.

use std::{
    fs,
    os::unix::net::UnixStream,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cmd, images, step};

/// The API socket the tests point `DOCKER_HOST` at.
pub const SOCKET: &str = "/run/podman/podman.sock";
/// Podman's configuration file for containers (rootful).
const CONTAINERS_CONF: &str = "/etc/containers/containers.conf";
/// Where the service started by setup logs.
const SERVICE_LOG: &str = "/var/log/roprof-podman.log";
/// How long to wait for a freshly started service to answer.
const SERVICE_WAIT: Duration = Duration::from_secs(30);

/// Installs podman, configures it, starts its API service and loads the
/// fixture images.
pub fn setup() -> Result<()> {
    step("podman", ensure_podman)?;
    step(&format!("podman {CONTAINERS_CONF}"), ensure_containers_conf)?;
    step(&format!("podman API service at {SOCKET}"), ensure_service)?;
    for image in images::default_images() {
        step(&format!("podman image {image}"), || ensure_image(&image))?;
    }
    Ok(())
}

fn ensure_podman() -> Result<String> {
    if cmd::which("podman").is_some() {
        return Ok("ok (already present)".into());
    }
    cmd::apt_install_no_recommends(
        &["podman"],
        "the privileged tests that run roprof against Podman",
    )?;
    if cmd::which("podman").is_none() {
        bail!("installed podman but `podman` is still missing");
    }
    Ok("installed podman (without recommends)".into())
}

/// Podman's default `nofile` ulimit (from containers.conf, above this
/// host's hard limit) cannot be set without `CAP_SYS_RESOURCE`, and every
/// container then fails to start: `default_ulimits = []` makes containers
/// inherit the service's limits, as Docker's do. Other settings in the
/// file are kept.
fn ensure_containers_conf() -> Result<String> {
    let path = Path::new(CONTAINERS_CONF);
    let old = match fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {CONTAINERS_CONF}")),
    };
    let new = with_empty_ulimits(old.as_deref().unwrap_or_default())
        .with_context(|| format!("{CONTAINERS_CONF} is not valid TOML"))?;
    if old.as_deref() == Some(new.as_str()) {
        return Ok("ok (default_ulimits = [] already set)".into());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, &new).with_context(|| format!("writing {CONTAINERS_CONF}"))?;
    let kept = if old.is_some() {
        "other settings kept"
    } else {
        "new file"
    };
    let running = if service_answers() {
        "; the Podman service already running keeps the old setting: restart it"
    } else {
        ""
    };
    Ok(format!(
        "set default_ulimits = [] in [containers] ({kept}){running}"
    ))
}

/// `text` with `[containers] default_ulimits = []`, everything else as it
/// was (comments and layout included).
fn with_empty_ulimits(text: &str) -> Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    let containers = doc
        .entry("containers")
        .or_insert_with(toml_edit::table)
        .as_table_mut()
        .context("`containers` is not a table")?;
    let empty = containers
        .get("default_ulimits")
        .and_then(toml_edit::Item::as_array)
        .is_some_and(toml_edit::Array::is_empty);
    if !empty {
        containers["default_ulimits"] = toml_edit::value(toml_edit::Array::new());
    }
    Ok(doc.to_string())
}

/// Whether the API service answers `GET /_ping` on the socket.
fn service_answers() -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut s) = UnixStream::connect(SOCKET) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}

fn ensure_service() -> Result<String> {
    if service_answers() {
        return Ok("ok (already running)".into());
    }
    if !cmd::is_root() {
        bail!(
            "the Podman API service is not running and only root can start it; run (as root) `podman system service --time=0 unix://{SOCKET} &` and try again"
        );
    }
    let dir = Path::new(SOCKET)
        .parent()
        .context("socket has a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(SERVICE_LOG)
        .with_context(|| format!("opening {SERVICE_LOG}"))?;
    let log_err = log.try_clone().context("duplicating the log handle")?;
    let url = format!("unix://{SOCKET}");
    eprintln!("  $ setsid podman system service --time=0 {url} >>{SERVICE_LOG} 2>&1 &");
    // Its own session, so it outlives xtask (there is no systemd to own
    // it), as dockerd does.
    let mut child = Command::new("setsid")
        .args(["podman", "system", "service", "--time=0", &url])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .context("could not start `setsid podman system service`")?;
    let started = Instant::now();
    while started.elapsed() < SERVICE_WAIT {
        if service_answers() {
            return Ok(format!("started (log: {SERVICE_LOG})"));
        }
        if let Some(status) = child.try_wait().context("waiting for podman")? {
            bail!("`podman system service` exited ({status}) before answering; see {SERVICE_LOG}");
        }
        thread::sleep(Duration::from_millis(300));
    }
    bail!(
        "the Podman API service did not answer within {} s; see {SERVICE_LOG}",
        SERVICE_WAIT.as_secs()
    )
}

/// The image id Docker has for `image`.
fn docker_id(image: &str) -> Result<String> {
    cmd::stdout(&mut cmd::docker([
        "image", "inspect", "--format", "{{.Id}}", image,
    ]))
}

/// The image id Podman has for `image` (`None`: not there).
fn podman_id(image: &str) -> Option<String> {
    cmd::stdout(Command::new("podman").args(["image", "inspect", "--format", "{{.Id}}", image]))
        .ok()
        .map(|id| id.trim().trim_start_matches("sha256:").to_owned())
}

/// Copies `image` from Docker to Podman (`docker save | podman load`)
/// unless Podman has the same image id (the config digest, which a
/// save/load keeps).
fn ensure_image(image: &str) -> Result<String> {
    let want = docker_id(image)?;
    let want = want.trim_start_matches("sha256:");
    let short = &want[..want.len().min(12)];
    let had = podman_id(image);
    if had.as_deref() == Some(want) {
        return Ok(format!("ok (same id as Docker's, {short})"));
    }
    eprintln!("  $ docker save {image} | podman load");
    let mut save = cmd::docker(["save", image])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .context("could not start `docker save`")?;
    let out = save.stdout.take().context("docker save has a stdout")?;
    let load = Command::new("podman")
        .args(["load", "--quiet"])
        .stdin(out)
        .output()
        .context("could not start `podman load`")?;
    let saved = save.wait().context("waiting for docker save")?;
    if !saved.success() || !load.status.success() {
        bail!(
            "`docker save {image} | podman load` failed (save: {saved}, load: {}): {}",
            load.status,
            String::from_utf8_lossy(&load.stderr).trim()
        );
    }
    let got = podman_id(image);
    if got.as_deref() != Some(want) {
        bail!(
            "after `podman load`, {image} has id {} in Podman, not Docker's {want}",
            got.as_deref().unwrap_or("(none)")
        );
    }
    Ok(format!(
        "loaded ({}, id {short})",
        if had.is_some() {
            "outdated"
        } else {
            "was missing"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_are_emptied_and_everything_else_kept() {
        for (before, want) in [
            ("", "[containers]\ndefault_ulimits = []\n"),
            (
                "# site settings\n[engine]\nevents_logger = \"file\"\n",
                "# site settings\n[engine]\nevents_logger = \"file\"\n\n[containers]\ndefault_ulimits = []\n",
            ),
            (
                "[containers]\n# keep me\nlog_driver = \"k8s-file\"\ndefault_ulimits = [\n  \"nofile=1280:2560\",\n]\n",
                "[containers]\n# keep me\nlog_driver = \"k8s-file\"\ndefault_ulimits = []\n",
            ),
            (
                "[containers]\ndefault_ulimits = []\n",
                "[containers]\ndefault_ulimits = []\n",
            ),
        ] {
            let got = with_empty_ulimits(before).expect("valid TOML");
            assert_eq!(got, want, "from {before:?}");
            assert_eq!(
                with_empty_ulimits(&got).expect("valid TOML"),
                got,
                "a second run changes nothing"
            );
        }
        assert!(
            with_empty_ulimits("[containers\n").is_err(),
            "broken TOML is refused, not overwritten"
        );
    }
}
