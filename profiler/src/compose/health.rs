//! A service's `healthcheck:` as the engine takes it: the test in exec
//! form, and Compose's durations (`1m30s`, `500ms`) in nanoseconds.

use bollard::models::HealthConfig;
use serde_yaml_ng::Value;

use super::{ComposeError, parse::Reader};

/// Reads `healthcheck:` (`disable: true` turns the image's off).
pub(super) fn read(
    r: &Reader<'_>,
    path: &[&str],
    v: Option<&Value>,
) -> Result<Option<HealthConfig>, ComposeError> {
    let Some(m) = v.and_then(Value::as_mapping) else {
        return Ok(None);
    };
    if m.get("disable").and_then(Value::as_bool) == Some(true) {
        return Ok(Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..HealthConfig::default()
        }));
    }
    let test = match m.get("test") {
        None | Some(Value::Null) => None,
        Some(Value::Sequence(s)) => Some(
            s.iter()
                .map(|x| r.string(path, x))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(x) => Some(vec!["CMD-SHELL".into(), r.string(path, x)?]),
    };
    let duration = |key: &str| -> Result<Option<i64>, ComposeError> {
        m.get(key)
            .map(|v| {
                let s = r.string(path, v)?;
                nanos(&s).ok_or_else(|| {
                    r.err(
                        path,
                        format!("{key}: `{s}` is not a duration (e.g. 10s, 1m30s, 500ms)"),
                    )
                })
            })
            .transpose()
    };
    let retries = m
        .get("retries")
        .map(|v| {
            v.as_i64()
                .ok_or_else(|| r.err(path, "retries: expected a number"))
        })
        .transpose()?;
    Ok(Some(HealthConfig {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        retries,
        start_period: duration("start_period")?,
        start_interval: None,
    }))
}

/// Compose's duration (`1h2m3s`, `1.5s`, `250ms`, `10us`) in nanoseconds.
#[must_use]
pub fn nanos(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "h" => 3.6e12,
            "m" => 6e10,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a healthcheck duration is far below i64::MAX nanoseconds"
    )]
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::nanos;

    #[test]
    fn compose_durations() {
        for (s, n) in [
            ("10s", Some(10_000_000_000)),
            ("1m30s", Some(90_000_000_000)),
            ("500ms", Some(500_000_000)),
            ("1.5s", Some(1_500_000_000)),
            ("2h", Some(7_200_000_000_000)),
            ("10", None),
            ("", None),
            ("5y", None),
        ] {
            assert_eq!(nanos(s), n, "{s:?}");
        }
    }
}
