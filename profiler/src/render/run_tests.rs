//! Every format carries the whole run (issue 30): random commands,
//! arguments, entrypoints, users, working directories, ports and variable
//! names go through every renderer and are read back as each output's
//! reader reads them (the shell's words, compose's `$$`, the kubelet's
//! `$$` and `command`/`args`, a typed `k8s-openapi` Deployment).

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Container};
use proptest::prelude::*;
use serde_yaml_ng::Value;

use super::{Format, K8sNames, RenderOptions, compose, docker, k8s, render, render_with};
use crate::model::{EnvVar, MountKind, Report, RunOptions};

/// What the container runs, as Docker runs it: ENTRYPOINT + CMD (`None`
/// keeps the image's).
#[derive(Debug, PartialEq)]
struct Run {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    workdir: Option<String>,
    env: Vec<String>,
}

fn expected(r: &RunOptions) -> Run {
    let cmd = (!r.command.is_empty()).then(|| r.command.clone());
    let (entrypoint, cmd) = match r.entrypoint.as_deref() {
        // `--entrypoint ''`: the words are the whole command.
        Some("") => (cmd, None),
        Some(e) => (Some(vec![e.to_owned()]), cmd),
        None => (None, cmd),
    };
    Run {
        entrypoint,
        cmd,
        user: r.user.clone(),
        workdir: r.workdir.clone(),
        env: r.env.iter().map(|v| v.name.clone()).collect(),
    }
}

fn from_docker(report: &Report) -> Run {
    let line = docker::docker_command(report);
    let words = shlex::split(&line).unwrap_or_else(|| panic!("the shell splits {line:?}"));
    assert_eq!(words[..3], ["docker", "run", "--read-only"], "{line}");
    // Every option roprof writes takes a value: pairs up to the image.
    let mut pairs = Vec::new();
    let mut i = 3;
    while words[i].starts_with('-') {
        pairs.push((words[i].as_str(), words[i + 1].clone()));
        i += 2;
    }
    assert_eq!(
        words[i], report.image.image,
        "the image after the options: {line}"
    );
    let flag = |f: &str| {
        pairs
            .iter()
            .filter(|(k, _)| *k == f)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let tail: Vec<String> = words[i + 1..].to_vec();
    let entry = flag("--entrypoint").pop();
    let cmd = (!tail.is_empty()).then_some(tail);
    let (entrypoint, cmd) = match entry.as_deref() {
        Some("") => (cmd, None),
        Some(e) => (Some(vec![e.to_owned()]), cmd),
        None => (None, cmd),
    };
    Run {
        entrypoint,
        cmd,
        user: flag("-u").pop(),
        workdir: flag("-w").pop(),
        env: flag("-e"),
    }
}

fn from_compose(text: &str) -> Run {
    let f: compose::ComposeFile =
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("compose parses ({e}):\n{text}"));
    let svc = &f.services[compose::SERVICE];
    // Compose reads `$$` as `$`; a lone `$` would be interpolated.
    let lit = |s: &String| {
        assert!(
            !s.replace("$$", "").contains('$'),
            "an unescaped $ in {s:?}:\n{text}"
        );
        s.replace("$$", "$")
    };
    let all = |v: &Vec<String>| v.iter().map(lit).collect::<Vec<_>>();
    let entry = svc.entrypoint.as_ref().map(all);
    let cmd = svc.command.as_ref().map(all);
    let (entrypoint, cmd) = match entry {
        Some(e) if e == [""] => (cmd, None),
        e => (e, cmd),
    };
    Run {
        entrypoint,
        cmd,
        user: svc.user.as_ref().map(lit),
        workdir: svc.working_dir.as_ref().map(lit),
        env: all(&svc.environment),
    }
}

