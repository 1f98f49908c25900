//! The saved report as JSON (schema: `profiler/schema/report.schema.json`),
//! and loading it back with a schema-version check. Reports of schema 1
//! (env as `NAME=value` strings) are read too, upgraded in memory.

use serde_json::Value;

use crate::model::{OLDEST_SCHEMA_VERSION, Report, SCHEMA_VERSION};

/// The JSON Schema of the report, as shipped.
pub const SCHEMA: &str = include_str!("../../schema/report.schema.json");

/// Errors loading a saved report.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not JSON, or not a report.
    #[error("not a roprof report: {0}")]
    Parse(#[from] serde_json::Error),
    /// No `schema_version`.
    #[error("not a roprof report: no integer schema_version field")]
    NoVersion,
    /// Written by an incompatible roprof.
    #[error(
        "report schema_version {found} is not supported (this roprof reads versions \
         {OLDEST_SCHEMA_VERSION} to {expected}); re-run the profile with this roprof"
    )]
    Version {
        /// Version in the file.
        found: u64,
        /// Version this build writes.
        expected: u32,
    },
    /// A schema 1 report whose `run_options.env` is not a list of strings.
    #[error("not a roprof report: schema 1 run_options.env must be a list of strings")]
    OldEnv,
}

/// Pretty JSON of the report.
pub fn to_json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Parses a saved report, checking `schema_version` before the rest so a
/// report from another version fails with a clear message. Version 1
/// reports load as they are (their fields are a subset of version 2's);
/// rendered again, their seeded volumes become anonymous volumes.
pub fn load_report(text: &str) -> Result<Report, LoadError> {
    let mut value: Value = serde_json::from_str(text)?;
    let found = value
        .get("schema_version")
        .and_then(Value::as_u64)
        .ok_or(LoadError::NoVersion)?;
    match found {
        1 => upgrade_v1(&mut value)?,
        v if v == u64::from(SCHEMA_VERSION) => {}
        _ => {
            return Err(LoadError::Version {
                found,
                expected: SCHEMA_VERSION,
            });
        }
    }
    Ok(serde_json::from_value(value)?)
}

/// Schema 1 → 2: `run_options.env` strings (`NAME=value`, or `NAME` for a
/// pass-through) become `{name, value}` entries. Schema 1 wrote values as
/// given, so the report is marked `revealed` when it holds any; callers
/// withhold them before printing unless asked not to.
fn upgrade_v1(report: &mut Value) -> Result<(), LoadError> {
    if let Some(opts) = report.get_mut("run_options").and_then(Value::as_object_mut) {
        let old = match opts.remove("env") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(LoadError::OldEnv),
        };
        let mut revealed = false;
        let mut env = Vec::new();
        for e in old {
            let Value::String(e) = e else {
                return Err(LoadError::OldEnv);
            };
            env.push(match e.split_once('=') {
                Some((name, value)) => {
                    revealed = true;
                    serde_json::json!({ "name": name, "value": value })
                }
                None => serde_json::json!({ "name": e }),
            });
        }
        opts.insert("env".into(), Value::Array(env));
        opts.insert(
            "env_values".into(),
            Value::from(if revealed { "revealed" } else { "withheld" }),
        );
    }
    report["schema_version"] = Value::from(SCHEMA_VERSION);
    Ok(())
}
