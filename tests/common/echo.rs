//! An in-process HTTP/1.1 echo backend for end-to-end tests: answers every request
//! with 200 and a body naming the backend, then the request line and headers,
//! plus any response headers the request asks for (`x-echo-set-header`), after
//! the delay it asks for (`x-echo-delay-ms`).
//! [`EchoBackend::start_failing`] answers 500 to its first requests instead, to
//! show retries; [`EchoBackend::start_failing_every_other`] fails every other one;
//! [`EchoBackend::status`] switches a running backend to failing (every request
//! answered with that status) and back (0); [`EchoBackend::extra_headers`] adds
//! headers to every response (a backend reporting its load, say).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct EchoBackend {
    pub name: String,
    pub port: u16,
    /// The head (request line, then headers) of every request answered, in order.
    pub requests: Arc<Mutex<Vec<Vec<String>>>>,
    /// When not 0, every request is answered with this status (and still
    /// recorded); set it at run time to make the backend fail or recover.
    pub status: Arc<AtomicU16>,
    /// Headers added to every response; set at run time.
    pub extra_headers: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
}

impl EchoBackend {
    pub fn start(name: &str) -> Self {
        Self::start_failing(name, 0)
    }

    /// Like [`EchoBackend::start`], but the first `failures` requests (counted over
    /// all connections) get a 500; they are still recorded in `requests`.
    pub fn start_failing(name: &str, failures: usize) -> Self {
        Self::start_failing_with(name, failures, 500)
    }

    /// Like [`EchoBackend::start_failing`], with another status for the failures.
    pub fn start_failing_with(name: &str, failures: usize, status: u16) -> Self {
        Self::start_with(name, Failing::First(AtomicUsize::new(failures)), status)
    }

    /// Answers `status` to the 1st, 3rd, 5th... request (counted over all
    /// connections) and 200 to the others.
    pub fn start_failing_every_other(name: &str, status: u16) -> Self {
        Self::start_with(name, Failing::EveryOther(AtomicUsize::new(0)), status)
    }

    fn start_with(name: &str, failing: Failing, status: u16) -> Self {
        let failures = Arc::new(failing);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo backend");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let forced = Arc::new(AtomicU16::new(0));
        let (backend_name, stop_flag, seen) = (name.to_string(), stop.clone(), requests.clone());
        let forced_status = forced.clone();
        let extra_headers = Arc::new(Mutex::new(Vec::new()));
        let extra = extra_headers.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop_flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (name, seen, failures) = (backend_name.clone(), seen.clone(), failures.clone());
                let reply = Reply {
                    name,
                    failures,
                    failure_status: status,
                    forced: forced_status.clone(),
                    extra_headers: extra.clone(),
                };
                std::thread::spawn(move || serve_connection(stream, &seen, &reply));
            }
        });
        EchoBackend {
            name: name.to_string(),
            port,
            requests,
            status: forced,
            extra_headers,
            stop,
        }
    }
}

/// Which requests get the failure status.
enum Failing {
    /// The first n.
    First(AtomicUsize),
    /// Every other one, from the first (the count of requests so far).
    EveryOther(AtomicUsize),
}

impl Failing {
    fn next_fails(&self) -> bool {
        match self {
            // Take one failure if any are left; the count never goes below zero.
            Failing::First(left) => left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok(),
            Failing::EveryOther(seen) => seen.fetch_add(1, Ordering::SeqCst) % 2 == 0,
        }
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// How a backend answers: its name, its failures, and the headers it adds.
struct Reply {
    name: String,
    failures: Arc<Failing>,
    failure_status: u16,
    forced: Arc<AtomicU16>,
    extra_headers: Arc<Mutex<Vec<(String, String)>>>,
}

fn serve_connection(stream: TcpStream, seen: &Mutex<Vec<Vec<String>>>, answer: &Reply) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    serve_requests(stream, writer, seen, answer)
}

/// Answers the requests read from `stream` on `writer`, until the client closes.
fn serve_requests(
    stream: impl Read,
    mut writer: impl Write,
    seen: &Mutex<Vec<Vec<String>>>,
    answer: &Reply,
) {
    let Reply {
        name,
        failures,
        failure_status,
        forced,
        extra_headers,
    } = answer;
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let content_length = head
            .iter()
            .filter_map(|h| h.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().unwrap().push(head.clone());
        // A request may ask for a slow answer: `x-echo-delay-ms: N`.
        if let Some(ms) = head
            .iter()
            .filter_map(|h| h.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("x-echo-delay-ms"))
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let mut reply = format!("backend={name}\n");
        for line in &head {
            reply.push_str(line);
            reply.push('\n');
        }
        let fail = failures.next_fails();
        let forced = forced.load(Ordering::SeqCst);
        let status = if forced != 0 {
            format!("{forced} Forced")
        } else if fail {
            format!("{failure_status} Failure")
        } else {
            "200 OK".to_string()
        };
        // As upstream's echo server does, answer with the headers the request asks
        // for, one `x-echo-set-header: Name:value` each.
        let asked: String = head
            .iter()
            .filter_map(|h| h.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-echo-set-header"))
            .filter_map(|(_, v)| v.trim().split_once(':'))
            .map(|(k, v)| format!("{}: {}\r\n", k.trim(), v.trim()))
            .chain(
                extra_headers
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}\r\n")),
            )
            .collect();
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nx-backend: {name}\r\n{asked}\r\n{reply}",
            reply.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// An echo backend (answering as [`EchoBackend::start`]'s) on a Unix domain
/// socket at `path`. The accept thread lives as long as the test process.
pub fn unix_backend(name: &'static str, path: &std::path::Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).expect("bind unix backend");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(writer) = stream.try_clone() else {
                    return;
                };
                let answer = Reply {
                    name: name.to_string(),
                    failures: Arc::new(Failing::First(AtomicUsize::new(0))),
                    failure_status: 500,
                    forced: Arc::new(AtomicU16::new(0)),
                    extra_headers: Arc::new(Mutex::new(Vec::new())),
                };
                serve_requests(stream, writer, &Mutex::new(Vec::new()), &answer);
            });
        }
    });
}

/// A plain TCP server on a free port that writes `name` to every connection and
/// closes it, as the upstream tcp echo server names the pod that answered. The
/// accept thread lives as long as the test process.
pub fn tcp_backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tcp backend");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(name.as_bytes());
        }
    });
    port
}
