//! Mistakes on the command line surface at once, once, and in words
//! (issue #30, item 8): bad values are refused before anything is created
//! (exit 2), a flag typed after IMAGE gets a hint, an error's cause is
//! printed once, and a closed stdout ends quietly.

use std::process::{Command, Stdio};

use roprof_tests::{WRITER_IMAGE, require_privileged, roprof, roprof_bin, roprof_containers};

#[test]
fn bad_values_are_refused_before_anything_runs() {
    require_privileged();
    let before = roprof_containers();
    let (code, out, err) = roprof(["profile", "--ringbuf-bytes", "1000", WRITER_IMAGE, "true"]);
    assert_eq!(
        code, 2,
        "a ring buffer of 1000 bytes is a usage error:\n{err}"
    );
    assert!(
        err.contains("power of two"),
        "the error says what a ring buffer size must be:\n{err}"
    );
    assert!(out.is_empty(), "nothing on stdout:\n{out}");
    let file = std::env::temp_dir().join(format!("roprof-mistakes-{}", std::process::id()));
    std::fs::write(&file, "not a directory").expect("temp file");
    let (code, _, err) = roprof([
        "profile",
        "-o",
        file.to_str().expect("utf-8 temp path"),
        WRITER_IMAGE,
        "true",
    ]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        code, 2,
        "-o naming a file is a usage error, up front:\n{err}"
    );
    assert!(
        err.contains("is not a directory"),
        "the error names the problem:\n{err}"
    );
    assert_eq!(
        roprof_containers(),
        before,
        "no container was created for either mistake"
    );
}

#[test]
fn a_flag_after_the_image_gets_a_hint() {
    require_privileged();
    let (_, _, err) = roprof([
        "profile",
        "--duration",
        "2s",
        WRITER_IMAGE,
        "--formt",
        "docker",
    ]);
    assert!(
        err.contains("`--formt` comes after IMAGE") && err.contains("--format"),
        "the hint names the option it looks like:\n{err}"
    );
}

#[test]
fn an_error_prints_each_cause_once() {
    require_privileged();
    let file = std::env::temp_dir().join(format!("roprof-truncated-{}.json", std::process::id()));
    std::fs::write(&file, "{\"schema_version\": 2, \"image\": {").expect("temp file");
    let (code, _, err) = roprof(["render", file.to_str().expect("utf-8 temp path")]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 1, "a truncated report is an error:\n{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("roprof: error:"))
        .unwrap_or_else(|| panic!("an error line:\n{err}"));
    assert!(
        line.contains("EOF while parsing"),
        "the cause is named: {line}"
    );
    assert_eq!(
        line.matches("EOF while parsing").count(),
        1,
        "the cause is printed once: {line}"
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    require_privileged();
    let out = Command::new("sh")
        .args(["-c", "\"$ROPROF\" man | head -n 1 >/dev/null"])
        .env("ROPROF", roprof_bin())
        .stdin(Stdio::null())
        .output()
        .expect("sh runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("Broken pipe") && !err.contains("error"),
        "`roprof man | head` prints nothing on stderr:\n{err}"
    );
}
