//! The compose file read and patched, without Docker: errors by line and
//! key, what a service runs with, and the hardened text keeping what the
//! user wrote.

use std::path::Path;

use super::{
    ComposeError, Hardening, harden,
    parse::{Condition, Project, Volume, from_text, interpolate},
};
use crate::render::compose::{LongVolume, VolumeEntry};

fn project(text: &str) -> Project {
    from_text(Path::new("/srv/app/compose.yaml"), text.to_owned())
        .unwrap_or_else(|e| panic!("expected the file to read: {e}\n{text}"))
}

fn error(text: &str) -> String {
    match from_text(Path::new("/srv/app/compose.yaml"), text.to_owned()) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn plan(service: &str) -> Hardening {
    Hardening {
        service: service.into(),
        tmpfs: vec!["/run:rw,noexec,nosuid,nodev,size=16m,mode=755".into()],
        volumes: vec![VolumeEntry::Long(LongVolume {
            kind: "volume".into(),
            source: Some(format!("roprof-{service}-data-0")),
            target: "/var/lib/data".into(),
            tmpfs: None,
        })],
        named: vec![format!("roprof-{service}-data-0")],
    }
}

#[test]
fn errors_name_the_file_line_and_key() {
    for (text, want) in [
        (
            "services:\n  web:\n    image: [x\n",
            "/srv/app/compose.yaml:4:1: the YAML does not parse",
        ),
        (
            "services:\n  app:\n    build: .\n",
            "/srv/app/compose.yaml:3: services.app.build: `build:` without `image:`",
        ),
        (
            "services:\n  web:\n    image: a\n    depends_on: [db]\n",
            "/srv/app/compose.yaml:4: services.web.depends_on: depends on `db`",
        ),
        (
            "services:\n  web:\n    image: a\n    healthcheck:\n      interval: soon\n",
            "/srv/app/compose.yaml:4: services.web.healthcheck: interval: `soon` is not a duration",
        ),
        (
            "services:\n  web:\n    image: ${ROPROF_TEST_SURELY_UNSET:?set it}\n",
            "/srv/app/compose.yaml:3: services.web.image: ROPROF_TEST_SURELY_UNSET is not set",
        ),
        (
            "version: '3'\n",
            "/srv/app/compose.yaml:1: services: no `services:`",
        ),
    ] {
        let got = error(text);
        assert!(got.starts_with(want), "expected `{want}…`, got `{got}`");
    }
    assert!(matches!(
        from_text(Path::new("x.yaml"), "a: [".into()),
        Err(ComposeError::Yaml { .. })
    ));
}

#[test]
fn a_service_reads_into_what_it_runs_with() {
    let p = project(
        "\
services:
  web:
    image: web:1
    command: nginx -g 'daemon off;'
    entrypoint: [/docker-entrypoint.sh, --quiet]
    environment:
      MODE: prod
      TOKEN:
    env_file: web.env
    user: \"101\"
    stop_signal: SIGQUIT
    stop_grace_period: 1m30s
    ports:
      - 8080:80
      - target: 443
        published: 8443
        host_ip: 127.0.0.1
    tmpfs: /run
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - cache:/var/cache/nginx
      - /var/log/nginx
    depends_on:
      db:
        condition: service_healthy
  db:
    image: db
volumes:
  cache:
",
    );
    assert_eq!(p.name, "app");
    let web = &p.services[0];
    assert_eq!(web.command, ["nginx", "-g", "daemon off;"]);
    assert_eq!(
        web.entrypoint.as_deref(),
        Some(&["/docker-entrypoint.sh".to_owned(), "--quiet".to_owned()][..])
    );
    assert_eq!(web.environment, ["MODE=prod", "TOKEN"]);
    assert_eq!(web.env_file, ["/srv/app/web.env"]);
    assert_eq!(web.user.as_deref(), Some("101"));
    assert_eq!(web.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(web.stop_grace_secs, Some(90));
    assert_eq!(web.ports, ["8080:80", "127.0.0.1:8443:443"]);
    assert_eq!(web.tmpfs, ["/run"]);
    assert_eq!(
        web.volumes,
        [
            Volume::Bind {
                source: "/srv/app/html".into(),
                target: "/usr/share/nginx/html".into(),
                ro: true
            },
            Volume::Named {
                name: "cache".into(),
                target: "/var/cache/nginx".into(),
                ro: false,
                external: false
            },
            Volume::Anonymous {
                target: "/var/log/nginx".into()
            },
        ]
    );
    assert_eq!(web.depends_on, [("db".to_owned(), Condition::Healthy)]);
}

#[test]
fn interpolation_follows_compose() {
    let var = |k: &str| match k {
        "TAG" => Some("1.2".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    for (s, want) in [
        ("web:${TAG}", "web:1.2"),
        ("web:$TAG", "web:1.2"),
        ("web:${NOPE:-latest}", "web:latest"),
        ("web:${EMPTY:-latest}", "web:latest"),
        ("web:${EMPTY-latest}", "web:"),
        ("cost $$5", "cost $5"),
        ("${NOPE}", ""),
    ] {
        assert_eq!(interpolate(s, var).as_deref(), Ok(want), "{s:?}");
    }
    assert!(interpolate("${NOPE:?needed}", var).is_err());
    assert!(interpolate("${TAG", var).is_err());
}

const FILE: &str = "\
# The shop.
services:
  web:   # front
    image: web:1
    tmpfs:
      - /tmp
    read_only: false
  db:
    image: db:1 # pinned
    volumes:
    - ./init:/docker-entrypoint-initdb.d:ro

# Data that outlives the containers.
volumes:
  keep: {}
";

#[test]
fn the_hardened_text_keeps_everything_else() {
    let p = project(FILE);
    let (text, lost) = harden(&p, &[plan("web"), plan("db")])
        .unwrap_or_else(|e| panic!("expected a hardened file: {e}"));
    assert_eq!(lost, None, "expected a textual patch:\n{text}");
    let want = "\
# The shop.
services:
  web:   # front
    image: web:1
    tmpfs:
      - /tmp
      - /run:rw,noexec,nosuid,nodev,size=16m,mode=755
    read_only: true
    volumes:
      - type: volume
        source: roprof-web-data-0
        target: /var/lib/data
  db:
    image: db:1 # pinned
    volumes:
    - ./init:/docker-entrypoint-initdb.d:ro
    - type: volume
      source: roprof-db-data-0
      target: /var/lib/data
    read_only: true
    tmpfs:
      - /run:rw,noexec,nosuid,nodev,size=16m,mode=755

# Data that outlives the containers.
volumes:
  keep: {}
  roprof-web-data-0: {}
  roprof-db-data-0: {}
";
    assert_eq!(text, want);
}

#[test]
fn inline_lists_become_block_lists_of_the_same_items() {
    let p = project(
        "services:\n  web:\n    image: web # c\n    tmpfs: [/tmp, \"/x:size=1m\"]\n  db:\n    image: db\n    tmpfs: /tmp\n",
    );
    let (text, lost) = harden(&p, &[plan("web"), plan("db")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lost, None, "expected a textual patch:\n{text}");
    assert!(
        text.contains(
            "    image: web # c\n    tmpfs:\n      - /tmp\n      - /x:size=1m\n      - /run:"
        ),
        "{text}"
    );
    assert!(
        text.contains("    tmpfs:\n      - /tmp\n      - /run:"),
        "{text}"
    );
}

#[test]
fn what_cannot_be_patched_as_text_is_reserialised_and_says_why() {
    let p = project("services:\n  web: {image: web}\n");
    let (text, lost) = harden(&p, &[plan("web")]).unwrap_or_else(|e| panic!("{e}"));
    let why = lost.unwrap_or_else(|| panic!("expected the fallback:\n{text}"));
    assert!(why.contains("services.web is written inline"), "{why}");
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let web = &doc["services"]["web"];
    assert_eq!(web["image"].as_str(), Some("web"));
    assert_eq!(web["read_only"].as_bool(), Some(true));
    assert_eq!(web["tmpfs"].as_sequence().map(Vec::len), Some(1));
    assert!(doc["volumes"]["roprof-web-data-0"].is_mapping());
}

#[test]
fn keys_that_change_writes_but_are_not_applied_are_named() {
    let p =
        project("services:\n  web:\n    image: web\n    restart: always\n    privileged: true\n");
    assert_eq!(
        p.ignored,
        ["/srv/app/compose.yaml:5: services.web.privileged: not applied while profiling"]
    );
}

#[test]
fn empty_top_level_volumes_and_no_final_newline_are_patched_as_text() {
    let p = project("services:\n  web:\n    image: web\nvolumes: {}");
    let (text, lost) = harden(&p, &[plan("web")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lost, None, "{text}");
    assert!(
        text.ends_with("volumes:\n  roprof-web-data-0: {}\n"),
        "{text}"
    );
}
