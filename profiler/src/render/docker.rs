//! `docker run --read-only …`: one shell line, quoted with `shlex`.
//! Variables are passed through by name (`-e NAME`, see [`super::env`]).
//!
//! tmpfs mounts use `--tmpfs dst:opts`, volatile seeded mounts an anonymous
//! volume `-v dst` (fresh for each container, filled from the image by
//! Docker) and persistent ones a named volume `-v name:dst`; a target
//! holding `:` or `,` (which those flags split on) goes through
//! `--mount type=…,dst=…` with the field CSV-quoted, as Docker parses it.

use super::{omission_comments, utf8_mounts, volume_name};
use crate::model::{MountKind, PlannedMount, Report};

/// The `docker run` words of the plan's mount at `target` alone
/// (`--tmpfs DST:OPTS`, `-v DST`, `-v NAME:DST`, `--mount …`), unquoted;
/// `None` when the plan has no such mount (or its target is not UTF-8).
#[must_use]
pub fn mount_words_at(report: &Report, target: &crate::model::CPath) -> Option<Vec<String>> {
    utf8_mounts(report)
        .enumerate()
        .find(|(_, (m, _))| m.target == *target)
        .map(|(i, (m, t))| mount_words(report, i, m, t))
}

/// The words of the command line, unquoted.
#[must_use]
pub fn docker_words(report: &Report) -> Vec<String> {
    let mut w: Vec<String> = vec!["docker".into(), "run".into(), "--read-only".into()];
    for (i, (m, target)) in utf8_mounts(report).enumerate() {
        w.extend(mount_words(report, i, m, target));
    }
    let r = &report.run_options;
    let pairs = |flag: &str, vals: &[String], w: &mut Vec<String>| {
        for v in vals {
            w.push(flag.to_owned());
            w.push(v.clone());
        }
    };
    w.extend(super::env::docker_words(r));
    pairs("-v", &r.volumes, &mut w);
    pairs("--tmpfs", &r.tmpfs, &mut w);
    pairs("-p", &r.publish, &mut w);
    for (flag, v) in [
        ("-u", &r.user),
        ("-w", &r.workdir),
        ("--entrypoint", &r.entrypoint),
        ("--network", &r.network),
        ("--memory", &r.memory),
        // roprof profiles without swap on top of the limit: keep it so.
        ("--memory-swap", &r.memory),
    ] {
        if let Some(v) = v {
            w.push(flag.to_owned());
            w.push(v.clone());
        }
    }
    pairs("--cap-add", &r.cap_add, &mut w);
    pairs("--group-add", &r.group_add, &mut w);
    pairs("--security-opt", &r.security_opt, &mut w);
    w.push(report.image.image.clone());
    w.extend(r.command.iter().cloned());
    w
}

/// `docker run --read-only <mounts> <user's options> IMAGE [COMMAND…]`.
///
/// Mounts whose target is not UTF-8 are left out (see
/// [`super::unrepresentable`]); words holding a NUL byte (which no path,
/// variable or argument can) are dropped rather than mangled.
#[must_use]
pub fn docker_command(report: &Report) -> String {
    let words = docker_words(report);
    match shlex::try_join(words.iter().map(String::as_str)) {
        Ok(line) => line,
        Err(_) => shlex::try_join(
            words
                .iter()
                .map(String::as_str)
                .filter(|w| !w.contains('\0')),
        )
        .unwrap_or_default(),
    }
}

/// The line preceded by `# roprof:` comments for left-out mounts and for
/// the variables to export first; only comments when there is no plan
/// ([`super::no_plan`]).
#[must_use]
pub fn docker_script_body(report: &Report) -> String {
    if let Some(none) = super::no_plan_comment(report) {
        return none;
    }
    format!(
        "{}{}{}\n",
        omission_comments(report),
        super::env::export_comment(&report.run_options),
        docker_command(report)
    )
}

fn mount_words(report: &Report, index: usize, m: &PlannedMount, target: &str) -> Vec<String> {
    let awkward = target.contains([':', ',']);
    match m.kind {
        MountKind::Tmpfs if !awkward => {
            vec![
                "--tmpfs".into(),
                format!("{target}:{}", m.options.tmpfs_options()),
            ]
        }
        MountKind::Tmpfs => {
            let mut fields = vec!["type=tmpfs".to_owned(), csv_field(&format!("dst={target}"))];
            if let Some(s) = m.options.size_bytes {
                fields.push(format!("tmpfs-size={s}"));
            }
            fields.push(format!("tmpfs-mode={:o}", m.options.mode));
            vec!["--mount".into(), fields.join(",")]
        }
        // Anonymous: a named volume would outlive the container and, seeded
        // only while empty, shadow the next image's files with a stale copy.
        MountKind::SeededVolume if awkward => vec![
            "--mount".into(),
            format!("type=volume,{}", csv_field(&format!("dst={target}"))),
        ],
        MountKind::SeededVolume => vec!["-v".into(), target.to_owned()],
        MountKind::PersistentVolume => {
            let name = volume_name(report, index, m);
            if awkward {
                vec![
                    "--mount".into(),
                    format!(
                        "type=volume,src={name},{}",
                        csv_field(&format!("dst={target}"))
                    ),
                ]
            } else {
                vec!["-v".into(), format!("{name}:{target}")]
            }
        }
    }
}

/// A `--mount` field, CSV-quoted when it holds `,` or `"` (Docker reads the
/// flag with a CSV reader).
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_owned()
    }
}
