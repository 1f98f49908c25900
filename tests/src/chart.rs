//! `helm template` on Docker hosts without helm: renders the tests' own
//! charts (`tests/fixtures/charts/`, written in the bitnami style) with
//! values layered as `helm template -f a.yaml -f b.yaml` layers them, so
//! the tests can run roprof's Helm values where they are pasted. The
//! rendered Deployment then runs under the kubelet emulation
//! ([`crate::kubelet`]). What is emulated, and how, is written down in
//! `tests/KUBELET_EMULATION.md` ("Helm charts"); a template construct the
//! emulation does not know is refused, never ignored.
//!
//! Emulated:
//!
//! - values: the chart's `values.yaml`, then each layer coalesced over it
//!   (maps merged key by key, recursively; any other value, lists
//!   included, replaced; a `null` deletes the key), as Helm does;
//! - Go template actions: `{{ PIPELINE }}` printing, `{{ if P }}` and
//!   `{{ with P }}` blocks closed by `{{ end }}` (Go's truthiness: false, 0,
//!   nil, empty string, list or map are false), `{{-`/`-}}` trimming the
//!   white space (newlines included) before/after them;
//! - pipelines of `.Values.a.b` or `.`, string and integer literals, and the
//!   functions `toYaml` (no trailing newline, as Helm), `nindent N`,
//!   `indent N` and `omit DICT "key"…`; a missing key prints nothing (Helm
//!   drops `<no value>`);
//! - the API server's validation of the result that a values fragment can
//!   break: one name per volume, per container, one `mountPath` per
//!   container, every `volumeMounts[].name` a volume of the pod.
//!
//! Not emulated: `else`, `range`, `define`/`include`/`tpl`, other
//! functions, `.Release`/`.Chart`, several template files. The tests'
//! charts do not use them.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::PodSpec;
use serde_yaml_ng::{Mapping, Value};

/// Why a chart did not render, or what the API server would refuse.
#[derive(Debug)]
pub struct ChartError(pub String);

impl std::fmt::Display for ChartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, ChartError> {
    Err(ChartError(msg.into()))
}

/// A chart: its default values and its one template.
pub struct Chart {
    dir: PathBuf,
    values: Value,
    template: String,
}

/// One of the tests' charts, `tests/fixtures/charts/NAME`.
#[must_use]
pub fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/charts")).join(name)
}

fn parse_values(what: &str, text: &str) -> Result<Value, ChartError> {
    let v: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ChartError(format!("{what} is not YAML: {e}")))?;
    match v {
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        Value::Mapping(_) => Ok(v),
        _ => fail(format!("{what} is not a mapping of values")),
    }
}

/// Helm's coalescing of a values layer over the values below it.
#[must_use]
pub fn coalesce(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, v) in o {
                if v.is_null() {
                    b.remove(&k);
                    continue;
                }
                let merged = match b.remove(&k) {
                    Some(old) => coalesce(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Mapping(b)
        }
        (_, o) => o,
    }
}

impl Chart {
    /// Reads `dir/values.yaml` and `dir/templates/deployment.yaml`.
    pub fn load(dir: &Path) -> Result<Self, ChartError> {
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p).map_err(|e| ChartError(format!("{}: {e}", p.display())))
        };
        let values = parse_values("values.yaml", &read(dir.join("values.yaml"))?)?;
        let template = read(dir.join("templates/deployment.yaml"))?;
        Ok(Chart {
            dir: dir.to_path_buf(),
            values,
            template,
        })
    }

    /// The manifest `helm template -f layers[0] -f layers[1] …` prints,
    /// checked as the API server would check its pod spec.
    pub fn render(&self, layers: &[&str]) -> Result<String, ChartError> {
        let mut values = self.values.clone();
        for (i, l) in layers.iter().enumerate() {
            values = coalesce(values, parse_values(&format!("values layer {}", i + 1), l)?);
        }
        let mut root = Mapping::new();
        root.insert("Values".into(), values);
        let nodes = parse(&tokens(&self.template)?)
            .map_err(|e| ChartError(format!("{}: {e}", self.dir.display())))?;
        let mut out = String::new();
        exec(
            &nodes,
            &Value::Mapping(root.clone()),
            &Value::Mapping(root),
            &mut out,
        )
        .map_err(|e| ChartError(format!("{}: {e}", self.dir.display())))?;
        validate(&out)?;
        Ok(out)
    }
}

