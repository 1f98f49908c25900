//! The YAML writer every YAML output goes through (compose, Kubernetes,
//! kustomize, `roprof patch`).
//!
//! `serde_yaml_ng` quotes only what a YAML 1.2 reader would retype, so it
//! writes `- no`, `- on` or `- 0755` plain. docker-compose (`PyYAML`) and
//! kubectl (go-yaml) read YAML 1.1, where those are a boolean and an octal
//! number: `--daemonize no` became `--daemonize false`, or a file compose
//! refuses. This writer builds the same block-style document from the value
//! tree, and writes a string plain only when no YAML 1.1 or 1.2 resolver can
//! take it for anything but that string; anything else is quoted (single
//! quotes, or double quotes with escapes for control characters), and a
//! multi-line script is a literal block.

use std::fmt::Write as _;

use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};

/// Serialises `v` as a YAML document (block style, no `---`, final
/// newline), quoting every string YAML 1.1 or 1.2 would read as another
/// type.
pub fn to_string<T: Serialize + ?Sized>(v: &T) -> Result<String, serde_yaml_ng::Error> {
    let value = serde_yaml_ng::to_value(v)?;
    let mut out = String::new();
    match &value {
        Value::Mapping(m) if !m.is_empty() => mapping(&mut out, m, 0)?,
        Value::Sequence(s) if !s.is_empty() => sequence(&mut out, s, 0)?,
        other => {
            let mut s = String::new();
            inline(&mut s, other, 0)?;
            out.push_str(s.trim_start());
            out.push('\n');
        }
    }
    Ok(out)
}

fn error(msg: &str) -> serde_yaml_ng::Error {
    <serde_yaml_ng::Error as serde::ser::Error>::custom(msg)
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A block mapping at `indent`; every line starts with the indentation.
fn mapping(out: &mut String, m: &Mapping, indent: usize) -> Result<(), serde_yaml_ng::Error> {
    for (k, v) in m {
        pad(out, indent);
        match k {
            Value::String(s) => out.push_str(&quoted(s)),
            Value::Bool(_) | Value::Number(_) | Value::Null => {
                // A non-string key keeps its type: written as serde would.
                inline(out, k, indent)?;
            }
            _ => return Err(error("a mapping key that is not a scalar")),
        }
        out.push(':');
        value_after(out, v, indent, false)?;
    }
    Ok(())
}

/// What follows `key:` or `-`: a nested block on the next lines, or
/// ` scalar`. A sequence under a key sits at the key's indentation, as
/// libyaml writes it; under a sequence item (after a tag), one step in.
fn value_after(
    out: &mut String,
    v: &Value,
    indent: usize,
    in_sequence: bool,
) -> Result<(), serde_yaml_ng::Error> {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(out, m, indent + 2)
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(out, s, if in_sequence { indent + 2 } else { indent })
        }
        Value::Tagged(t) => {
            let _ = write!(out, " {}", t.tag);
            value_after(out, &t.value, indent, in_sequence)
        }
        _ => {
            out.push(' ');
            inline(out, v, indent + 2)?;
            out.push('\n');
            Ok(())
        }
    }
}

/// A block sequence at `indent`.
fn sequence(out: &mut String, s: &[Value], indent: usize) -> Result<(), serde_yaml_ng::Error> {
    for item in s {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Mapping(m) if !m.is_empty() => {
                // `- first: …` then the other keys under it.
                let mut inner = String::new();
                mapping(&mut inner, m, indent + 2)?;
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            Value::Sequence(s) if !s.is_empty() => {
                let mut inner = String::new();
                sequence(&mut inner, s, indent + 2)?;
                out.push(' ');
                out.push_str(&inner[indent + 2..]);
            }
            _ => value_after(out, item, indent, true)?,
        }
    }
    Ok(())
}

/// A scalar or an empty collection, on the current line. `indent` is that
/// of the lines of a literal block.
fn inline(out: &mut String, v: &Value, indent: usize) -> Result<(), serde_yaml_ng::Error> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => out.push_str(&scalar(s, indent)),
        Value::Sequence(_) => out.push_str("[]"),
        Value::Mapping(_) => out.push_str("{}"),
        Value::Tagged(_) => return Err(error("a tagged value")),
    }
    Ok(())
}

/// `s` as a YAML scalar: plain when that is safe, else quoted; a multi-line
/// string as a literal block whose lines are indented by `indent`.
#[must_use]
pub fn scalar(s: &str, indent: usize) -> String {
    if is_plain_safe(s) {
        return s.to_owned();
    }
    if let Some(block) = literal(s, indent) {
        return block;
    }
    quoted(s)
}

/// `s` on one line: plain when safe, else single- or double-quoted (a
/// mapping key cannot be a block).
fn quoted(s: &str) -> String {
    if is_plain_safe(s) {
        return s.to_owned();
    }
    if s.chars().all(|c| !needs_escape(c)) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double_quoted(s)
}

/// Characters a single-quoted or literal scalar cannot hold as they are:
/// control characters (YAML's printable set has none but tab), line
/// separators some readers break on, and the BOM.
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if needs_escape(c) => {
                let n = u32::from(c);
                if n <= 0xff {
                    let _ = write!(out, "\\x{n:02x}");
                } else {
                    let _ = write!(out, "\\u{n:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block (`|`, `|-` or `|+`) for a multi-line string whose text
/// it can hold exactly, else `None`.
fn literal(s: &str, indent: usize) -> Option<String> {
    if !s.contains('\n')
        || s.contains('\r')
        || s.starts_with([' ', '\t', '\n'])
        || s.chars().any(|c| c != '\n' && needs_escape(c))
    {
        return None;
    }
    let body = s.trim_end_matches('\n');
    // A line of blanks before the end would be read as the chomped tail.
    if body.is_empty() {
        return None;
    }
    let chomp = match s.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    let indent = indent.max(2);
    for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
        out.push('\n');
        if !line.is_empty() {
            pad(&mut out, indent);
            out.push_str(line);
        }
    }
    Some(out)
}

/// Whether `s` may be written plain: it reads back as this very string in
/// YAML 1.1 and 1.2, in block context. Conservative: anything that could be
/// a boolean, null, number, date, merge key, or YAML syntax is quoted.
#[must_use]
pub fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let safe_char = |c: char| c.is_ascii_alphanumeric() || "_./@%+-=:,~^() ".contains(c);
    if !s.chars().all(safe_char) {
        return false;
    }
    // Syntax: indicators at the start, `: ` and ` #`, a trailing `:`,
    // and spaces at either end.
    if !(first.is_ascii_alphabetic() || "_/".contains(first) || starts_as_option(s)) {
        return false;
    }
    if s.contains(": ")
        || s.ends_with(':')
        || s.ends_with(' ')
        || s.contains(" #")
        || s.starts_with("---")
    {
        return false;
    }
    // Words YAML 1.1 reads as booleans or null (the 1.2 core schema's are
    // among them), and `.inf`/`.nan` forms (they start with `.`, refused
    // above).
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "yes" | "n" | "no" | "true" | "false" | "on" | "off" | "null"
    ) {
        return false;
    }
    true
}

/// `-x`, `--flag`: a dash followed by a letter or another dash, which no
/// resolver takes for a number.
fn starts_as_option(s: &str) -> bool {
    let mut c = s.chars();
    c.next() == Some('-')
        && c.next()
            .is_some_and(|n| n.is_ascii_alphabetic() || n == '-')
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