/// The kubelet's reading of `command`/`args`: `$$` is `$` (no variable is
/// defined here, and `$(X)` of an undefined one stays as written).
fn kube_literal(s: &String) -> String {
    assert!(
        !s.replace("$$", "").contains("$("),
        "an unescaped $( in {s:?}: the kubelet would expand it"
    );
    s.replace("$$", "$")
}

fn from_container(c: &Container, user: Option<&String>) -> Run {
    let all = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.iter().map(kube_literal).collect());
    Run {
        entrypoint: all(&c.command),
        cmd: all(&c.args),
        // `-u` is numeric here (see `user()`): runAsUser[:runAsGroup].
        user: user.map(|_| {
            let sc = c.security_context.clone().unwrap_or_default();
            let uid = sc.run_as_user.expect("runAsUser for -u");
            sc.run_as_group
                .map_or(uid.to_string(), |g| format!("{uid}:{g}"))
        }),
        workdir: c.working_dir.clone(),
        env: c.env.iter().flatten().map(|e| e.name.clone()).collect(),
    }
}

fn from_k8s(text: &str, names: &K8sNames, user: Option<&String>) -> Run {
    let d: Deployment =
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("k8s parses ({e}):\n{text}"));
    assert_eq!(d.metadata.name.as_deref(), Some(names.workload.as_str()));
    let spec = d.spec.template.spec.expect("pod spec");
    let c = &spec.containers[0];
    assert_eq!(c.name, names.container);
    from_container(c, user)
}

fn from_kustomize(text: &str, names: &K8sNames, user: Option<&String>) -> Run {
    let v: Value =
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("patch parses ({e}):\n{text}"));
    assert_eq!(
        v["metadata"]["name"].as_str(),
        Some(names.workload.as_str())
    );
    let c: Container =
        serde_yaml_ng::from_value(v["spec"]["template"]["spec"]["containers"][0].clone())
            .expect("a container");
    assert_eq!(c.name, names.container);
    from_container(&c, user)
}

fn report_for(run: RunOptions) -> Report {
    let mut r = Report {
        schema_version: crate::model::SCHEMA_VERSION,
        ..Report::default()
    };
    r.image.image = "roprof-fixture/redis:latest".into();
    r.run.mode = crate::model::RunMode::Profile;
    r.run_options = run;
    let mut m = crate::model::PlannedMount {
        target: crate::model::CPath::from("/data"),
        kind: MountKind::Tmpfs,
        options: crate::model::MountOptions::default(),
        shadows_image_content: false,
        evidence: crate::model::Evidence::default(),
    };
    m.options.mode = 0o1777;
    r.plan.mounts.push(m);
    r
}

/// Words that trip YAML 1.1, compose and the kubelet, mixed with anything.
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
            "1e3",
            "2001-12-14",
            "--",
            "$X",
            "$$",
            "${A}",
            "$(B)",
            "$DB_PASSWORD",
            "a: b",
            "#",
            "'",
            "\"",
            "\\",
            "\n",
            "*",
            "&",
            "!",
            "%",
            "@",
            "`",
            "|",
            ">",
            " ",
            "\t",
            "ü",
            "-",
        ])
        .prop_map(str::to_owned),
        "[ -~]{1,10}",
        "[^\\x00]{1,6}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..4).prop_map(|w| w.concat())
}

