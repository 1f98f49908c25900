//! Unit tests of the libpod create body ([`super`]).

use serde_json::{Value, json};

use super::*;
use crate::model::RunOptions;

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("io.roprof.managed".to_owned(), "1".to_owned())])
}

fn body(spec: &ContainerSpec) -> Value {
    let p = spec_generator(spec, labels()).expect("spec translates");
    assert!(p.tmpfs_volumes.is_empty(), "{:?}", p.tmpfs_volumes);
    serde_json::to_value(p.spec).expect("serialises")
}

#[test]
fn a_read_only_round_is_read_only_with_the_plans_mounts() {
    let spec = ContainerSpec {
        image: "roprof-fixture/nginx".into(),
        read_only: true,
        extra_tmpfs: vec![("/run".into(), "rw,noexec,size=16m,mode=755".into())],
        extra_binds: vec!["/var/cache/nginx".into(), "roprof-x:/var/lib/db".into()],
        ..ContainerSpec::default()
    };
    let b = body(&spec);
    assert_eq!(b["read_only_filesystem"], json!(true));
    assert_eq!(
        b["read_write_tmpfs"],
        json!(false),
        "Podman's tmpfs on /run, /tmp, /var/tmp must stay off"
    );
    assert_eq!(
        b["mounts"],
        json!([{"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                "options": ["rw", "noexec", "nosuid", "nodev", "size=16m", "mode=755", "notmpcopyup"]}]),
        "Docker's nosuid,nodev are added and the tmpfs starts empty"
    );
    assert_eq!(
        b["volumes"],
        json!([{"Name": "", "Dest": "/var/cache/nginx"},
               {"Name": "roprof-x", "Dest": "/var/lib/db"}]),
        "an anonymous volume has an empty name, a named one its name"
    );
    assert_eq!(b["labels"], json!({"io.roprof.managed": "1"}));
    assert!(b.get("command").is_none() && b.get("entrypoint").is_none());
}

#[test]
fn the_users_run_flags_keep_their_docker_meaning() {
    let run = RunOptions {
        command: vec!["sh".into(), "-c".into(), "true".into()],
        entrypoint: Some("/bin/env".into()),
        user: Some("101:101".into()),
        workdir: Some("/srv".into()),
        tmpfs: vec!["/tmp".into()],
        volumes: vec!["/host/data:/data:ro".into()],
        publish: vec!["127.0.0.1:18080:80".into(), "53/udp".into()],
        network: Some("host".into()),
        cap_add: vec!["NET_ADMIN".into()],
        security_opt: vec!["no-new-privileges".into(), "seccomp=unconfined".into()],
        memory: Some("64m".into()),
        ..RunOptions::default()
    };
    let b = body(&ContainerSpec {
        image: "img".into(),
        run,
        name: Some("roprof-1".into()),
        ..ContainerSpec::default()
    });
    assert_eq!(b["name"], json!("roprof-1"));
    assert_eq!(b["command"], json!(["sh", "-c", "true"]));
    assert_eq!(b["entrypoint"], json!(["/bin/env"]));
    assert_eq!(
        (&b["user"], &b["work_dir"]),
        (&json!("101:101"), &json!("/srv"))
    );
    assert_eq!(b["read_only_filesystem"], json!(false));
    assert_eq!(
        b["mounts"],
        json!([
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["rw", "noexec", "nosuid", "nodev", "notmpcopyup"]},
            {"destination": "/data", "type": "bind", "source": "/host/data",
             "options": ["ro", "rbind"]},
        ]),
        "a bare --tmpfs gets Docker's defaults and starts empty"
    );
    assert_eq!(
        b["portmappings"],
        json!([
            {"container_port": 53, "host_port": 0, "protocol": "udp"},
            {"host_ip": "127.0.0.1", "container_port": 80, "host_port": 18080, "protocol": "tcp"},
        ])
    );
    assert_eq!(b["netns"], json!({"nsmode": "host"}));
    assert_eq!(b["cap_add"], json!(["NET_ADMIN"]));
    assert_eq!(b["no_new_privileges"], json!(true));
    assert_eq!(b["seccomp_profile_path"], json!("unconfined"));
    assert_eq!(
        b["resource_limits"],
        json!({"memory": {"limit": 64 << 20, "swap": 64 << 20}})
    );
}

#[test]
fn a_tmpfs_with_an_owner_becomes_an_empty_tmpfs_volume() {
    let spec = ContainerSpec {
        image: "img".into(),
        read_only: true,
        name: Some("r1".into()),
        extra_tmpfs: vec![(
            "/var/log/nginx".into(),
            "rw,noexec,nosuid,nodev,size=16m,mode=755,gid=4".into(),
        )],
        ..ContainerSpec::default()
    };
    let p = spec_generator(&spec, labels()).expect("translates");
    let b = serde_json::to_value(&p.spec).expect("serialises");
    assert_eq!(b.get("mounts"), None, "no tmpfs mount: Podman refuses gid=");
    let [v] = p.tmpfs_volumes.as_slice() else {
        panic!("expected one tmpfs volume, got {:?}", p.tmpfs_volumes)
    };
    assert!(v.name.starts_with("roprof-tmpfs-r1-"), "{}", v.name);
    assert_eq!(
        serde_json::to_value(v).expect("serialises")["Options"],
        json!({"type": "tmpfs", "device": "tmpfs",
               "o": "nr_blocks=4096,mode=755,gid=4"}),
        "16m is 4096 pages; the local driver would take size= as a quota"
    );
    assert_eq!(
        b["volumes"],
        json!([{"Name": v.name, "Dest": "/var/log/nginx",
                "Options": ["rw", "noexec", "nosuid", "nodev", "nocopy"]}])
    );
    let bad = ContainerSpec {
        extra_tmpfs: vec![("/x".into(), "uid=1,size=50%".into())],
        ..ContainerSpec::default()
    };
    let e = spec_generator(&bad, labels())
        .expect_err("a relative size cannot become a block count")
        .to_string();
    assert!(
        e.contains("--tmpfs") && e.contains("`/x:uid=1,size=50%`"),
        "{e}"
    );
}

#[test]
fn networks_by_mode_and_by_name() {
    for (flag, netns, networks) in [
        ("none", json!({"nsmode": "none"}), Value::Null),
        ("bridge", json!({"nsmode": "bridge"}), Value::Null),
        (
            "container:db",
            json!({"nsmode": "container", "value": "db"}),
            Value::Null,
        ),
        ("appnet", json!({"nsmode": "bridge"}), json!({"appnet": {}})),
    ] {
        let b = body(&ContainerSpec {
            run: RunOptions {
                network: Some(flag.into()),
                ..RunOptions::default()
            },
            ..ContainerSpec::default()
        });
        assert_eq!(b["netns"], netns, "--network {flag}");
        assert_eq!(b["Networks"], networks, "--network {flag}");
    }
}

#[test]
fn values_podman_cannot_take_name_the_flag_and_the_value() {
    for (run, flag, value) in [
        (
            RunOptions {
                security_opt: vec!["systempaths=unconfined".into()],
                ..RunOptions::default()
            },
            "--security-opt",
            "systempaths=unconfined",
        ),
        (
            RunOptions {
                volumes: vec!["a:b:c:d".into()],
                ..RunOptions::default()
            },
            "--volume",
            "a:b:c:d",
        ),
        (
            RunOptions {
                volumes: vec!["data:relative".into()],
                ..RunOptions::default()
            },
            "--volume",
            "data:relative",
        ),
    ] {
        let spec = ContainerSpec {
            run,
            ..ContainerSpec::default()
        };
        let e = spec_generator(&spec, BTreeMap::new())
            .expect_err("must be refused")
            .to_string();
        assert!(
            e.contains(flag) && e.contains(&format!("`{value}`")),
            "expected an error naming {flag} and `{value}`, got: {e}"
        );
    }
}
