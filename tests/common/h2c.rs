//! A bare HTTP/2 client over cleartext TCP with prior knowledge, writing and
//! reading frames itself: for tests that look at what a server advertises
//! (SETTINGS, WINDOW_UPDATE) and that do what a client library never would, such
//! as opening more concurrent streams than the server allows. [`Connection::accept`]
//! is the server side of the same, for tiny servers that Envoy calls.
//!
//! Requests go out as HPACK literals without indexing or Huffman coding; of a
//! response only a `:status` from HPACK's static table is decoded.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The (identifier, value) pairs of a SETTINGS frame.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks_exact(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
                )
            })
            .collect()
    }

    /// The window size increment of a WINDOW_UPDATE frame.
    pub fn window_increment(&self) -> u32 {
        u32::from_be_bytes(self.payload[..4].try_into().unwrap()) & 0x7fff_ffff
    }

    /// The `:status` of a HEADERS frame when it is the first field and indexed in
    /// HPACK's static table (200, 204, 206, 304, 400, 404, 500), as servers send it.
    pub fn status(&self) -> Option<u16> {
        let statuses = [200, 204, 206, 304, 400, 404, 500];
        let first = *self.payload.first()?;
        // An indexed field (high bit set), static indexes 8..=14.
        let index = usize::from(first & 0x7f).checked_sub(8)?;
        (first & 0x80 != 0).then(|| statuses.get(index).copied())?
    }
}

/// The bytes of one frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A HEADERS frame (END_HEADERS; END_STREAM if `end_stream`) for
/// `method http://authority/path`.
pub fn request(
    stream: u32,
    method: &str,
    authority: &str,
    path: &str,
    end_stream: bool,
) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", method),
        (":scheme", "http"),
        (":authority", authority),
        (":path", path),
    ] {
        // Literal header field without indexing, new name; lengths below 127.
        block.push(0x00);
        for text in [name, value] {
            assert!(text.len() < 127, "{text}");
            block.push(text.len() as u8);
            block.extend_from_slice(text.as_bytes());
        }
    }
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &block)
}

/// One HTTP/2 connection to 127.0.0.1.
pub struct Connection {
    socket: TcpStream,
    buffer: Vec<u8>,
    /// Every frame read so far, in order.
    pub received: Vec<Frame>,
}

impl Connection {
    /// Connects and sends the client preface with an empty SETTINGS frame. Reads
    /// time out after 5 s.
    pub fn open(port: u16) -> std::io::Result<Connection> {
        let mut socket = TcpStream::connect(("127.0.0.1", port))?;
        socket.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        preface.extend(frame(SETTINGS, 0, 0, &[]));
        socket.write_all(&preface)?;
        Ok(Connection {
            socket,
            buffer: Vec::new(),
            received: Vec::new(),
        })
    }

    /// The server side of a connection a client opened: reads the client's
    /// preface and sends an empty SETTINGS frame. Reads time out after `timeout`.
    pub fn accept(mut socket: TcpStream, timeout: Duration) -> std::io::Result<Connection> {
        socket.set_read_timeout(Some(timeout))?;
        let mut preface = [0u8; 24];
        socket.read_exact(&mut preface)?;
        socket.write_all(&frame(SETTINGS, 0, 0, &[]))?;
        Ok(Connection {
            socket,
            buffer: Vec::new(),
            received: Vec::new(),
        })
    }

    /// Sends `frames` in one write.
    pub fn send(&mut self, frames: &[Vec<u8>]) -> std::io::Result<()> {
        self.socket.write_all(&frames.concat())
    }

    /// The next frame; `Ok(None)` once the server has closed (or reset) the connection.
    pub fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if self.buffer.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buffer[0], self.buffer[1], self.buffer[2]])
                    as usize;
                if self.buffer.len() >= 9 + len {
                    let head: Vec<u8> = self.buffer.drain(..9).collect();
                    let frame = Frame {
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload: self.buffer.drain(..len).collect(),
                    };
                    self.received.push(frame.clone());
                    return Ok(Some(frame));
                }
            }
            let mut chunk = [0u8; 16384];
            match self.socket.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads up to the server's SETTINGS frame, acknowledges it, and returns its
    /// settings.
    pub fn handshake(&mut self) -> std::io::Result<Vec<(u16, u32)>> {
        loop {
            let frame = self.next_frame()?.ok_or(ErrorKind::UnexpectedEof)?;
            if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                self.send(&[self::frame(SETTINGS, ACK, 0, &[])])?;
                return Ok(frame.settings());
            }
        }
    }

    /// The connection's flow-control window as the server set it: 65535 at the
    /// start of every connection plus the increment of the first WINDOW_UPDATE on
    /// stream 0 received so far (the one a server sends with its SETTINGS to raise
    /// it, before any data).
    pub fn connection_window(&self) -> u32 {
        65535
            + self
                .received
                .iter()
                .find(|f| f.kind == WINDOW_UPDATE && f.stream == 0)
                .map_or(0, Frame::window_increment)
    }

    /// Reads frames until `stream` ends (END_STREAM or RST_STREAM) or the
    /// connection closes: every frame read, in order.
    pub fn until_end_of(&mut self, stream: u32) -> std::io::Result<Vec<Frame>> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next_frame()? {
            let ends = frame.stream == stream
                && (frame.kind == RST_STREAM
                    || (matches!(frame.kind, DATA | HEADERS) && frame.flags & END_STREAM != 0));
            frames.push(frame);
            if ends {
                break;
            }
        }
        Ok(frames)
    }
}