fn run_options() -> impl Strategy<Value = RunOptions> {
    (
        prop::collection::vec(text(), 0..5),
        prop::option::of(prop_oneof![Just(String::new()), text()]),
        prop::option::of((0u32..70000, prop::option::of(0u32..70000))),
        prop::option::of(text()),
        prop::collection::vec((1u16.., prop::bool::ANY), 0..3),
        prop::collection::vec("[A-Z_][A-Z0-9_]{0,8}", 0..3),
    )
        .prop_map(
            |(command, entrypoint, user, workdir, ports, env)| RunOptions {
                command,
                entrypoint,
                user: user.map(|(u, g)| g.map_or(u.to_string(), |g| format!("{u}:{g}"))),
                workdir: workdir.map(|w| format!("/{w}")),
                publish: ports
                    .into_iter()
                    .map(|(p, udp)| format!("127.0.0.1:{p}:{p}{}", if udp { "/udp" } else { "" }))
                    .collect(),
                env: env
                    .into_iter()
                    .map(|name| EnvVar { name, value: None })
                    .collect(),
                ..RunOptions::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_format_carries_the_run(run in run_options(), named in prop::bool::ANY) {
        // `--entrypoint ''` with no words runs nothing: Docker refuses it.
        prop_assume!(!(run.entrypoint.as_deref() == Some("") && run.command.is_empty()));
        let report = report_for(run.clone());
        let want = expected(&run);
        let names = if named {
            K8sNames::new("x", Some("web"), Some("server"))
        } else {
            K8sNames::for_image(&report.image.image)
        };
        prop_assert_eq!(&names.workload, if named { "web" } else { "redis" });
        prop_assert_eq!(&from_docker(&report), &want, "docker");
        let c = render(&report, Format::Compose).expect("compose");
        prop_assert_eq!(&from_compose(&c), &want, "compose:\n{}", c);
        // Kubernetes has no user names and no "keep the image's user":
        // compare the user where it was numeric (always, here).
        let user = run.user.as_ref();
        let options = RenderOptions {
            k8s: Some(names.clone()),
            ..RenderOptions::default()
        };
        for f in [Format::K8s, Format::K8sRestricted] {
            let t = render_with(&report, f, &options).expect("k8s");
            let mut got = from_k8s(&t, &names, user);
            got.user = got.user.filter(|_| f == Format::K8s);
            let mut want = expected(&run);
            want.user = want.user.filter(|_| f == Format::K8s);
            prop_assert_eq!(got, want, "{}:\n{}", f, t);
        }
        let t = render_with(&report, Format::Kustomize, &options).expect("kustomize");
        prop_assert_eq!(&from_kustomize(&t, &names, user), &want, "kustomize:\n{}", t);
        // The table and the Markdown show the docker line.
        let line = docker::docker_command(&report);
        prop_assert!(render(&report, Format::Table).expect("table").contains(&line));
        let md = render(&report, Format::Markdown).expect("markdown");
        prop_assert!(md.contains(&line), "markdown:\n{}", md);
    }
}

#[test]
fn redis_daemonize_no_stays_a_string_everywhere() {
    let report = report_for(RunOptions {
        command: ["redis-server", "/etc/redis/redis.conf", "--daemonize", "no"]
            .map(str::to_owned)
            .to_vec(),
        ..RunOptions::default()
    });
    for f in [
        Format::Compose,
        Format::K8s,
        Format::K8sRestricted,
        Format::Kustomize,
    ] {
        let text = render(&report, f).expect("renders");
        assert!(
            text.contains("- 'no'"),
            "{f}: `no` must be quoted for YAML 1.1 readers:\n{text}"
        );
    }
    let k8s = render(&report, Format::K8s).expect("renders");
    let d: Deployment = serde_yaml_ng::from_str(&k8s).expect("a Deployment");
    let c = &d.spec.template.spec.expect("pod").containers[0];
    assert_eq!(
        c.args.as_deref(),
        Some(&report.run_options.command[..]),
        "the Deployment runs the profiled command:\n{k8s}"
    );
    assert_eq!(
        c.command, None,
        "the image's entrypoint is kept, as docker kept it"
    );
}

#[test]
fn k8s_names_default_from_the_image_and_are_checked() {
    for (image, name) in [
        ("roprof-fixture/redis", "redis"),
        ("docker.io/library/nginx:1.27", "nginx"),
        ("registry:5000/team/My_App@sha256:abc", "my-app"),
        ("___", "app"),
    ] {
        assert_eq!(K8sNames::for_image(image).workload, name, "{image}");
        assert!(super::check_k8s_name(name).is_ok(), "{name} is a DNS label");
    }
    for bad in ["", "Web", "-web", "web-", "a_b", &"a".repeat(64)] {
        assert!(super::check_k8s_name(bad).is_err(), "{bad:?} is refused");
    }
}

#[test]
fn k8s_dollar_is_kept_literal() {
    let report = report_for(RunOptions {
        entrypoint: Some("sh".into()),
        command: ["-c", "echo $(HOME) $$ $X"].map(str::to_owned).to_vec(),
        ..RunOptions::default()
    });
    let text = k8s::deployment(&report, &K8sNames::named("app")).expect("renders");
    assert!(
        text.contains("echo $$(HOME) $$$$ $$X"),
        "every $ doubled for the kubelet:\n{text}"
    );
}

/// An interrupt before anything was observed (`listing`): the report the
/// session writes then.
fn unobserved() -> Report {
    let mut r = report_for(RunOptions {
        command: vec!["redis-server".into()],
        ..RunOptions::default()
    });
    r.plan.mounts.clear();
    r.run.incomplete = true;
    r.run.incomplete_reason = Some("interrupted by SIGINT during listing".into());
    r.run.notes = vec!["nothing was observed: the plan is empty and must not be used".into()];
    r
}

#[test]
fn an_incomplete_run_that_planned_nothing_prints_no_plan_in_any_format() {
    let r = unobserved();
    for f in Format::ALL {
        let text = render(&r, f).expect("renders");
        assert!(
            !text.contains("No writable mounts needed"),
            "{f} must not say nothing is needed:\n{text}"
        );
        match f {
            Format::Json => {
                let back = super::json::load_report(&text).expect("the report");
                assert!(back.run.incomplete, "the saved report says incomplete");
            }
            Format::Table | Format::Markdown => {
                assert!(
                    text.contains("NO PLAN"),
                    "{f} says there is no plan:\n{text}"
                );
                assert!(text.contains("during listing"), "{f} says why:\n{text}");
                assert!(
                    !text.contains("docker run"),
                    "{f} has no docker line:\n{text}"
                );
            }
            _ => {
                assert!(
                    text.lines().all(|l| l.starts_with("# roprof: ")),
                    "{f} is only comments, nothing to run or apply:\n{text}"
                );
                assert!(
                    text.contains("NO PLAN"),
                    "{f} says there is no plan:\n{text}"
                );
                let parsed: Value = serde_yaml_ng::from_str(&text).unwrap_or(Value::Null);
                assert_eq!(parsed, Value::Null, "{f} holds no document:\n{text}");
            }
        }
    }
    // The table and the Markdown say the same thing.
    let msg = super::no_plan(&r).expect("no plan");
    assert!(render(&r, Format::Table).expect("table").contains(&msg));
    assert!(
        render(&r, Format::Markdown)
            .expect("markdown")
            .contains(&super::markdown::escape(msg.as_bytes())),
        "the Markdown carries the table's words"
    );
    // A complete run that needs nothing still says so, with its line.
    let mut done = r.clone();
    done.run.incomplete = false;
    for f in [Format::Table, Format::Markdown] {
        let text = render(&done, f).expect("renders");
        assert!(
            text.contains("No writable mounts needed") && text.contains("docker run"),
            "{f} of a complete run with no mount:\n{text}"
        );
    }
}

#[test]
fn a_memory_empty_dir_always_has_a_size_limit() {
    let r = report_for(RunOptions::default());
    assert_eq!(
        r.plan.mounts[0].options.size_bytes, None,
        "a tmpfs without size"
    );
    let text = k8s::deployment(&r, &K8sNames::named("app")).expect("renders");
    let d: Deployment = serde_yaml_ng::from_str(&text).expect("a Deployment");
    let v = &d.spec.template.spec.expect("pod").volumes.expect("volumes")[0];
    let e = v.empty_dir.as_ref().expect("emptyDir");
    assert_eq!(e.medium.as_deref(), Some("Memory"));
    assert_eq!(
        e.size_limit.as_ref().map(|q| q.0.as_str()),
        Some("16Mi"),
        "the planner's minimum, not unbounded:\n{text}"
    );
    assert!(
        text.contains("sizeLimit 16Mi (the planner's minimum)"),
        "said so:\n{text}"
    );
}

#[test]
fn markdown_written_paths_lists_only_writes() {
    use crate::model::{CPath, Op, OpStats, PathObservation};
    let mut r = report_for(RunOptions::default());
    let obs = |path: &str, op: Op| {
        let mut o = PathObservation {
            path: CPath::from(path),
            ..PathObservation::default()
        };
        o.ops.insert(
            op,
            OpStats {
                ok: 1,
                ..OpStats::default()
            },
        );
        o
    };
    r.paths = vec![
        obs("/usr/lib/x86_64-linux-gnu/libc.so.6", Op::MmapExec),
        obs("/usr/bin/redis-server", Op::Exec),
        obs("/data/dump.rdb", Op::Create),
    ];
    let md = render(&r, Format::Markdown).expect("renders");
    let written = md
        .split("## Written paths")
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap_or_default();
    assert!(written.contains("dump.rdb: create ok=1"), "{written}");
    for not in ["libc", "mmap_exec", "redis-server", "exec"] {
        assert!(!written.contains(not), "{not} is not a write:\n{written}");
    }
}

fn with_caveats(mut r: Report) -> Report {
    use crate::model::Caveat;
    r.run.caveats = vec![
        Caveat::ProbeNeverAnswered {
            probe: "http://127.0.0.1:8080/".into(),
        },
        Caveat::WakeupAfterWindow {
            program: "cron-job".into(),
            pid: 4242,
            syscall: "clock_nanosleep".into(),
            due_secs: 61.5,
        },
        Caveat::NoRequestServed {
            ports: vec!["tcp/80".into(), "udp/53".into()],
        },
    ];
    r
}

#[test]
fn every_format_states_what_the_run_did_not_cover() {
    let planned = with_caveats(report_for(RunOptions {
        command: vec!["redis-server".into()],
        ..RunOptions::default()
    }));
    for r in [planned.clone(), with_caveats(unobserved())] {
        for f in Format::ALL {
            let text = render(&r, f).expect("renders");
            for c in &r.run.caveats {
                let words = c.to_string();
                match f {
                    Format::Json => {
                        let back = super::json::load_report(&text).expect("the report");
                        assert_eq!(back.run.caveats, r.run.caveats, "the JSON keeps them");
                    }
                    Format::Markdown => assert!(
                        text.contains(&super::markdown::escape(words.as_bytes())),
                        "{f} states {words}:\n{text}"
                    ),
                    Format::Table => assert!(
                        text.contains(&format!("warning: {words}")),
                        "{f} states {words}:\n{text}"
                    ),
                    _ => assert!(
                        text.contains(&format!("# roprof: WARNING: {words}")),
                        "{f} states {words} in a comment:\n{text}"
                    ),
                }
            }
            // The YAML formats still parse with the comments.
            if matches!(
                f,
                Format::Compose | Format::K8s | Format::Kustomize | Format::Helm
            ) {
                serde_yaml_ng::from_str::<Value>(&text).expect("YAML parses");
            }
        }
    }
    // No caveat, no warning.
    let clean = report_for(RunOptions::default());
    assert!(
        !render(&clean, Format::Docker)
            .expect("docker")
            .contains("WARNING")
    );
}

#[test]
fn caveats_satisfy_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(super::json::SCHEMA).expect("schema is JSON");
    let r = with_caveats(report_for(RunOptions::default()));
    let v: serde_json::Value =
        serde_json::from_str(&super::json::to_json(&r).expect("json")).expect("JSON");
    super::tests::validate(&schema, &schema, &v, "report");
}

/// A report as `profile --writable-code --verify` leaves it: a mount over
/// code, its warning, a write still left to fail elsewhere, and the verdict.
fn with_writable_code(mut r: Report) -> Report {
    use crate::model::{CPath, Unmounted, Verification, WritableCode};
    let w = WritableCode {
        dir: CPath::from("/opt/app"),
        code: CPath::from("/opt/app/run"),
    };
    r.plan.warnings.push(w.to_string());
    r.plan.writable_code.push(w);
    r.plan.unmounted.push(Unmounted {
        dir: CPath::from("/srv/tool"),
        paths: vec![CPath::from("/srv/tool/state")],
        reason: "a mount at /srv/tool would make application code writable".into(),
        hint: None,
    });
    r.run.verification = Some(Verification::VerifiedWithExceptions);
    r
}

#[test]
fn every_format_marks_writable_code_and_the_verdict_with_exceptions() {
    let r = with_writable_code(report_for(RunOptions::default()));
    let weakens = r.plan.writable_code[0].to_string();
    let verdict = "verified, except 1 write(s) below /srv/tool that fail by design";
    for f in Format::ALL {
        let text = render(&r, f).expect("renders");
        match f {
            Format::Json => {
                let back = super::json::load_report(&text).expect("the report");
                assert_eq!(back.plan.writable_code, r.plan.writable_code);
                assert_eq!(back.run.verification, r.run.verification);
                assert!(text.contains("\"verified_with_exceptions\""), "{text}");
            }
            Format::Markdown | Format::Table => {
                assert!(text.contains("WEAKENS"), "{f} marks it:\n{text}");
                assert!(text.contains(verdict), "{f} gives the verdict:\n{text}");
            }
            _ => assert!(
                text.contains(&format!("# roprof: WARNING: {weakens}")),
                "{f} marks the mount over code in a comment:\n{text}"
            ),
        }
    }
    let schema: serde_json::Value =
        serde_json::from_str(super::json::SCHEMA).expect("schema is JSON");
    let v: serde_json::Value =
        serde_json::from_str(&super::json::to_json(&r).expect("json")).expect("JSON");
    super::tests::validate(&schema, &schema, &v, "report");
}

#[test]
fn markdown_says_what_the_run_covered_and_the_json_keeps_it() {
    use crate::model::{During, Served};
    let mut r = report_for(RunOptions::default());
    for (path, d) in [
        ("/run/app.pid", During::Start),
        ("/tmp/upload", During::Probe),
    ] {
        r.paths.push(crate::model::PathObservation {
            path: crate::model::CPath::from(path),
            during: Some(d),
            ..Default::default()
        });
    }
    r.run.served = Some(Served {
        listened: vec!["tcp/80".into()],
        accepted: 1,
    });
    let md = render(&r, Format::Markdown).expect("markdown");
    assert!(md.contains("## What this run covered"), "{md}");
    assert!(md.contains("| probe | 1 |"), "{md}");
    assert!(
        md.contains("- requests: listened on tcp/80, accepted 1 connection(s)"),
        "{md}"
    );
    assert!(md.contains("- probe: none (`--probe` not given)"), "{md}");
    let back = super::json::load_report(&render(&r, Format::Json).expect("json")).expect("loads");
    assert_eq!(back.run.served, r.run.served);
    assert_eq!(back.paths[1].during, Some(During::Probe));
    let schema: serde_json::Value =
        serde_json::from_str(super::json::SCHEMA).expect("schema is JSON");
    let v: serde_json::Value =
        serde_json::from_str(&super::json::to_json(&r).expect("json")).expect("JSON");
    super::tests::validate(&schema, &schema, &v, "report");
    // A report that knows none of it has no such section.
    let old = report_for(RunOptions::default());
    assert!(
        !render(&old, Format::Markdown)
            .expect("md")
            .contains("What this run covered")
    );
}