enum Token {
    Text(String),
    Action(String),
}

/// Splits a template into text and actions, applying `{{-` and `-}}`.
fn tokens(template: &str) -> Result<Vec<Token>, ChartError> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| ChartError("an action `{{` is never closed".into()))?;
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix("- ") {
            text = text.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix(" -") {
            trim_next = true;
            action = a;
        }
        out.push(Token::Text(text.to_owned()));
        out.push(Token::Action(action.trim().to_owned()));
        rest = &after[end + 2..];
    }
    out.push(Token::Text(if trim_next {
        rest.trim_start().to_owned()
    } else {
        rest.to_owned()
    }));
    Ok(out)
}

enum Node {
    Text(String),
    Print(String),
    If(String, Vec<Node>),
    With(String, Vec<Node>),
}

/// An open block: `(with?, its pipeline)` (`None` for the template
/// itself), and the nodes read into it so far.
type Frame = (Option<(bool, String)>, Vec<Node>);

fn parse(tokens: &[Token]) -> Result<Vec<Node>, String> {
    let mut stack: Vec<Frame> = vec![(None, Vec::new())];
    for t in tokens {
        let node = match t {
            Token::Text(s) => Node::Text(s.clone()),
            Token::Action(a) if a.starts_with("/*") => continue,
            Token::Action(a) => {
                let (word, arg) = a.split_once(' ').unwrap_or((a.as_str(), ""));
                match word {
                    "if" | "with" => {
                        stack.push((Some((word == "with", arg.trim().to_owned())), Vec::new()));
                        continue;
                    }
                    "end" => {
                        let (head, body) = stack.pop().ok_or("unbalanced {{ end }}")?;
                        let (with, p) = head.ok_or("{{ end }} without if/with")?;
                        if with {
                            Node::With(p, body)
                        } else {
                            Node::If(p, body)
                        }
                    }
                    "else" | "range" | "define" | "template" | "block" | "include" | "tpl" => {
                        return Err(format!("not emulated: {{{{ {a} }}}}"));
                    }
                    _ => Node::Print(a.clone()),
                }
            }
        };
        stack.last_mut().ok_or("unbalanced {{ end }}")?.1.push(node);
    }
    match stack.pop() {
        Some((None, nodes)) if stack.is_empty() => Ok(nodes),
        _ => Err("an if/with block is never closed with {{ end }}".into()),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(s) => !s.is_empty(),
        Value::Mapping(m) => !m.is_empty(),
        Value::Tagged(_) => true,
    }
}

fn exec(nodes: &[Node], root: &Value, dot: &Value, out: &mut String) -> Result<(), String> {
    for n in nodes {
        match n {
            Node::Text(s) => out.push_str(s),
            Node::Print(p) => out.push_str(&print(&pipeline(p, root, dot)?, p)?),
            Node::If(p, body) => {
                if truthy(&pipeline(p, root, dot)?) {
                    exec(body, root, dot, out)?;
                }
            }
            Node::With(p, body) => {
                let v = pipeline(p, root, dot)?;
                if truthy(&v) {
                    exec(body, root, &v, out)?;
                }
            }
        }
    }
    Ok(())
}

fn print(v: &Value, action: &str) -> Result<String, String> {
    Ok(match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => {
            return Err(format!(
                "not emulated: printing a list or map in {{{{ {action} }}}}"
            ));
        }
    })
}

