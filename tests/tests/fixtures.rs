//! The fixture images behave as the roprof tests assume, checked without
//! roprof: opsuite runs every step and fails them with EROFS under
//! `--read-only`, and nginx answers on loopback.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    thread,
    time::Duration,
};

use roprof_tests::{
    ContainerGuard, NGINX_IMAGE, OPSUITE_STEPS, TEST_LABEL, WRITER_IMAGE, docker, docker_ok,
    opsuite_steps, require_privileged, unique_name,
};

#[test]
fn writer_runs_every_step_and_all_succeed_on_a_writable_root() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let name = unique_name("fixture-writer");
    let out = docker_ok([
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        "--name",
        &name,
        WRITER_IMAGE,
    ]);
    let steps = opsuite_steps(&out);
    let names: Vec<&str> = steps.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names, OPSUITE_STEPS,
        "expected every opsuite step in order, got:\n{out}"
    );
    let failed: Vec<_> = steps.iter().filter(|(_, r)| r != "ok").collect();
    assert!(
        failed.is_empty(),
        "expected every step to succeed on a writable root, these failed: {failed:?}"
    );
}

#[test]
fn writer_fails_with_erofs_on_a_read_only_root() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let out = docker_ok([
        "run",
        "--rm",
        "--read-only",
        "--label",
        TEST_LABEL,
        WRITER_IMAGE,
    ]);
    let steps = opsuite_steps(&out);
    assert_eq!(
        steps.len(),
        OPSUITE_STEPS.len(),
        "expected every step, got:\n{out}"
    );
    for step in [
        "open_abs",
        "creat",
        "mkdir_abs",
        "pid_via_symlink",
        "tmp_write",
        "access_w",
    ] {
        let result = steps
            .iter()
            .find(|(n, _)| n == step)
            .map(|(_, r)| r.as_str());
        assert_eq!(
            result,
            Some("EROFS"),
            "expected {step} to fail with EROFS, got:\n{out}"
        );
    }
}

#[test]
fn writer_loop_and_many_modes_report_done() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let out = docker_ok([
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        WRITER_IMAGE,
        "loop",
        "50",
        "/tmp/l",
    ]);
    assert_eq!(out.trim(), "LOOP done", "expected `LOOP done`, got: {out}");
    let out = docker_ok([
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        WRITER_IMAGE,
        "many",
        "20",
        "/tmp",
    ]);
    assert_eq!(out.trim(), "MANY done", "expected `MANY done`, got: {out}");
}

#[test]
fn nginx_fixture_answers_200_on_loopback() {
    require_privileged();
    let _guard = ContainerGuard::new();
    let name = unique_name("fixture-nginx");
    docker_ok([
        "run",
        "-d",
        "--label",
        TEST_LABEL,
        "--name",
        &name,
        "-p",
        "127.0.0.1::80",
        NGINX_IMAGE,
    ]);
    let port = docker_ok(["port", &name, "80/tcp"]);
    let addr: SocketAddr = port
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("expected `docker port` to give 127.0.0.1:PORT, got: {port}"));
    let mut last = String::new();
    for _ in 0..40 {
        match get_status_line(addr) {
            Ok(line) if line.contains(" 200 ") => return,
            Ok(line) => last = line,
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(250));
    }
    let logs = docker(["logs", &name]);
    panic!(
        "expected HTTP 200 from nginx at {addr}, last answer: {last}; logs:\n{}{}",
        String::from_utf8_lossy(&logs.stdout),
        String::from_utf8_lossy(&logs.stderr)
    );
}

fn get_status_line(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)?;
    Ok(String::from_utf8_lossy(&response)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}
