use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_yaml_ng::Value;

use super::{is_plain_safe, to_string};

/// Whether a plain scalar `s` resolves to something other than a string
/// under YAML 1.1's types (bool, null, int, float, timestamp, merge,
/// value), written from the type repository's patterns and independent
/// of the writer's own rule. Deliberately broad on numbers: anything that
/// starts like one counts.
fn yaml11_retypes(s: &str) -> bool {
    const WORDS: [&str; 22] = [
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if s.is_empty() || WORDS.contains(&s) || ["~", "null", "Null", "NULL", "<<", "="].contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let first = body.chars().next();
    // int (2, 8, 10, 16, 60), float (incl. .inf/.nan) and timestamps all
    // begin with a digit or a dot once the sign is gone.
    first.is_some_and(|c| c.is_ascii_digit() || c == '.')
}

fn parse(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

#[test]
fn words_yaml_1_1_retypes_are_quoted_and_read_back_as_strings() {
    let cases = [
        "no",
        "No",
        "yes",
        "on",
        "OFF",
        "y",
        "n",
        "~",
        "null",
        "true",
        "",
        "6380",
        "0755",
        "0x1f",
        "1_000",
        "1.5",
        "1e3",
        ".inf",
        "-.inf",
        ".NaN",
        "2001-12-14",
        "190:20:30",
        "-1",
        "+1",
        "<<",
        "=",
        "-",
        "---",
        "- x",
        "a: b",
        "a:",
        "#x",
        "a #b",
        " lead",
        "trail ",
        "it's",
        "say \"hi\"",
        "$HOME",
        "*ref",
        "&anchor",
        "!tag",
        "%dir",
        "@x",
        "`x`",
        "{a}",
        "[a]",
        "a,b",
        "|",
        ">",
        "?",
        "ü",
        "\u{85}",
        "\u{2028}",
        "tab\there",
        "nul\0",
        "cr\rlf",
        "bell\u{7}",
    ];
    for s in cases {
        let text = to_string(&vec![s]).expect("serialisable");
        let line = text.trim_end_matches('\n');
        let written = line.strip_prefix("- ").unwrap_or(line);
        if yaml11_retypes(s) {
            assert!(
                written.starts_with(['\'', '"']),
                "{s:?} must be quoted for YAML 1.1 readers, got {text:?}"
            );
        }
        assert_eq!(
            parse(&text),
            Value::Sequence(vec![Value::from(s)]),
            "{s:?} must read back as the same string from {text:?}"
        );
    }
}

#[test]
fn plain_where_it_is_safe() {
    for s in [
        "redis-server",
        "--daemonize",
        "/etc/redis/redis.conf",
        "-c",
        "app",
        "Memory",
        "/data:rw,noexec",
        "KEY=value",
    ] {
        assert!(is_plain_safe(s), "{s:?} needs no quotes");
    }
}

#[test]
fn document_shape_matches_the_usual_block_style() {
    let mut m = BTreeMap::new();
    m.insert("command", vec!["redis-server", "--daemonize", "no"]);
    m.insert("empty", vec![]);
    let text = to_string(&m).expect("serialisable");
    assert_eq!(
        text,
        "command:\n- redis-server\n- --daemonize\n- 'no'\nempty: []\n"
    );
    let script = serde_json::json!({"c": [{"name": "x", "args": ["set -e\ncp a b\n", "x"]}]});
    let text = to_string(&script).expect("serialisable");
    assert_eq!(
        text,
        "c:\n- args:\n  - |\n    set -e\n    cp a b\n  - x\n  name: x\n"
    );
    assert_eq!(
        parse(&text),
        serde_yaml_ng::to_value(&script).expect("value")
    );
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "no",
            "yes",
            "on",
            "off",
            "~",
            "null",
            "6380",
            "0755",
            "1.0",
            "2001-12-14",
            "-",
            "--",
            "--daemonize",
            "$X",
            "$$",
            "${A}",
            "$(B)",
            "a: b",
            "#",
            "'",
            "\"",
            "\\",
            "\n",
            "\t",
            "\r",
            " ",
            "ü",
            "\u{85}",
            "\u{2028}",
            "|",
            ">",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,12}",
        any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 0..4).prop_map(|w| w.concat())
}

proptest! {
    /// Every string, alone or in nested sequences and mappings, reads back
    /// as itself; and what is written plain is never one YAML 1.1 retypes.
    #[test]
    fn any_strings_round_trip(
        items in prop::collection::vec(text(), 0..6),
        keys in prop::collection::btree_map(text(), text(), 0..4),
    ) {
        let doc = serde_json::json!({"items": items, "keys": keys, "nested": [{"a": items}]});
        let written = to_string(&doc).expect("serialisable");
        let back = parse(&written);
        prop_assert_eq!(back, serde_yaml_ng::to_value(&doc).expect("value"), "{}", written);
        for s in items.iter().chain(keys.keys()).chain(keys.values()) {
            if is_plain_safe(s) {
                prop_assert!(!yaml11_retypes(s), "{s:?} is plain but YAML 1.1 retypes it");
            }
        }
    }
}
