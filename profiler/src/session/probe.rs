//! A minimal HTTP/1.0 GET on loopback-published ports, for `--probe`: no HTTP
//! client dependency, and nothing but the given host is ever contacted.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Splits `http://host:port/path` into (host, port, path).
#[must_use]
pub fn parse_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 80),
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port, path.to_owned()))
}

/// True when `url` answers with a 2xx or 3xx status within `timeout`.
pub async fn http_ok(url: &str, timeout: Duration) -> bool {
    status(url, timeout)
        .await
        .is_some_and(|s| (200..400).contains(&s))
}

/// The HTTP status code `url` answers with, if any.
pub async fn status(url: &str, timeout: Duration) -> Option<u16> {
    let (host, port, path) = parse_url(url)?;
    let fut = async {
        let mut s = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .ok()?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut buf = vec![0u8; 256];
        let n = s.read(&mut buf).await.ok()?;
        let line = String::from_utf8_lossy(&buf[..n]);
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/x"),
            Some(("127.0.0.1".into(), 8080, "/x".into()))
        );
        assert_eq!(
            parse_url("http://localhost"),
            Some(("localhost".into(), 80, "/".into()))
        );
        assert_eq!(parse_url("https://x"), None);
    }
}
