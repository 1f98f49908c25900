//! The saved report as JSON (schema: `profiler/schema/report.schema.json`),
//! and loading it back with a schema-version check.

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
        /// Version this build reads.
        expected: u32,
    },
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
    let value: serde_json::Value = serde_json::from_str(text)?;
    let found = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or(LoadError::NoVersion)?;
    if !(u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&found) {
        return Err(LoadError::Version {
            found,
            expected: SCHEMA_VERSION,
        });
    }
    Ok(serde_json::from_value(value)?)
}
