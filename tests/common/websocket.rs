//! A WebSocket backend and client for tests of upgrades through Envoy.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A WebSocket backend: answers an Upgrade with 101, then echoes every byte.
/// (Envoy does not check Sec-WebSocket-Accept, so a fixed one will do.)
pub fn start_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(head) = read_head(&mut stream) else {
                    return;
                };
                if !head.to_ascii_lowercase().contains("upgrade: websocket") {
                    let _ = stream.write_all(
                        b"HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    return;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                );
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// Reads up to the end of an HTTP head (bounded by the stream's read timeout).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// A WebSocket handshake for `host` through Envoy and one message echoed over the tunnel:
/// the status line of the answer, and what came back.
pub fn round_trip(port: u16, host: &str) -> std::io::Result<(String, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(
        format!("GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            .as_bytes(),
    )?;
    let head = read_head(&mut stream).unwrap_or_default();
    let status = head.lines().next().unwrap_or("").to_string();
    if !status.contains(" 101 ") {
        return Ok((status, Vec::new()));
    }
    // A masked text frame "Websocket Support!" (as the conformance test sends);
    // the backend echoes the bytes as they are.
    let payload = b"Websocket Support!";
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame)?;
    let mut echoed = vec![0u8; frame.len()];
    stream.read_exact(&mut echoed)?;
    assert_eq!(echoed, frame);
    Ok((status, echoed))
}
