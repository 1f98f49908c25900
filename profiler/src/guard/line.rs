//! The JSON lines guard writes on stdout: one `finding` per new
//! (container, path, operation, errno), then `count` lines as it repeats.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{finding::Errno, fix::Fix};
use crate::model::Op;

/// Version of the line format.
pub const LINE_SCHEMA_VERSION: u32 = 1;

/// Which container a line is about.
#[derive(Clone, Debug, Serialize)]
pub struct ContainerRef {
    /// Full id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Compose service, pod container, or the container's name.
    pub workload: String,
}

/// The process a finding saw first.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    /// Its command name.
    pub comm: String,
    /// Its host pid (thread group id).
    pub pid: u32,
}

/// One line.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// A failed write not seen before.
    Finding {
        /// [`LINE_SCHEMA_VERSION`].
        schema_version: u32,
        /// The container.
        container: ContainerRef,
        /// Canonical container path.
        path: String,
        /// The operation.
        operation: Op,
        /// `EROFS` or `EACCES`.
        errno: Errno,
        /// The process that failed.
        process: Process,
        /// When guard saw it (RFC 3339, UTC).
        time: String,
        /// 1.
        count: u64,
        /// The mount that would fix it.
        fix: Box<Fix>,
    },
    /// A finding's count grew (at most once a second, and once at exit).
    Count {
        /// [`LINE_SCHEMA_VERSION`].
        schema_version: u32,
        /// The container.
        container: ContainerRef,
        /// Canonical container path.
        path: String,
        /// The operation.
        operation: Op,
        /// `EROFS` or `EACCES`.
        errno: Errno,
        /// Failures so far.
        count: u64,
    },
}

/// `t` as RFC 3339 in UTC with milliseconds (`2026-12-07T12:00:00.123Z`).
#[must_use]
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days to civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::rfc3339;

    #[test]
    fn rfc3339_in_utc() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_700_000_000, "2023-11-14T22:13:20.000Z"),
            (951_782_400, "2000-02-29T00:00:00.000Z"),
            (1_798_761_599, "2026-12-31T23:59:59.000Z"),
        ] {
            assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(secs)), want);
        }
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_250)),
            "1970-01-01T00:00:01.250Z"
        );
    }
}
