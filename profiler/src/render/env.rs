//! The environment parts of every format, from the report's run options:
//! variables by name (`-e NAME`, compose `environment: [NAME]`, Kubernetes
//! `secretKeyRef`), env files by path, values only in a report written with
//! `--reveal-env`, and the one comment line that says what to export.

use std::{borrow::Cow, fmt::Write as _};

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar as K8sEnvVar, EnvVarSource, SecretEnvSource, SecretKeySelector,
};

use super::escape_bytes;
use crate::model::{EnvValues, RunOptions};

/// Names the reader must export before running the output: the `-e`
/// variables the report has no value for.
#[must_use]
pub fn to_export(r: &RunOptions) -> Vec<&str> {
    r.env
        .iter()
        .filter(|v| v.value.is_none())
        .map(|v| v.name.as_str())
        .collect()
}

/// `roprof: export A B before running this: …` (no `#`), or `None` when
/// every variable has its value. Names are escaped so that a newline in one
/// cannot end the comment.
#[must_use]
pub fn export_note(r: &RunOptions) -> Option<String> {
    let names = to_export(r);
    if names.is_empty() {
        return None;
    }
    let list: Vec<String> = names
        .iter()
        .map(|n| escape_bytes(n.as_bytes()).replace(' ', "\\x20"))
        .collect();
    let why = if r.env_values == EnvValues::Withheld {
        "roprof does not write the values it was given (see roprof --reveal-env)"
    } else {
        "passed through by name, without a value"
    };
    Some(format!(
        "roprof: export {} before running this: {why}",
        list.join(" ")
    ))
}

/// `# roprof: export …` with its newline, or nothing.
#[must_use]
pub fn export_comment(r: &RunOptions) -> String {
    export_note(r)
        .map(|n| format!("# {n}\n"))
        .unwrap_or_default()
}

/// `-e NAME` (or `NAME=value` when revealed).
fn entry(v: &crate::model::EnvVar) -> String {
    match &v.value {
        Some(value) => format!("{}={value}", v.name),
        None => v.name.clone(),
    }
}

/// `--env-file FILE …` then `-e NAME[=value] …`, in Docker's order.
#[must_use]
pub fn docker_words(r: &RunOptions) -> Vec<String> {
    let mut w = Vec::new();
    for f in &r.env_files {
        w.push("--env-file".to_owned());
        w.push(f.clone());
    }
    for v in &r.env {
        w.push("-e".to_owned());
        w.push(entry(v));
    }
    w
}

/// Compose `environment:` entries. Compose interpolates `$` in the file,
/// so a literal `$` is written `$$`.
#[must_use]
pub fn compose_environment(r: &RunOptions) -> Vec<String> {
    r.env.iter().map(|v| entry(v).replace('$', "$$")).collect()
}

/// Compose `env_file:` entries (`$` escaped, as above).
#[must_use]
pub fn compose_env_files(r: &RunOptions) -> Vec<String> {
    r.env_files.iter().map(|f| f.replace('$', "$$")).collect()
}

/// The Secret holding the `-e` variables of `workload`, one key per name.
#[must_use]
pub fn secret_name(workload: &str) -> String {
    format!("{workload}-env")
}

/// The Secret made from the env files of `workload`.
#[must_use]
pub fn file_secret_name(workload: &str) -> String {
    format!("{workload}-env-file")
}

/// The container's `env` (each variable from [`secret_name`], key = its
/// name) and `envFrom` ([`file_secret_name`] when there are env files).
/// Kubernetes output never holds values, `--reveal-env` or not: Secrets do.
#[must_use]
pub fn k8s_env(r: &RunOptions, workload: &str) -> (Vec<K8sEnvVar>, Vec<EnvFromSource>) {
    let env = r
        .env
        .iter()
        .map(|v| K8sEnvVar {
            name: v.name.clone(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret_name(workload),
                    key: v.name.clone(),
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
            ..K8sEnvVar::default()
        })
        .collect();
    let from = if r.env_files.is_empty() {
        Vec::new()
    } else {
        vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: file_secret_name(workload),
                optional: None,
            }),
            ..EnvFromSource::default()
        }]
    };
    (env, from)
}

/// Comment lines saying how to create the Secrets the Kubernetes output
/// refers to (empty when it refers to none).
#[must_use]
pub fn k8s_comment(r: &RunOptions, workload: &str) -> String {
    let mut s = String::new();
    if !r.env.is_empty() {
        let literals: Vec<String> = r
            .env
            .iter()
            .map(|v| {
                let n = &v.name;
                if is_shell_name(n) {
                    format!("\"--from-literal={n}=${n}\"")
                } else {
                    format!("--from-literal={}=VALUE", escape_bytes(n.as_bytes()))
                }
            })
            .collect();
        let _ = write!(
            s,
            "# roprof: the environment comes from Secrets; with the variables exported:\n\
             #   kubectl create secret generic {} {}\n",
            secret_name(workload),
            literals.join(" ")
        );
    }
    if !r.env_files.is_empty() {
        let files: Vec<String> = r
            .env_files
            .iter()
            .map(|f| {
                let f = escape_bytes(f.as_bytes());
                let q = shlex::try_quote(&f).map_or_else(|_| f.clone(), Cow::into_owned);
                format!("--from-env-file={q}")
            })
            .collect();
        let _ = writeln!(
            s,
            "# roprof: kubectl create secret generic {} {}",
            file_secret_name(workload),
            files.join(" ")
        );
    }
    s
}

/// A name the shell can expand as `$NAME`.
fn is_shell_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
