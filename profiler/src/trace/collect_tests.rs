//! Unit tests of the collector: folding names, counting, memory per distinct path.

use super::*;

fn raw(name: &[u8], base_leaf_first: &[&[u8]], status: u32) -> Vec<u8> {
    raw_open(name, base_leaf_first, status, O_CREAT, -30, 7)
}

fn raw_open(
    name: &[u8],
    base_leaf_first: &[&[u8]],
    status: u32,
    flags: u32,
    ret: i64,
    key: u64,
) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(name);
    data.push(0);
    let nl = data.len();
    for c in base_leaf_first {
        data.extend_from_slice(c);
        data.push(0);
    }
    let h = EventHeader {
        kind: kind::PATH_OP,
        op: op::OPEN_WRITE,
        ret,
        key,
        ident: 0,
        pid: 1,
        tgid: 1,
        ppid: 0,
        uid: 0,
        gid: 0,
        flags,
        mode: 0o644,
        status,
        base_len: u32::try_from(data.len() - nl).unwrap(),
        name_len: u32::try_from(nl).unwrap(),
        ts: 0,
        comm: *b"nginx\0\0\0\0\0\0\0\0\0\0\0",
        cgroup: 0,
    };
    let mut v = vec![0u8; std::mem::size_of::<EventHeader>()];
    // SAFETY: writing a POD header into a buffer of its exact size.
    unsafe { std::ptr::write_unaligned(v.as_mut_ptr().cast(), h) };
    v.extend_from_slice(&data);
    v
}

fn var_run_listing() -> ImageListing {
    let mut listing = ImageListing::default();
    listing.entries.insert(
        CPath::from("/var/run"),
        crate::model::ImageEntry {
            path: CPath::from("/var/run"),
            kind: EntryKind::Symlink,
            mode: 0o777,
            uid: 0,
            gid: 0,
            size: 0,
            link_target: Some(CPath::from("/run")),
        },
    );
    listing
}

#[test]
fn relative_name_joins_reversed_base_and_resolves_image_symlinks() {
    let listing = var_run_listing();
    let mut c = Collector::default();
    c.push_bytes(&raw(b"run/nginx.pid", &[b"var"], 0));
    c.push_bytes(&raw(b"/var/run/x \xff.pid", &[], STATUS_NAME_ABSOLUTE));
    let got = c.finish(&listing, &HashMap::new(), &HashMap::new());
    let paths: Vec<_> = got.observations.iter().map(|o| o.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            CPath::new(b"/run/nginx.pid".to_vec()),
            CPath::new(b"/run/x \xff.pid".to_vec())
        ]
    );
    assert_eq!(got.observations[0].ops[&Op::Create].errors["EROFS"], 1);
    assert_eq!(&*got.observations[0].first.comm, "nginx");
}

#[test]
fn log_style_opens_are_told_apart_from_other_write_opens() {
    let mut c = Collector::default();
    let abs = STATUS_NAME_ABSOLUTE;
    let log = O_WRONLY | O_CREAT | O_APPEND;
    for (key, (name, flags, ret)) in [
        (&b"/var/log/a.log"[..], log, 3),
        (b"/var/log/b.log", log, 3),
        (b"/var/log/b.log", 2 | O_CREAT | O_APPEND, 3),
        (b"/var/log/c.log", log | O_TRUNC, 3),
        (b"/var/log/d.log", O_WRONLY | O_APPEND, 3),
        (b"/var/log/e.log", log, -13),
        (b"/var/log/f.log", log, -EROFS),
    ]
    .into_iter()
    .enumerate()
    {
        c.push_bytes(&raw_open(
            name,
            &[],
            abs,
            flags,
            ret,
            100 + u64::try_from(key).unwrap(),
        ));
    }
    let got = c.finish(&ImageListing::default(), &HashMap::new(), &HashMap::new());
    let counts: Vec<(String, u64, u64)> = got
        .observations
        .iter()
        .map(|o| (o.path.display(), o.append_opens, o.other_write_opens))
        .collect();
    assert_eq!(
        counts,
        [
            ("/var/log/a.log".to_owned(), 1, 0),
            ("/var/log/b.log".to_owned(), 1, 1),
            ("/var/log/c.log".to_owned(), 0, 1),
            ("/var/log/d.log".to_owned(), 0, 1),
            ("/var/log/e.log".to_owned(), 0, 0),
            ("/var/log/f.log".to_owned(), 1, 0),
        ],
        "write-only O_CREAT|O_APPEND without O_TRUNC is a log open; O_RDWR, O_TRUNC, no \
         O_CREAT are not; failed opens count neither, but one refused by a read-only \
         root (EROFS) shows the intent"
    );
    assert!(
        got.observations[5].append_only(),
        "f.log, seen only read-only, is append-only"
    );
    assert!(got.observations[0].append_only(), "a.log is append-only");
    assert!(
        !got.observations[1].append_only(),
        "b.log was also opened O_RDWR"
    );
}

