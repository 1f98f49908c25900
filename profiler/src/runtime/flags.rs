//! The user's `docker run` flags that roprof turns into Engine API fields
//! itself: `-p`/`--publish`, `--memory` and `--tmpfs`. (`-v` binds, `--cap-add`
//! and the like pass through as strings.) Bad values fail with
//! [`RuntimeError::Option`], naming the flag and the value.

use std::collections::HashMap;

use bollard::models::PortBinding;

use super::RuntimeError;

/// Parses a `--memory` value: bytes, or a number with a b/k/m/g suffix
/// (powers of 1024, as docker does).
pub fn parse_memory(v: &str) -> Result<i64, RuntimeError> {
    let bad = |reason: &str| RuntimeError::Option {
        option: "--memory",
        value: v.to_owned(),
        reason: reason.to_owned(),
    };
    let t = v.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|r| !r.is_empty()).unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: i64 = num
        .parse()
        .map_err(|_| bad("expected a size such as 64m, 1g or 67108864"))?;
    let bytes = n.checked_mul(mult).ok_or_else(|| bad("too large"))?;
    // Docker refuses limits below 6 MiB.
    if bytes < 6 << 20 {
        return Err(bad("the minimum Docker accepts is 6m"));
    }
    Ok(bytes)
}

/// Splits a `--tmpfs` value `DST[:OPTS]` into the target and its options
/// (empty when none).
pub(super) fn split_tmpfs(t: &str) -> (String, String) {
    match t.split_once(':') {
        Some((p, o)) => (p.to_owned(), o.to_owned()),
        None => (t.to_owned(), String::new()),
    }
}

/// What `-p` values become: the exposed `port/proto` keys, and the
/// bindings per key.
pub type Ports = (Vec<String>, HashMap<String, Option<Vec<PortBinding>>>);

/// Parses `-p` values: `[ip:][hostport:]containerport[/proto]`.
pub fn parse_publish(values: &[String]) -> Result<Ports, RuntimeError> {
    let mut exposed = Vec::new();
    let mut map: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for v in values {
        let bad = |reason: &str| RuntimeError::Option {
            option: "--publish",
            value: v.clone(),
            reason: reason.into(),
        };
        let (spec, proto) = v.rsplit_once('/').unwrap_or((v.as_str(), "tcp"));
        let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
        let (cport, hport, ip) = match parts.as_slice() {
            [c] => (*c, "", ""),
            [c, h] => (*c, *h, ""),
            [c, h, i] => (*c, *h, *i),
            _ => return Err(bad("expected [ip:][hostport:]containerport[/proto]")),
        };
        if cport.parse::<u16>().is_err() || (!hport.is_empty() && hport.parse::<u16>().is_err()) {
            return Err(bad("ports must be numbers from 1 to 65535"));
        }
        let key = format!("{cport}/{proto}");
        exposed.push(key.clone());
        map.entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: (!ip.is_empty()).then(|| ip.to_owned()),
                host_port: (!hport.is_empty()).then(|| hport.to_owned()),
            });
    }
    Ok((exposed, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        for (value, bytes) in [
            ("64m", 64 << 20),
            ("1G", 1 << 30),
            ("8192k", 8 << 20),
            ("67108864", 64 << 20),
            ("64mb", 64 << 20),
            ("64MB", 64 << 20),
            (" 6m ", 6 << 20),
            ("6291456b", 6 << 20),
        ] {
            assert_eq!(
                parse_memory(value).ok(),
                Some(bytes),
                "--memory {value:?} should be {bytes} bytes"
            );
        }
    }

    #[test]
    fn bad_memory_sizes_name_the_flag_the_value_and_why() {
        for (value, why) in [
            ("lots", "expected a size"),
            ("", "expected a size"),
            ("b", "expected a size"),
            ("-64m", "the minimum Docker accepts is 6m"),
            ("1m", "the minimum Docker accepts is 6m"),
            ("6291455", "the minimum Docker accepts is 6m"),
            ("64t", "expected a size"),
            ("1.5g", "expected a size"),
            ("99999999999g", "too large"),
        ] {
            let e = parse_memory(value)
                .err()
                .unwrap_or_else(|| panic!("--memory {value:?} should be refused"))
                .to_string();
            assert!(
                e.contains("--memory") && e.contains(&format!("`{value}`")) && e.contains(why),
                "--memory {value:?}: expected an error naming the flag, the value and `{why}`, got: {e}"
            );
        }
    }

    #[test]
    fn publish_forms() {
        // (value, exposed key, host ip, host port)
        for (value, key, ip, port) in [
            ("80", "80/tcp", None, None),
            ("8080:80", "80/tcp", None, Some("8080")),
            (
                "127.0.0.1:8080:80",
                "80/tcp",
                Some("127.0.0.1"),
                Some("8080"),
            ),
            ("127.0.0.1::80", "80/tcp", Some("127.0.0.1"), None),
            ("53/udp", "53/udp", None, None),
            ("5353:53/udp", "53/udp", None, Some("5353")),
        ] {
            let (exposed, map) = parse_publish(&[value.to_owned()])
                .unwrap_or_else(|e| panic!("-p {value:?} should parse: {e}"));
            assert_eq!(exposed, vec![key], "-p {value:?}");
            let b = map[key]
                .as_ref()
                .unwrap_or_else(|| panic!("-p {value:?}: no bindings for {key}"));
            assert_eq!(b.len(), 1, "-p {value:?}");
            assert_eq!(b[0].host_ip.as_deref(), ip, "-p {value:?}: host ip");
            assert_eq!(b[0].host_port.as_deref(), port, "-p {value:?}: host port");
        }
    }

    #[test]
    fn one_container_port_published_twice_keeps_both_bindings() {
        let (exposed, map) = parse_publish(&["8080:80".to_owned(), "127.0.0.1:9090:80".to_owned()])
            .unwrap_or_else(|e| panic!("two -p for one port should parse: {e}"));
        assert_eq!(exposed, vec!["80/tcp", "80/tcp"]);
        let ports: Vec<_> = map["80/tcp"]
            .iter()
            .flatten()
            .map(|b| b.host_port.as_deref())
            .collect();
        assert_eq!(ports, vec![Some("8080"), Some("9090")]);
    }

    #[test]
    fn bad_publish_values_name_the_flag_and_the_value() {
        for (value, why) in [
            ("x:80", "ports must be numbers"),
            ("8080:http", "ports must be numbers"),
            ("", "ports must be numbers"),
            ("80000", "ports must be numbers"),
            ("8080:-1", "ports must be numbers"),
            ("1.2.3.4:x:80", "ports must be numbers"),
        ] {
            let e = parse_publish(&["80".to_owned(), value.to_owned()])
                .err()
                .unwrap_or_else(|| panic!("-p {value:?} should be refused"))
                .to_string();
            assert!(
                e.contains("--publish") && e.contains(&format!("`{value}`")) && e.contains(why),
                "-p {value:?}: expected an error naming the flag, the value and `{why}`, got: {e}"
            );
        }
    }

    #[test]
    fn tmpfs_values_split_at_the_first_colon() {
        for (value, target, opts) in [
            ("/run", "/run", ""),
            ("/run:rw,size=64m", "/run", "rw,size=64m"),
            ("/tmp:mode=1777:x", "/tmp", "mode=1777:x"),
        ] {
            assert_eq!(
                split_tmpfs(value),
                (target.to_owned(), opts.to_owned()),
                "--tmpfs {value:?}"
            );
        }
    }
}
