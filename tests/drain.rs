//! `gantry shutdown-manager` drains a real Envoy before it is stopped: on SIGTERM it
//! starts Envoy's graceful drain, Envoy fails its readiness and asks a client on a
//! kept-alive connection to close, and the preStop hook (`GET /shutdown/ready`)
//! answers once no connection is left.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::www_gateway;

/// One `GET path` on a kept-alive connection, read by its Content-Length (not to
/// the connection's end): (status, lower-case headers).
fn request(
    stream: &mut BufReader<TcpStream>,
    host: &str,
    path: &str,
) -> (u16, Vec<(String, String)>) {
    let text = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.get_mut().write_all(text.as_bytes()).unwrap();
    let mut status_line = String::new();
    stream.read_line(&mut status_line).unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).unwrap();
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = common::header(&headers, "content-length")
        .unwrap()
        .parse()
        .unwrap();
    stream.read_exact(&mut vec![0; length]).unwrap();
    (status, headers)
}

#[test]
fn sigterm_drains_envoy_before_the_pre_stop_hook_returns() {
    let dir = tempfile::tempdir().unwrap();
    let backend = EchoBackend::start("a");
    let port = common::free_port();
    common::objects::write_objects(dir.path(), &www_gateway(port, backend.port));
    let gantry = Gantry::start(dir.path());
    // As `gantry deploy` runs it: every connection asked to close once draining.
    let ready_port = common::free_port();
    let ready_address = format!("127.0.0.1:{ready_port}");
    let bootstrap = gantry.bootstrap_with("default/eg", &["--ready-address", &ready_address]);
    let envoy = common::spawn_envoy_with(
        &bootstrap,
        &["--drain-strategy", "immediate", "--drain-time-s", "20"],
    );
    common::wait_for_http(port, "www.example.com", "/", |status, _| status == 200);

    let mut client = BufReader::new(TcpStream::connect(("127.0.0.1", port)).unwrap());
    client
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (status, headers) = request(&mut client, "www.example.com", "/");
    assert_eq!(status, 200);
    assert_eq!(common::header(&headers, "connection"), None);

    let hook_port = common::free_port();
    let mut manager = Command::new(common::gantry_bin())
        .arg("shutdown-manager")
        .args([
            "--admin-address",
            &format!("127.0.0.1:{}", envoy.admin_port),
        ])
        .args(["--listen", &format!("127.0.0.1:{hook_port}")])
        .args(["--drain-time-s", "20", "--min-drain-time-s", "1"])
        .spawn()
        .unwrap();
    common::poll("the shutdown manager listening", || {
        TcpStream::connect(("127.0.0.1", hook_port)).ok()
    });
    // The kubelet's preStop hook: it waits.
    let (hook_tx, hook) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", hook_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(40)))
            .unwrap();
        let text = "GET /shutdown/ready HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n";
        stream.write_all(text.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let _ = hook_tx.send(common::parse_response(&raw));
    });
    // As the kubelet probes: the status, then the probe closes its connection.
    let ready = || {
        let stream = TcpStream::connect(("127.0.0.1", ready_port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        Some(request(&mut BufReader::new(stream), "pod", "/ready").0)
    };
    common::poll("the readiness listener answering 200", || {
        ready().filter(|s| *s == 200)
    });
    std::thread::sleep(common::POLL_STEP);
    assert!(
        hook.try_recv().is_err(),
        "the hook answered before any drain"
    );

    // The kubelet sends SIGTERM (by pid) when the pod is deleted.
    let pid = i32::try_from(manager.id()).unwrap();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    common::poll("Envoy draining: its readiness fails", || {
        ready().filter(|s| *s == 503)
    });
    // The client still gets its answer, and is asked to close.
    let (status, headers) = request(&mut client, "www.example.com", "/");
    assert_eq!(status, 200);
    assert_eq!(common::header(&headers, "connection"), Some("close"));
    assert!(
        hook.try_recv().is_err(),
        "the hook answered with a connection open"
    );
    drop(client);

    // No connection left: the hook answers well before the 20 s drain time.
    let answer = hook.recv_timeout(Duration::from_secs(10));
    let (status, _, body) = answer.expect("the hook's answer").unwrap();
    assert_eq!((status, body.as_str()), (200, "drained\n"));
    let exit = common::poll("the shutdown manager exiting", || {
        manager.try_wait().unwrap()
    });
    assert!(exit.success(), "{exit}");
    drop(envoy);
}
