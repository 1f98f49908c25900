//! Commands and arguments survive every format where it is read (issue 30):
//! random words that YAML 1.1 would retype (`no`, `on`, `0x1F`, dates,
//! `~`), that compose would interpolate (`$HOME`, `${X}`), or that quote,
//! comment or nest, are rendered by `roprof render` and re-read by the
//! tools users paste into: the compose file by `docker-compose config`
//! (`PyYAML`, YAML 1.1, with compose's `$` rules), the Kubernetes Deployment
//! by `PyYAML`'s YAML 1.1 loader (kubectl reads YAML 1.1 too, through
//! go-yaml v2; its client-side parsing needs an API server for discovery,
//! which this machine cannot run) and by k8s-openapi.

use std::{path::Path, process::Command};

use proptest::prelude::*;
use roprof_tests::{TempDir, roprof, unique_name};

/// Words each of which some reader would take for something else.
const TRICKY: &[&str] = &[
    "no",
    "yes",
    "on",
    "off",
    "y",
    "N",
    "~",
    "null",
    "true",
    "0x1F",
    "010",
    "1e3",
    "2024-01-01",
    "12:30",
    "$HOME",
    "${X}",
    "$$",
    "a b",
    "'q'",
    "\"dq\"",
    "#c",
    "- x",
    ": y",
    "\\",
    "é",
    "{a}",
    "[b]",
    "*x",
    "&y",
    "!t",
    "%p",
    "@x",
    "`id`",
    "",
    "\t",
    "two\nlines",
    "--daemonize",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(TRICKY).prop_map(str::to_owned),
        1 => "[a-z0-9$ :#'\"-]{0,8}",
    ]
}

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} must be installed (cargo xtask setup): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Renders the report at `path` as `format`.
fn render(format: &str, path: &Path) -> String {
    let (code, out, err) = roprof(["render", "--format", format, path.to_str().unwrap()]);
    assert_eq!(code, 0, "render --format {format}: {err}");
    out
}

fn words(v: &serde_json::Value) -> Option<Vec<String>> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(vec![s.clone()]),
        v => Some(
            v.as_array()
                .unwrap_or_else(|| panic!("a list of words: {v}"))
                .iter()
                .map(|w| {
                    w.as_str()
                        .unwrap_or_else(|| panic!("{w} was retyped: not a string"))
                        .to_owned()
                })
                .collect(),
        ),
    }
}

/// `PyYAML`'s YAML 1.1 reading of `yaml`'s documents, as JSON.
fn yaml11(yaml: &str, dir: &Path) -> Vec<serde_json::Value> {
    let file = dir.join("in.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = tool(
        "python3",
        &[
            "-c",
            "import sys, json, yaml\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
             print(json.dumps(docs, default=str))",
            file.to_str().unwrap(),
        ],
    );
    serde_json::from_str(&out).expect("python printed JSON")
}

fn check(entrypoint: Option<&str>, command: &[String]) -> Result<(), TestCaseError> {
    let dir = TempDir(std::env::temp_dir().join(unique_name("roundtrip")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let base = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/v1-reports/redis.json"
    ));
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base).unwrap()).unwrap();
    r["run_options"]["command"] = serde_json::json!(command);
    r["run_options"]["entrypoint"] = serde_json::json!(entrypoint);
    let report = dir.0.join("report.json");
    std::fs::write(&report, r.to_string()).unwrap();

    // Compose: what docker-compose makes of the file; `$$` is compose's `$`.
    let compose = dir.0.join("compose.yaml");
    std::fs::write(&compose, render("compose", &report)).unwrap();
    let config = tool(
        "docker-compose",
        &["-f", compose.to_str().unwrap(), "config"],
    );
    let parsed = yaml11(&config, &dir.0);
    let svc = parsed[0]["services"]
        .as_object()
        .and_then(|s| s.values().next())
        .cloned()
        .unwrap_or_default();
    // Compose and the kubelet both read `$$` as `$`.
    let unescape =
        |w: Vec<String>| -> Vec<String> { w.into_iter().map(|s| s.replace("$$", "$")).collect() };
    let got_cmd = words(&svc["command"]).map(unescape).unwrap_or_default();
    prop_assert_eq!(&got_cmd, command, "compose command:\n{}", config);
    let got_ep = words(&svc["entrypoint"]).map(unescape);
    prop_assert_eq!(
        got_ep,
        entrypoint.map(|e| vec![e.to_owned()]),
        "compose entrypoint:\n{}",
        config
    );

    // Kubernetes: YAML 1.1, and k8s-openapi; the kubelet expands `$(VAR)`
    // and reads `$$` as `$` in command and args.
    let k8s = render("k8s", &report);
    let docs = yaml11(&k8s, &dir.0);
    let deploy = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("a Deployment:\n{k8s}"));
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    prop_assert_eq!(
        words(&c["command"]).map(unescape),
        entrypoint.map(|e| vec![e.to_owned()]),
        "k8s command:\n{}",
        k8s
    );
    prop_assert_eq!(
        words(&c["args"]).map(unescape).unwrap_or_default(),
        command.to_vec(),
        "k8s args:\n{}",
        k8s
    );
    let typed: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(deploy.clone()).expect("k8s-openapi reads the Deployment");
    let tc = &typed.spec.template.spec.expect("a pod spec").containers[0];
    prop_assert_eq!(
        unescape(tc.args.clone().unwrap_or_default()),
        command.to_vec()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn commands_survive_docker_compose_and_yaml_1_1_readers(
        entrypoint in proptest::option::of(word().prop_filter("a program", |w| !w.is_empty())),
        command in proptest::collection::vec(word(), 1..4),
    ) {
        check(entrypoint.as_deref(), &command)?;
    }
}
