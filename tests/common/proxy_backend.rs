//! A backend that records the PROXY protocol header (v1 or v2) each connection
//! starts with, for tests of Envoy sending one upstream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An HTTP/1.1 backend that reads the PROXY header (v1 or v2) each connection
/// starts with, records it, then answers every request 200 (closing the
/// connection after a request that asks to).
pub struct ProxyBackend {
    pub port: u16,
    /// The PROXY header of every connection, in order (empty: none).
    headers: Arc<Mutex<Vec<Vec<u8>>>>,
}

pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

impl ProxyBackend {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let headers = Arc::new(Mutex::new(Vec::new()));
        let seen = headers.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve_proxied(stream, &seen));
            }
        });
        ProxyBackend { port, headers }
    }

    pub fn headers(&self) -> Vec<Vec<u8>> {
        self.headers.lock().unwrap().clone()
    }
}

fn serve_proxied(stream: TcpStream, seen: &Mutex<Vec<Vec<u8>>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let Ok(header) = read_proxy_header(&mut reader) else {
        return;
    };
    seen.lock().unwrap().push(header);
    loop {
        let mut close = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.trim_end().is_empty() {
                break;
            }
            close |= line.to_ascii_lowercase().starts_with("connection: close");
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-backend: proxied\r\n\r\nok")
            .is_err()
            || close
        {
            return;
        }
    }
}

/// The PROXY header (v1 or v2) the connection starts with; empty if none.
fn read_proxy_header(reader: &mut BufReader<TcpStream>) -> std::io::Result<Vec<u8>> {
    let mut header = Vec::new();
    match reader.fill_buf()?.first() {
        Some(b'P') => {
            reader.read_until(b'\n', &mut header)?;
        }
        Some(b'\r') => {
            header = vec![0; 16];
            reader.read_exact(&mut header)?;
            let mut rest = vec![0; u16::from_be_bytes([header[14], header[15]]) as usize];
            reader.read_exact(&mut rest)?;
            header.extend(rest);
        }
        _ => {}
    }
    Ok(header)
}

/// A v2 header's source address and port (TCP over IPv4).
pub fn v2_source(header: &[u8]) -> Option<([u8; 4], u16)> {
    (header.len() >= 28
        && header[..12] == V2_SIGNATURE[..]
        && header[12] == 0x21
        && header[13] == 0x11)
        .then(|| {
            (
                [header[16], header[17], header[18], header[19]],
                u16::from_be_bytes([header[24], header[25]]),
            )
        })
}
