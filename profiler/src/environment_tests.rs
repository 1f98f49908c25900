//! Tests of `-e`/`--env-file` parsing, resolution as `docker run` does it,
//! and the output policy.

use std::path::Path;

use super::{ContainerEnv, EnvError, apply_policy, parse_env_args, parse_env_file};
use crate::model::{
    CPath, EnvValues, EnvVar, Exclusion, PathObservation, Report, Round, RunOptions,
};

#[expect(
    clippy::unnecessary_wraps,
    reason = "the lookup signature ContainerEnv::resolve takes"
)]
fn none(_: &str) -> Result<Option<String>, EnvError> {
    Ok(None)
}

#[expect(
    clippy::unnecessary_wraps,
    reason = "the lookup signature ContainerEnv::resolve takes"
)]
fn with_home(name: &str) -> Result<Option<String>, EnvError> {
    Ok((name == "HOME_SET").then(|| "from-roprof".to_owned()))
}

fn var(name: &str, value: Option<&str>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: value.map(str::to_owned),
    }
}

#[test]
fn env_files_parse_as_docker_reads_them() {
    let p = Path::new("/x/.env");
    for (text, want) in [
        (&b"A=1\nB=two words\n"[..], vec!["A=1", "B=two words"]),
        (b"# comment\n\n   \n  C=3", vec!["C=3"]),
        (b"\xEF\xBB\xBFD=4\r\nE=5\r\n", vec!["D=4", "E=5"]),
        (b"Q=\"quoted\" # kept", vec!["Q=\"quoted\" # kept"]),
        (b"EQ=a=b=c", vec!["EQ=a=b=c"]),
        (b"EMPTY=", vec!["EMPTY="]),
        (b"  \tLEAD=x", vec!["LEAD=x"]),
        (b"HOME_SET\nNOT_SET\n", vec!["HOME_SET=from-roprof"]),
    ] {
        let got = parse_env_file(text, p, with_home).expect("parses");
        assert_eq!(got, want, "file {:?}", String::from_utf8_lossy(text));
    }
}

#[test]
fn bad_env_files_name_the_line_and_never_quote_it() {
    let p = Path::new("/x/.env");
    let err = |text: &[u8]| {
        parse_env_file(text, p, none)
            .expect_err("must refuse")
            .to_string()
    };
    let e = err(b"OK=1\n=hunter2\n");
    assert!(e.contains("line 2") && e.contains("/x/.env"), "{e}");
    assert!(!e.contains("hunter2"), "the value is not echoed: {e}");
    let e = err(b"my secret pass\n");
    assert!(e.contains("line 1") && e.contains("whitespace"), "{e}");
    assert!(!e.contains("secret"), "a bare line is not echoed: {e}");
    let e = err(b"A=1\nB=\xff\n");
    assert!(e.contains("line 2") && e.contains("UTF-8"), "{e}");
}

#[test]
fn env_args_split_at_the_first_equals_sign() {
    let got = parse_env_args(&["A=1=2".into(), "B".into(), "C=".into()]).expect("parses");
    assert_eq!(
        got,
        [var("A", Some("1=2")), var("B", None), var("C", Some(""))]
    );
    let e = parse_env_args(&["A=1".into(), "=hunter2".into()])
        .expect_err("no name")
        .to_string();
    assert!(e.contains("argument 2") && !e.contains("hunter2"), "{e}");
}

#[test]
fn resolution_puts_files_first_and_passes_names_through() {
    let dir = std::env::temp_dir().join(format!("roprof-envtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("app.env");
    std::fs::write(&file, "F=file\nA=from-file\n").expect("env file");
    let files = vec![file.to_string_lossy().into_owned()];
    let env = ContainerEnv::resolve(
        &[
            var("A", Some("from-e")),
            var("HOME_SET", None),
            var("GONE", None),
        ],
        &files,
        with_home,
    )
    .expect("resolves");
    assert_eq!(
        env.entries(),
        [
            "F=file",
            "A=from-file",
            "A=from-e",
            "HOME_SET=from-roprof",
            "GONE"
        ],
        "files first, -e after (the engine keeps the last), an unset name stays bare"
    );
    assert_eq!(env.unset_names(), ["GONE"]);
    let dbg = format!("{env:?}");
    assert!(
        !dbg.contains("from-") && !dbg.contains("file\""),
        "Debug shows names only: {dbg}"
    );
    let missing = ContainerEnv::resolve(&[], &[dir.join("nope").display().to_string()], none)
        .expect_err("missing file");
    assert!(missing.to_string().contains("nope"), "{missing}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn report_with_secret_in_logs() -> Report {
    let mut r = Report {
        run_options: RunOptions {
            env: vec![
                var("DB_PASSWORD", Some("hunter2-secret")),
                var("N", Some("1")),
            ],
            env_values: EnvValues::Revealed,
            ..RunOptions::default()
        },
        ..Report::default()
    };
    r.run.logs_tail = vec!["connecting with hunter2-secret and file-s3cret".into()];
    r.run.notes = vec!["saw hunter2-secret".into()];
    r.rounds = vec![Round {
        differences: vec!["hunter2-secret differs".into()],
        action: "file-s3cret".into(),
        ..Round::default()
    }];
    r.plan.excluded = vec![Exclusion {
        path: CPath::from("/tmp/x"),
        reason: "because file-s3cret".into(),
    }];
    r
}

#[test]
fn policy_withholds_values_and_scrubs_them_from_free_text() {
    let mut r = report_with_secret_in_logs();
    let file_env = ContainerEnv::resolve(&[], &[], none).expect("empty");
    let mut env = file_env.clone();
    env.entries.push("FROM_FILE=file-s3cret".into());
    let in_paths = apply_policy(&mut r, &env, false);
    assert!(in_paths.is_empty());
    assert_eq!(r.run_options.env_values, EnvValues::Withheld);
    assert_eq!(
        r.run_options.env,
        [var("DB_PASSWORD", None), var("N", None)]
    );
    let json = serde_json::to_string(&r).expect("json");
    assert!(
        !json.contains("hunter2-secret") && !json.contains("file-s3cret"),
        "{json}"
    );
    assert!(
        r.run.logs_tail[0].contains("<DB_PASSWORD withheld>")
            && r.run.logs_tail[0].contains("<FROM_FILE withheld>"),
        "{:?}",
        r.run.logs_tail
    );
}

#[test]
fn policy_keeps_short_values_and_paths_and_reports_the_paths() {
    let mut r = report_with_secret_in_logs();
    r.run.logs_tail = vec!["workers=1".into()];
    r.paths = vec![PathObservation {
        path: CPath::from("/run/hunter2-secret.lock"),
        ..PathObservation::default()
    }];
    let names = apply_policy(&mut r, &ContainerEnv::default(), false);
    assert_eq!(names, ["DB_PASSWORD"], "the path holds the value: warn");
    assert_eq!(
        r.run.logs_tail,
        ["workers=1"],
        "a 1-byte value is not scrubbed"
    );
    assert_eq!(r.paths[0].path, CPath::from("/run/hunter2-secret.lock"));
}

#[test]
fn reveal_leaves_the_report_alone() {
    let mut r = report_with_secret_in_logs();
    let before = r.clone();
    assert!(apply_policy(&mut r, &ContainerEnv::default(), true).is_empty());
    assert_eq!(r, before);
}