/// One argument: `.` or `.a.b` (from the current `with` scope), `$` or
/// `$.Values.a` (from the top), `"literal"` or an integer.
fn argument(a: &str, root: &Value, dot: &Value) -> Result<Value, String> {
    let (base, path) = match a.strip_prefix('$') {
        Some(rest) => (root, rest),
        None => (dot, a),
    };
    if path.is_empty() || path == "." {
        return Ok(base.clone());
    }
    if let Some(path) = path.strip_prefix('.') {
        let mut v = base;
        for key in path.split('.') {
            match v.get(key) {
                Some(next) => v = next,
                None => return Ok(Value::Null),
            }
        }
        return Ok(v.clone());
    }
    if let Some(s) = a.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return Ok(Value::from(s));
    }
    a.parse::<i64>()
        .map(Value::from)
        .map_err(|_| format!("not emulated: the argument {a:?}"))
}

fn pipeline(p: &str, root: &Value, dot: &Value) -> Result<Value, String> {
    let mut piped: Option<Value> = None;
    for cmd in p.split('|').map(str::trim) {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let (&name, args) = words
            .split_first()
            .ok_or_else(|| format!("an empty command in {{{{ {p} }}}}"))?;
        let mut args = args
            .iter()
            .map(|a| argument(a, root, dot))
            .collect::<Result<Vec<_>, _>>()?;
        args.extend(piped.take());
        let int = |v: &Value| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("{name} needs a count in {{{{ {p} }}}}"))
        };
        let string = |v: &Value| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{name} needs a string in {{{{ {p} }}}}"))
        };
        let result = match (name, args.as_slice()) {
            ("toYaml", [v]) => Value::from(
                serde_yaml_ng::to_string(v)
                    .map_err(|e| format!("toYaml: {e}"))?
                    .trim_end_matches('\n')
                    .to_owned(),
            ),
            ("nindent" | "indent", [n, s]) => {
                let pad = " ".repeat(int(n)?);
                let body = string(s)?
                    .split('\n')
                    .map(|l| format!("{pad}{l}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                Value::from(if name == "nindent" {
                    format!("\n{body}")
                } else {
                    body
                })
            }
            ("omit", [d, keys @ ..]) if !keys.is_empty() => {
                let mut m = d.as_mapping().cloned().unwrap_or_default();
                for k in keys {
                    m.remove(Value::from(string(k)?));
                }
                Value::Mapping(m)
            }
            (_, []) if name.starts_with('.') || name.starts_with('$') => argument(name, root, dot)?,
            _ => return Err(format!("not emulated: `{cmd}` in {{{{ {p} }}}}")),
        };
        piped = Some(result);
    }
    piped.ok_or_else(|| format!("an empty pipeline {{{{ {p} }}}}"))
}

/// The API server's checks a values fragment can break, on the pod
/// template of the rendered Deployment.
fn validate(yaml: &str) -> Result<(), ChartError> {
    let spec: PodSpec = crate::kubelet::pod_spec(yaml).map_err(|e| ChartError(e.0))?;
    let mut errors = Vec::new();
    let mut volumes = BTreeSet::new();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        if !volumes.insert(v.name.as_str()) {
            errors.push(format!(
                "spec.template.spec.volumes[{i}].name: Duplicate value: {:?}",
                v.name
            ));
        }
    }
    let mut names = BTreeSet::new();
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| ("initContainers", c))
        .enumerate()
        .chain(
            spec.containers
                .iter()
                .map(|c| ("containers", c))
                .enumerate(),
        );
    for (i, (field, c)) in containers {
        let at = format!("spec.template.spec.{field}[{i}]");
        if !names.insert(c.name.as_str()) {
            errors.push(format!("{at}.name: Duplicate value: {:?}", c.name));
        }
        let mut paths = BTreeSet::new();
        for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
            if !paths.insert(m.mount_path.as_str()) {
                errors.push(format!(
                    "{at}.volumeMounts[{j}].mountPath: Invalid value: {:?}: must be unique",
                    m.mount_path
                ));
            }
            if !volumes.contains(m.name.as_str()) {
                errors.push(format!(
                    "{at}.volumeMounts[{j}].name: Not found: {:?}",
                    m.name
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        fail(format!(
            "the API server would refuse the Deployment: {}\n{yaml}",
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
#[path = "chart_tests.rs"]
mod tests;