#[test]
fn dedupe_count_is_applied_once() {
    let mut c = Collector::default();
    c.push_bytes(&raw(b"/tmp/a", &[], STATUS_NAME_ABSOLUTE));
    let mut d = HashMap::new();
    d.insert(
        7,
        DedupValue {
            count: 500,
            last_tgid: 1,
            last_pid: 1,
        },
    );
    let got = c.finish(&ImageListing::default(), &d, &HashMap::new());
    assert_eq!(got.observations[0].ops[&Op::Create].errors["EROFS"], 500);
}

#[test]
fn names_fold_the_same_on_arrival_as_at_the_end() {
    let listing = var_run_listing();
    let records = [
        raw_open(b"run/nginx.pid", &[b"var"], 0, O_CREAT, 3, 1),
        raw_open(
            b"/run/nginx.pid",
            &[],
            STATUS_NAME_ABSOLUTE,
            O_CREAT,
            -17,
            2,
        ),
        raw_open(
            b"/var/run/nginx.pid",
            &[],
            STATUS_NAME_ABSOLUTE,
            O_CREAT,
            -13,
            3,
        ),
        raw_open(
            b"log/a.log",
            &[b"var"],
            0,
            O_WRONLY | O_CREAT | O_APPEND,
            3,
            4,
        ),
    ];
    let mut early = Collector::with_listing(&listing);
    let mut late = Collector::default();
    for r in &records {
        early.push_bytes(r);
        late.push_bytes(r);
    }
    assert_eq!(
        early.progress().paths,
        2,
        "three spellings of /run/nginx.pid are one path once folded on arrival"
    );
    let early = early.finish(&listing, &HashMap::new(), &HashMap::new());
    let late = late.finish(&listing, &HashMap::new(), &HashMap::new());
    assert_eq!(
        early.observations, late.observations,
        "folding on arrival (a run) and at the end (no listing up front) agree"
    );
    let pid = &early.observations[0];
    assert_eq!(pid.path, CPath::from("/run/nginx.pid"));
    assert_eq!(pid.ops[&Op::Create].ok, 1);
    assert_eq!(pid.ops[&Op::Create].errors["EEXIST"], 1);
    assert_eq!(pid.ops[&Op::Create].errors["EACCES"], 1);
}

#[test]
fn holds_one_observation_per_distinct_path_not_per_record() {
    let mut c = Collector::with_listing(&ImageListing::default());
    // 10,000 distinct operations (keys) over 100 paths: what a churn
    // workload sends once the kernel has folded exact repeats.
    for i in 0..10_000u64 {
        let name = format!("/tmp/m/c{}", i % 100);
        let flags = if (i / 100) % 2 == 0 {
            O_CREAT
        } else {
            O_WRONLY | O_APPEND
        };
        c.push_bytes(&raw_open(
            name.as_bytes(),
            &[],
            STATUS_NAME_ABSOLUTE,
            flags,
            3,
            i,
        ));
    }
    assert_eq!(c.len(), 10_000, "every record is counted");
    assert_eq!(c.progress().events, 10_000);
    assert_eq!(
        c.progress().paths,
        100,
        "the collector aggregates per path as records arrive"
    );
    assert_eq!(c.obs.len(), 100, "one observation per distinct path");
    let mut dedup = HashMap::new();
    dedup.insert(
        0,
        DedupValue {
            count: 7,
            last_tgid: 1,
            last_pid: 1,
        },
    );
    let got = c.finish(&ImageListing::default(), &dedup, &HashMap::new());
    assert_eq!(got.observations.len(), 100);
    let c0 = &got.observations[0];
    assert_eq!(c0.path, CPath::from("/tmp/m/c0"));
    assert_eq!(
        c0.ops[&Op::Create].ok,
        50 + 6,
        "50 create records, the first one repeated 7 times in the kernel"
    );
    assert_eq!(c0.ops[&Op::OpenWrite].ok, 50);
    assert_eq!(c0.other_write_opens, 100 + 6);
}

