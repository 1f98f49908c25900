//! Writes the compose file back hardened: each profiled service gets
//! `read_only: true` and its plan's `tmpfs:` and `volumes:` entries, and the
//! plan's named volumes are declared at the top level. Everything else stays.
//!
//! The patch is textual, so that comments, quoting, key order and anchors
//! survive: lines are inserted under the service at its indentation (or
//! after an existing list's last item). It is then checked: the patched
//! text must parse to exactly the original document with the same changes
//! made to it structurally. When a place cannot be patched as text (a list
//! written inline, `volumes: {}`…) or the check fails, the structurally
//! changed document is written instead, and the caller warns that the
//! comments and formatting were not kept.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::{ComposeError, Project, lines::Lines};
use crate::render::compose::VolumeEntry;

/// What one service gets.
#[derive(Clone, Debug, Default)]
pub struct Hardening {
    /// Service name.
    pub service: String,
    /// `dst:opts` tmpfs entries.
    pub tmpfs: Vec<String>,
    /// Volume entries (long syntax).
    pub volumes: Vec<VolumeEntry>,
    /// Named volumes to declare at the top level.
    pub named: Vec<String>,
}

/// The hardened file, and why the comments were lost when they were.
pub fn harden(
    project: &Project,
    services: &[Hardening],
) -> Result<(String, Option<String>), ComposeError> {
    let want = structural(&project.doc, services)?;
    let why = match textual(&project.text, services) {
        Ok(text) => match serde_yaml_ng::from_str::<Value>(&text) {
            Ok(mut got) => {
                if got.apply_merge().is_ok() && got == want {
                    return Ok((text, None));
                }
                "the patched text did not read back as the intended document".to_owned()
            }
            Err(e) => format!("the patched text did not parse ({e})"),
        },
        Err(why) => why,
    };
    let text =
        crate::render::yaml::to_string(&want).map_err(|e| ComposeError::Write(e.to_string()))?;
    Ok((text, Some(why)))
}

fn yaml(v: &impl serde::Serialize) -> Result<String, ComposeError> {
    crate::render::yaml::to_string(v).map_err(|e| ComposeError::Write(e.to_string()))
}

fn to_value(v: &impl serde::Serialize) -> Result<Value, ComposeError> {
    serde_yaml_ng::to_value(v).map_err(|e| ComposeError::Write(e.to_string()))
}

