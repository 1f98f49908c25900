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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::model::{Health, RoundKind};

    /// Every report checked in, of either schema: its closed-set fields
    /// load as enums and are written back as the same strings.
    const REPORTS: [(&str, &str); 6] = [
        (
            "v1 nginx",
            include_str!("../../../tests/fixtures/v1-reports/nginx.json"),
        ),
        (
            "apache2",
            include_str!("../../../reports/apache2/report.json"),
        ),
        (
            "memcached",
            include_str!("../../../reports/memcached/report.json"),
        ),
        ("nginx", include_str!("../../../reports/nginx/report.json")),
        (
            "postgresql",
            include_str!("../../../reports/postgresql/report.json"),
        ),
        ("redis", include_str!("../../../reports/redis/report.json")),
    ];

    fn closed_set_fields(v: &Value) -> Value {
        let rounds = v["rounds"].as_array().cloned().unwrap_or_default();
        json!({
            "run.health": v["run"]["health"],
            "rounds": rounds
                .iter()
                .map(|r| json!([r["kind"], r["health"]]))
                .collect::<Vec<_>>(),
        })
    }

    #[test]
    fn checked_in_reports_keep_round_kinds_and_health_as_written() {
        for (name, text) in REPORTS {
            let before: Value = serde_json::from_str(text).expect("report is JSON");
            let r = load_report(text).unwrap_or_else(|e| panic!("{name} report loads: {e}"));
            let after: Value = serde_json::from_str(&to_json(&r).expect("json")).expect("json");
            assert_eq!(
                closed_set_fields(&after),
                closed_set_fields(&before),
                "{name}: round kinds and health written back as read"
            );
        }
    }

    #[test]
    fn every_round_kind_and_health_reads_and_writes_as_its_string() {
        let mut v: Value = serde_json::from_str(REPORTS[3].1).expect("json");
        assert_eq!(v["schema_version"], 2, "a schema 2 report to edit");
        v["run"]["health"] = json!("unhealthy");
        let round = v["rounds"][0].clone();
        let kinds = ["verify", "repair", "iterate", "leave-one-out"];
        let healths = [
            json!("healthy"),
            json!("unhealthy"),
            Value::Null,
            json!("healthy"),
        ];
        v["rounds"] = kinds
            .iter()
            .zip(&healths)
            .map(|(k, h)| {
                let mut r = round.clone();
                r["kind"] = json!(k);
                r["health"] = h.clone();
                r
            })
            .collect();
        let r = load_report(&v.to_string()).expect("loads");
        assert_eq!(r.run.health, Some(Health::Unhealthy));
        assert_eq!(
            r.rounds.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [
                RoundKind::Verify,
                RoundKind::Repair,
                RoundKind::Iterate,
                RoundKind::LeaveOneOut
            ]
        );
        assert_eq!(
            r.rounds.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
            kinds
        );
        let out: Value = serde_json::from_str(&to_json(&r).expect("json")).expect("json");
        assert_eq!(closed_set_fields(&out), closed_set_fields(&v));
    }

    #[test]
    fn an_unknown_round_kind_or_health_is_refused_naming_it() {
        for (field, value) in [("kind", "rehearse"), ("health", "starting")] {
            let mut v: Value = serde_json::from_str(REPORTS[3].1).expect("json");
            v["rounds"][0][field] = json!(value);
            let e = load_report(&v.to_string())
                .expect_err("a value outside the closed set must not load")
                .to_string();
            assert!(e.contains(value), "{field} {value}: {e}");
        }
    }
}
