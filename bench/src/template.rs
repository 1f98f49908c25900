//! The method prose of bench.md lives in `templates/*.md`, one paragraph
//! block per file, with `{name}` placeholders for the figures of the run.

/// The files under `templates/`.
pub const INTRO: &str = include_str!("../templates/intro.md");
pub const MACHINE: &str = include_str!("../templates/machine.md");
pub const OVERHEAD: &str = include_str!("../templates/overhead.md");
pub const RINGBUF: &str = include_str!("../templates/ringbuf.md");
pub const BPF_STATS: &str = include_str!("../templates/bpf_stats.md");
pub const THROUGHPUT: &str = include_str!("../templates/throughput.md");
pub const ANSWER: &str = include_str!("../templates/answer.md");
pub const CAVEAT: &str = include_str!("../templates/caveat.md");
pub const WORKLOAD: &str = include_str!("../templates/workload.md");
pub const SERVERS: &str = include_str!("../templates/servers.md");

/// Every template, by file name (for the tests).
#[cfg(test)]
pub const ALL: [(&str, &str); 10] = [
    ("intro", INTRO),
    ("machine", MACHINE),
    ("overhead", OVERHEAD),
    ("ringbuf", RINGBUF),
    ("bpf_stats", BPF_STATS),
    ("throughput", THROUGHPUT),
    ("answer", ANSWER),
    ("caveat", CAVEAT),
    ("workload", WORKLOAD),
    ("servers", SERVERS),
];

/// The placeholder names in `template`: `{` then lowercase letters and
/// underscores then `}` (any other brace is text).
#[cfg(test)]
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        if let Some(end) = rest.find('}')
            && end > 0
            && rest[..end]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            names.push(&rest[..end]);
            rest = &rest[end + 1..];
        }
    }
    names
}

/// `template` (its trailing newline dropped) with each `{name}` replaced by
/// its value in one pass: values are not scanned again, so a value with
/// braces (a bpftrace script) stays as it is. A name without a value is
/// left as written, which the tests catch.
pub fn fill(template: &str, values: &[(&str, String)]) -> String {
    let template = template.trim_end_matches('\n');
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let value = rest[1..].find('}').and_then(|end| {
            let name = &rest[1..=end];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (v, end + 2))
        });
        if let Some((v, skip)) = value {
            out.push_str(v);
            rest = &rest[skip..];
        } else {
            out.push('{');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_each_placeholder_once() {
        let out = fill(
            "a {x} b {y} {z}\n",
            &[("x", "{y}".into()), ("y", "2".into())],
        );
        assert_eq!(
            out, "a {y} b 2 {z}",
            "values are not rescanned; unknown names stay"
        );
        assert_eq!(fill("{ @hits = count(); }", &[]), "{ @hits = count(); }");
    }

    #[test]
    fn finds_placeholder_names_only() {
        assert_eq!(
            placeholders("`{ops}` { @x } {a_b} {}"),
            ["ops", "a_b"],
            "script braces and empty braces are text"
        );
    }
}