/// The document with the changes made to it.
fn structural(doc: &Value, services: &[Hardening]) -> Result<Value, ComposeError> {
    let mut doc = doc.clone();
    let missing = || ComposeError::Write("the document has no services mapping".into());
    for h in services {
        let svc = doc
            .get_mut("services")
            .and_then(|s| s.get_mut(h.service.as_str()))
            .and_then(Value::as_mapping_mut)
            .ok_or_else(missing)?;
        svc.insert("read_only".into(), Value::Bool(true));
        let items: Vec<Value> = h.tmpfs.iter().map(|t| Value::from(t.as_str())).collect();
        append(svc, "tmpfs", items);
        let items = h.volumes.iter().map(to_value).collect::<Result<_, _>>()?;
        append(svc, "volumes", items);
    }
    let named: Vec<&String> = services.iter().flat_map(|h| &h.named).collect();
    if !named.is_empty() {
        let top = doc.as_mapping_mut().ok_or_else(missing)?;
        let vols = top
            .entry("volumes".into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if vols.is_null() {
            *vols = Value::Mapping(Mapping::new());
        }
        let vols = vols
            .as_mapping_mut()
            .ok_or_else(|| ComposeError::Write("the top-level `volumes:` is no mapping".into()))?;
        for n in named {
            vols.insert(n.as_str().into(), Value::Mapping(Mapping::new()));
        }
    }
    Ok(doc)
}

fn append(svc: &mut Mapping, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    let entry = svc
        .entry(key.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    match entry {
        Value::Sequence(s) => s.extend(items),
        Value::Null => *entry = Value::Sequence(items),
        other => {
            let mut s = vec![other.clone()];
            s.extend(items);
            *other = Value::Sequence(s);
        }
    }
}

/// Lines to insert after a line (0-based), in order, and replaced lines.
#[derive(Default)]
struct Edits {
    after: BTreeMap<usize, Vec<String>>,
    replace: BTreeMap<usize, String>,
}

/// The edits for one service.
fn service_edits(lines: &Lines<'_>, h: &Hardening, edits: &mut Edits) -> Result<(), String> {
    let Edits { after, replace } = edits;
    let path = ["services", h.service.as_str()];
    let svc = lines
        .key(&path)
        .ok_or_else(|| format!("services.{} was not found in the text", h.service))?;
    if !svc.rest.is_empty() {
        return Err(format!("services.{} is written inline", h.service));
    }
    let ci = lines
        .children(&path)
        .next()
        .map_or(svc.indent + 2, |k| k.indent);
    let pad = " ".repeat(ci);
    let end = lines.block_end(svc);
    let mut tail = Vec::new();
    match lines.key(&["services", &h.service, "read_only"]) {
        Some(k) if k.rest == "true" => {}
        Some(k) => {
            replace.insert(k.line, format!("{pad}read_only: true"));
        }
        None => tail.push(format!("{pad}read_only: true")),
    }
    let tmpfs = h
        .tmpfs
        .iter()
        .map(|t| yaml(&vec![t]).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let volumes = h
        .volumes
        .iter()
        .map(|v| yaml(&vec![v]).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    for (key, items) in [("tmpfs", tmpfs), ("volumes", volumes)] {
        if items.is_empty() {
            continue;
        }
        match lines.key(&["services", &h.service, key]) {
            Some(k) if k.rest.is_empty() => {
                let ii = lines
                    .item_indent(k)
                    .ok_or_else(|| format!("services.{}.{key} has no block list", h.service))?;
                let block = lines.block_end(k);
                after
                    .entry(block)
                    .or_default()
                    .extend(items.iter().map(|i| indent(i, ii)));
            }
            Some(k) => {
                // `tmpfs: /run` or `tmpfs: [/run, /tmp]`: the line becomes a
                // block list of the same items followed by the new ones.
                let existing = inline_items(&k.rest)
                    .ok_or_else(|| format!("services.{}.{key} is written inline", h.service))?;
                replace.insert(k.line, format!("{pad}{key}:"));
                after
                    .entry(k.line)
                    .or_default()
                    .extend(existing.iter().chain(&items).map(|i| indent(i, ci + 2)));
            }
            None => {
                tail.push(format!("{pad}{key}:"));
                tail.extend(items.iter().map(|i| indent(i, ci + 2)));
            }
        }
    }
    after.entry(end).or_default().extend(tail);
    Ok(())
}

/// The text with the changes inserted; `Err(why)` when a place cannot be
/// patched as text.
fn textual(text: &str, services: &[Hardening]) -> Result<String, String> {
    let lines = Lines::new(text);
    let mut edits = Edits::default();
    for h in services {
        service_edits(&lines, h, &mut edits)?;
    }
    let Edits { after, replace } = &mut edits;
    let named: Vec<&String> = services.iter().flat_map(|h| &h.named).collect();
    let mut trailer = Vec::new();
    if !named.is_empty() {
        let entries = |ci: usize| -> Vec<String> {
            named
                .iter()
                .map(|n| format!("{}{}: {{}}", " ".repeat(ci), scalar(n)))
                .collect()
        };
        match lines.key(&["volumes"]) {
            Some(k) if k.rest.is_empty() => {
                let ci = lines.children(&["volumes"]).next().map_or(2, |c| c.indent);
                after
                    .entry(lines.block_end(k))
                    .or_default()
                    .extend(entries(ci));
            }
            Some(k) if k.rest == "{}" => {
                replace.insert(k.line, "volumes:".into());
                after.entry(k.line).or_default().extend(entries(2));
            }
            Some(_) => return Err("the top-level volumes: is written inline".into()),
            None => {
                trailer.push("volumes:".to_owned());
                trailer.extend(entries(2));
            }
        }
    }
    let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::new();
    let all = lines.lines();
    // `split` yields an empty last line after a final newline.
    let count = if text.ends_with('\n') {
        all.len() - 1
    } else {
        all.len()
    };
    for (n, l) in all.iter().take(count).enumerate() {
        out.push_str(replace.get(&n).map_or(*l, String::as_str));
        out.push_str(eol);
        for ins in after.get(&n).into_iter().flatten() {
            out.push_str(ins);
            out.push_str(eol);
        }
    }
    for t in trailer {
        out.push_str(&t);
        out.push_str(eol);
    }
    Ok(out)
}

/// The items of an inline value that is a scalar or a flow list of
/// scalars, each as a one-item YAML sequence; `None` for anything else.
fn inline_items(rest: &str) -> Option<Vec<String>> {
    let items = match serde_yaml_ng::from_str::<Value>(rest).ok()? {
        Value::Sequence(s) => s,
        v @ (Value::String(_) | Value::Number(_)) => vec![v],
        _ => return None,
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(_) | Value::Number(_) => yaml(&vec![i]).ok(),
            _ => None,
        })
        .collect()
}

/// A YAML scalar for `s` (quoted when it needs to be).
fn scalar(s: &str) -> String {
    crate::render::yaml::to_string(s).map_or_else(|_| format!("{s:?}"), |y| y.trim_end().to_owned())
}

/// `yaml` (one sequence item, maybe several lines) moved `by` columns
/// right, without its final newline.
fn indent(yaml: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    yaml.trim_end()
        .lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
