//! The library's layers, checked over its source: each top-level module of
//! `profiler/src` may name (through `crate::…`) only the modules below it
//! in [`LAYERS`], so there is no import circle and no layer reaches up.
//! ARCHITECTURE.md explains the order; this test keeps it true.
//!
//! The command-line layer (`src/cli/`, declared by `src/main.rs`) is the
//! binary's, above all of these: it reaches the library as `roprof::…`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Bottom first. A module may import the ones before it.
const LAYERS: [&str; 15] = [
    "host",
    "model",
    "environment",
    "analysis",
    "render",
    "runtime",
    "trace",
    "doctor",
    "session",
    "request",
    "compose",
    "kube",
    "watch",
    "guard",
    "gate",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/model/plan.rs` → `model`,
/// `src/environment_tests.rs` → `environment`).
fn layer_of(file: &Path) -> String {
    let rel = file.strip_prefix(src()).expect("below src");
    let first = rel
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let stem = first.strip_suffix(".rs").unwrap_or(&first);
    stem.strip_suffix("_tests").unwrap_or(stem).to_owned()
}

/// Source without `//` comments (doc links may name any module).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level names after each `crate::` (`crate::{a::b, c}` → a, c).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(first_ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.extend(first_ident(&item));
        } else {
            out.extend(first_ident(after));
        }
        rest = after;
    }
    out
}

fn first_ident(s: &str) -> Option<String> {
    let id: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!id.is_empty() && id != "self").then_some(id)
}

#[test]
fn no_module_imports_a_layer_above_it() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    let mut seen_layers = BTreeSet::new();
    for f in &files {
        let layer = layer_of(f);
        if matches!(layer.as_str(), "lib" | "main" | "cli") {
            continue;
        }
        let Some(rank) = LAYERS.iter().position(|l| *l == layer) else {
            panic!(
                "{} is in module `{layer}`, which LAYERS (tests/layers.rs) and ARCHITECTURE.md \
                 do not place: add it where it belongs",
                f.display()
            );
        };
        seen_layers.insert(layer.clone());
        let text = std::fs::read_to_string(f).expect("readable source");
        for r in crate_refs(&code(&text)) {
            if r == layer {
                continue;
            }
            match LAYERS.iter().position(|l| *l == r) {
                Some(i) if i < rank => {}
                Some(_) => wrong.push(format!(
                    "{} ({layer}) imports {r}, which is not below it",
                    f.display()
                )),
                None => wrong.push(format!(
                    "{} ({layer}) names crate::{r}, which is not a layer",
                    f.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "layering broken (see ARCHITECTURE.md):\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        seen_layers.len(),
        LAYERS.len(),
        "every layer in LAYERS has code"
    );
}

#[test]
fn lib_rs_names_every_layer_and_nothing_else() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let layers: BTreeSet<&str> = LAYERS.into_iter().collect();
    assert_eq!(declared, layers, "lib.rs's modules are the layers");
}

#[test]
fn the_reference_parser_sees_groups_and_paths() {
    let refs = crate_refs("use crate::{model::{A, B}, host};\nlet x = crate::trace::f();");
    let want: BTreeSet<String> = ["model", "host", "trace"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(refs, want);
}
