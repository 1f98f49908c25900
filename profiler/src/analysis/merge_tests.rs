//! `roprof merge`'s pure part: refusals name the field, the plan is the
//! plan of the union, and each path keeps the reports it came from.

use super::{
    merge::{MergeError, Named, check, merge},
    tests::{dirs, listing, obs},
};
use crate::model::{CPath, EnvVar, MountKind, Op, Report};

/// A field of a report and how a test changes it.
type Edit = (&'static str, fn(&mut Report));

fn report(paths: &[&str]) -> Report {
    let mut r = Report::default();
    r.image.image = "app:1".into();
    r.image.id = "sha256:abc".into();
    r.paths = paths.iter().map(|p| obs(p, &[Op::Create])).collect();
    r.run.container_id = "0123456789abcdef".into();
    r
}

fn named<'a>(rs: &'a [(&'a str, Report)]) -> Vec<Named<'a>> {
    rs.iter()
        .map(|(name, report)| Named { name, report })
        .collect()
}

#[test]
fn the_union_is_planned_and_each_path_keeps_its_reports() {
    let rs = [
        ("a.json", report(&["/var/lib/app/a", "/tmp/shared"])),
        ("b.json", report(&["/var/cache/app/b", "/tmp/shared"])),
    ];
    let l = listing(dirs(&["/var/lib/app", "/var/cache/app", "/tmp"]));
    let m = merge(&named(&rs), &l).expect("same image and options merge");
    let targets: Vec<(String, MountKind)> = m
        .plan
        .mounts
        .iter()
        .map(|x| (x.target.display(), x.kind))
        .collect();
    assert_eq!(
        targets,
        [
            ("/tmp".to_owned(), MountKind::Tmpfs),
            ("/var/cache/app".to_owned(), MountKind::Tmpfs),
            ("/var/lib/app".to_owned(), MountKind::Tmpfs),
        ]
    );
    let sources: Vec<(String, Vec<String>)> = m
        .sources
        .iter()
        .map(|s| (s.path.display(), s.reports.clone()))
        .collect();
    assert_eq!(
        sources,
        [
            (
                "/tmp/shared".to_owned(),
                vec!["a.json".to_owned(), "b.json".to_owned()]
            ),
            ("/var/cache/app/b".to_owned(), vec!["b.json".to_owned()]),
            ("/var/lib/app/a".to_owned(), vec!["a.json".to_owned()]),
        ]
    );
    assert_eq!(m.paths.len(), 3, "one observation per path");
    assert_eq!(
        m.paths[0].ops[&Op::Create].ok,
        2,
        "counts of a path seen by both add up"
    );
    assert!(m.rounds.is_empty(), "a merged plan is unverified");
    assert!(m.run.notes[0].contains("a.json") && m.run.notes[0].contains("b.json"));
}

#[test]
fn reports_that_differ_in_a_write_relevant_field_are_refused_naming_it() {
    let a = report(&["/tmp/x"]);
    let cases: [Edit; 5] = [
        ("image.id", |r| r.image.id = "sha256:def".into()),
        ("run_options.user", |r| {
            r.run_options.user = Some("1000".into());
        }),
        ("run_options.command", |r| {
            r.run_options.command = vec!["serve".into()];
        }),
        ("run_options.volumes", |r| {
            r.run_options.volumes = vec!["data:/data".into()];
        }),
        ("run_options.env (names)", |r| {
            r.run_options.env = vec![EnvVar {
                name: "MODE".into(),
                value: None,
            }];
        }),
    ];
    for (field, edit) in cases {
        let mut b = a.clone();
        edit(&mut b);
        let rs = [("a.json", a.clone()), ("b.json", b)];
        match check(&named(&rs)) {
            Err(e @ MergeError::Mismatch { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(field) && msg.contains("a.json") && msg.contains("b.json"),
                    "the error names {field} and both reports: {msg}"
                );
            }
            other => panic!("expected {field} to be refused, got {other:?}"),
        }
    }
    // Ports differ between replicas and move no write.
    let mut b = a.clone();
    b.run_options.publish = vec!["127.0.0.1:9:80".into()];
    assert!(check(&named(&[("a.json", a.clone()), ("b.json", b)])).is_ok());
    assert!(matches!(
        check(&named(&[("a.json", a.clone())])),
        Err(MergeError::TooFew(1))
    ));
    let mut empty = a.clone();
    empty.image.id.clear();
    assert!(matches!(
        check(&named(&[("a.json", a), ("b.json", empty)])),
        Err(MergeError::Unobserved { .. })
    ));
}

#[test]
fn repairs_hold_for_every_run_and_drops_only_when_every_report_dropped() {
    let mut a = report(&["/var/lib/app/a"]);
    let mut b = report(&["/var/lib/app/b"]);
    a.settings.force_seed.insert(CPath::from("/var/lib/app"));
    a.settings.drop.insert(CPath::from("/tmp"));
    a.settings.drop.insert(CPath::from("/run"));
    b.settings.drop.insert(CPath::from("/run"));
    let rs = [("a.json", a), ("b.json", b)];
    let m = merge(&named(&rs), &listing(dirs(&["/var/lib/app"]))).unwrap();
    assert!(m.settings.force_seed.contains(&CPath::from("/var/lib/app")));
    assert_eq!(
        m.settings
            .drop
            .iter()
            .map(CPath::display)
            .collect::<Vec<_>>(),
        ["/run"]
    );
    assert_eq!(m.plan.mounts[0].kind, MountKind::SeededVolume);
}
