//! An ORCA out-of-band load reporting server
//! (`xds.service.orca.v3.OpenRcaService/StreamCoreMetrics`, gRPC over cleartext
//! HTTP/2): every stream a client opens is answered with the same load report
//! every 100 ms and never ends, as a backend reporting its load does.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::h2c::{ACK, Connection, DATA, END_HEADERS, HEADERS, PING, SETTINGS, frame};

/// How often each stream gets a report.
const REPORT_PERIOD: Duration = Duration::from_millis(100);

/// HPACK for `:status: 200` (static table entry 8) and `content-type:
/// application/grpc` (a literal value for the static name 31, not indexed).
const GRPC_RESPONSE_HEADERS: &[u8] = b"\x88\x0f\x10\x10application/grpc";

pub struct OrcaServer {
    pub port: u16,
    /// Streams opened by clients so far.
    pub streams: Arc<AtomicUsize>,
}

impl OrcaServer {
    /// Reports `application_utilization` at `rps_fractional` requests per second.
    /// The accept thread lives as long as the test process.
    pub fn start(application_utilization: f64, rps_fractional: f64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind ORCA server");
        let port = listener.local_addr().unwrap().port();
        let streams = Arc::new(AtomicUsize::new(0));
        let opened = streams.clone();
        let report = load_report(application_utilization, rps_fractional);
        std::thread::spawn(move || {
            for socket in listener.incoming().flatten() {
                let (report, opened) = (report.clone(), opened.clone());
                std::thread::spawn(move || serve(socket, &report, &opened));
            }
        });
        OrcaServer { port, streams }
    }
}

/// One gRPC message: an `xds.data.orca.v3.OrcaLoadReport` with rps_fractional
/// (field 6) and application_utilization (field 9), both doubles.
fn load_report(application_utilization: f64, rps_fractional: f64) -> Vec<u8> {
    let mut message = vec![6 << 3 | 1];
    message.extend(rps_fractional.to_le_bytes());
    message.push(9 << 3 | 1);
    message.extend(application_utilization.to_le_bytes());
    let mut grpc = vec![0];
    grpc.extend((message.len() as u32).to_be_bytes());
    grpc.extend(message);
    grpc
}

/// Answers the client's settings and pings, opens a response on every stream
/// it starts, and sends each open stream a report whenever reading waits for
/// a report period.
fn serve(socket: TcpStream, report: &[u8], opened: &AtomicUsize) -> std::io::Result<()> {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    let mut connection = Connection::accept(socket, REPORT_PERIOD)?;
    let mut open = Vec::new();
    loop {
        match connection.next_frame() {
            Ok(None) => return Ok(()),
            Ok(Some(f)) if f.kind == SETTINGS && f.flags & ACK == 0 => {
                connection.send(&[frame(SETTINGS, ACK, 0, &[])])?
            }
            Ok(Some(f)) if f.kind == PING && f.flags & ACK == 0 => {
                connection.send(&[frame(PING, ACK, 0, &f.payload)])?
            }
            Ok(Some(f)) if f.kind == HEADERS => {
                opened.fetch_add(1, Ordering::SeqCst);
                open.push(f.stream);
                connection.send(&[frame(HEADERS, END_HEADERS, f.stream, GRPC_RESPONSE_HEADERS)])?;
            }
            Ok(Some(_)) => {}
            Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => {
                let reports: Vec<Vec<u8>> =
                    open.iter().map(|s| frame(DATA, 0, *s, report)).collect();
                connection.send(&reports)?;
            }
            Err(e) => return Err(e),
        }
    }
}