#[test]
fn a_key_sent_twice_shares_its_count() {
    let mut c = Collector::default();
    c.push_bytes(&raw(b"/tmp/a", &[], STATUS_NAME_ABSOLUTE));
    c.push_bytes(&raw(b"/tmp/a", &[], STATUS_NAME_ABSOLUTE));
    let mut d = HashMap::new();
    d.insert(
        7,
        DedupValue {
            count: 500,
            last_tgid: 1,
            last_pid: 1,
        },
    );
    let got = c.finish(&ImageListing::default(), &d, &HashMap::new());
    assert_eq!(
        got.observations[0].ops[&Op::Create].errors["EROFS"],
        500,
        "two records of one key (an insert race) count the key's total once"
    );
}

/// A header-only record of `k` (READ, EXIT) as the kernel sends it.
fn raw_header(k: u32, opc: u32, ret: i64, key: u64, ident: u64, comm: &[u8; 16]) -> Vec<u8> {
    let mut v = raw_open(b"", &[], 0, 0, ret, key);
    v.truncate(std::mem::size_of::<EventHeader>());
    // SAFETY: the buffer holds exactly one POD header.
    let mut h: EventHeader = unsafe { std::ptr::read_unaligned(v.as_ptr().cast()) };
    h.kind = k;
    h.op = opc;
    h.ident = ident;
    h.base_len = 0;
    h.name_len = 0;
    h.comm = *comm;
    // SAFETY: as above.
    unsafe { std::ptr::write_unaligned(v.as_mut_ptr().cast(), h) };
    v
}

#[test]
fn a_log_also_opened_read_only_is_read_back_and_exits_are_counted() {
    let mut c = Collector::default();
    let log = O_WRONLY | O_CREAT | O_APPEND;
    let abs = STATUS_NAME_ABSOLUTE;
    let mut queue = raw_open(b"/app/queue/q.txt", &[], abs, log, 3, 1);
    let mut plain = raw_open(b"/var/log/a.log", &[], abs, log, 3, 2);
    // Object identities, as the kernel sets them on successful opens.
    for (rec, ident) in [(&mut queue, 0xaa_u64), (&mut plain, 0xbb)] {
        // SAFETY: the record starts with one POD header.
        let mut h: EventHeader = unsafe { std::ptr::read_unaligned(rec.as_ptr().cast()) };
        h.ident = ident;
        // SAFETY: as above.
        unsafe { std::ptr::write_unaligned(rec.as_mut_ptr().cast(), h) };
    }
    c.push_bytes(&queue);
    c.push_bytes(&plain);
    c.push_bytes(&raw_header(
        kind::READ,
        op::OPEN_READ,
        0,
        3,
        0xaa,
        b"grep\0\0\0\0\0\0\0\0\0\0\0\0",
    ));
    c.push_bytes(&raw_header(
        kind::EXIT,
        0,
        1 << 8,
        9,
        0,
        b"worker.sh\0\0\0\0\0\0\0",
    ));
    c.push_bytes(&raw_header(
        kind::EXIT,
        0,
        0,
        10,
        0,
        b"ok\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    ));
    let mut dedup = HashMap::new();
    dedup.insert(
        9,
        DedupValue {
            count: 5,
            last_tgid: 1,
            last_pid: 1,
        },
    );
    let got = c.finish(&ImageListing::default(), &dedup, &HashMap::new());
    let q = &got.observations[0];
    assert_eq!(q.path.display(), "/app/queue/q.txt");
    assert!(q.read_back, "the read-only open of the same file joins it");
    assert!(!q.append_only(), "a file read back is no log");
    assert!(got.observations[1].append_only(), "a.log was never read");
    assert_eq!(got.observations.len(), 2, "a READ record adds no path");
    assert_eq!(
        got.exits
            .iter()
            .map(|e| (e.exit.program.as_str(), e.exit.status, e.exit.count))
            .collect::<Vec<_>>(),
        [("worker.sh", ExitStatus::Code(1), 5)],
        "the worker's five exits with status 1 (one record, its count in DEDUP); status 0 is none"
    );
}
