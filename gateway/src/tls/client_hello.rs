//! Reading a TLS ClientHello without terminating TLS: PASSTHROUGH servers route on its
//! SNI, then replay the bytes read to the upstream. The parser is hand-written, bounded
//! and total: any input yields a result, never a panic.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Largest ClientHello accepted (records and handshake header included).
pub const MAX_CLIENT_HELLO_BYTES: usize = 64 * 1024;

const RECORD_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
/// TLSPlaintext.length may not exceed 2^14.
const MAX_RECORD_LEN: usize = 1 << 14;

/// What the ClientHello says that routing needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHelloInfo {
    /// The first `host_name` of the server_name extension, lower-cased, trailing dot removed.
    pub sni: Option<String>,
    /// ALPN protocols offered, in the client's order.
    pub alpn: Vec<Vec<u8>>,
}

/// The outcome of parsing the bytes read so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientHelloParse {
    /// More bytes are needed.
    Incomplete,
    Complete(ClientHelloInfo),
    /// The first byte is not a TLS handshake record: plaintext or another protocol.
    NotTls,
    Malformed(&'static str),
}

/// Parses the TLS records at the start of `buf` and the ClientHello they carry
/// (which may span several records).
pub fn parse_client_hello(buf: &[u8]) -> ClientHelloParse {
    let mut handshake = Vec::new();
    let mut pos = 0;
    loop {
        let Some(header) = buf.get(pos..pos + 5) else {
            if pos == 0
                && !buf.is_empty()
                && (buf[0] != RECORD_HANDSHAKE || buf.get(1).is_some_and(|&v| v != 3))
            {
                return ClientHelloParse::NotTls;
            }
            return ClientHelloParse::Incomplete;
        };
        if header[0] != RECORD_HANDSHAKE || header[1] != 3 {
            return if pos == 0 {
                ClientHelloParse::NotTls
            } else {
                ClientHelloParse::Malformed("a non-handshake record interrupts the ClientHello")
            };
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD_LEN {
            return ClientHelloParse::Malformed("bad TLS record length");
        }
        let Some(fragment) = buf.get(pos + 5..pos + 5 + len) else {
            return ClientHelloParse::Incomplete;
        };
        handshake.extend_from_slice(fragment);
        pos += 5 + len;
        if handshake.len() >= 4 {
            if handshake[0] != HANDSHAKE_CLIENT_HELLO {
                return ClientHelloParse::Malformed("first handshake message is not a ClientHello");
            }
            let body_len = u24(&handshake[1..4]);
            if body_len + 4 > MAX_CLIENT_HELLO_BYTES {
                return ClientHelloParse::Malformed("ClientHello too large");
            }
            if let Some(body) = handshake.get(4..4 + body_len) {
                return match parse_body(body) {
                    Ok(info) => ClientHelloParse::Complete(info),
                    Err(reason) => ClientHelloParse::Malformed(reason),
                };
            }
        }
    }
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.0.len() {
            return Err("ClientHello truncated");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a 1- or 2-byte length prefix.
    fn vec8(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Result<&'a [u8], &'static str> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_body(body: &[u8]) -> Result<ClientHelloInfo, &'static str> {
    let mut r = Reader(body);
    let _legacy_version = r.u16()?;
    r.take(32)?; // random
    if r.vec8()?.len() > 32 {
        return Err("session id longer than 32 bytes");
    }
    let suites = r.vec16()?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err("bad cipher suite list");
    }
    if r.vec8()?.is_empty() {
        return Err("empty compression method list");
    }
    let mut info = ClientHelloInfo::default();
    if r.is_empty() {
        return Ok(info); // no extensions at all: a client without SNI
    }
    let mut exts = Reader(r.vec16()?);
    while !exts.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        match kind {
            EXT_SERVER_NAME if info.sni.is_none() => info.sni = parse_sni(data)?,
            EXT_ALPN if info.alpn.is_empty() => info.alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    Ok(info)
}

fn parse_sni(data: &[u8]) -> Result<Option<String>, &'static str> {
    let mut list = Reader(Reader(data).vec16()?);
    while !list.is_empty() {
        let name_type = list.u8()?;
        let name = list.vec16()?;
        if name_type != 0 {
            continue;
        }
        let name = std::str::from_utf8(name).map_err(|_| "server name is not ASCII")?;
        let name = name.strip_suffix('.').unwrap_or(name);
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*'));
        if !valid {
            return Err("server name is not a valid host name");
        }
        return Ok(Some(name.to_ascii_lowercase()));
    }
    Ok(None)
}

fn parse_alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut list = Reader(Reader(data).vec16()?);
    let mut protocols = Vec::new();
    while !list.is_empty() {
        let proto = list.vec8()?;
        if proto.is_empty() {
            return Err("empty ALPN protocol name");
        }
        protocols.push(proto.to_vec());
    }
    Ok(protocols)
}

/// A ClientHello read off a stream, with every byte read so it can be replayed.
#[derive(Debug, Clone)]
pub struct PeekedClientHello {
    pub info: ClientHelloInfo,
    pub bytes: Vec<u8>,
}

/// Why no ClientHello could be read. Carries the bytes read so far where they matter
/// (a plaintext client may still be served).
#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    #[error("not a TLS connection (first byte {first:#04x})")]
    NotTls { first: u8, bytes: Vec<u8> },
    #[error("malformed TLS ClientHello: {reason}")]
    Malformed {
        reason: &'static str,
        bytes: Vec<u8>,
    },
    #[error("connection closed after {} bytes, before a full ClientHello", .bytes.len())]
    Closed { bytes: Vec<u8> },
    #[error("no full ClientHello within {0:?}")]
    Timeout(Duration),
    #[error("reading the ClientHello: {0}")]
    Io(#[from] io::Error),
}

/// Reads from `stream` until a whole ClientHello has arrived (at most
/// [`MAX_CLIENT_HELLO_BYTES`], within `timeout`) and returns its SNI with the bytes read.
pub async fn peek_client_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<PeekedClientHello, PeekError> {
    match tokio::time::timeout(timeout, read_hello(stream)).await {
        Ok(result) => result,
        Err(_) => Err(PeekError::Timeout(timeout)),
    }
}

async fn read_hello<S: AsyncRead + Unpin>(stream: &mut S) -> Result<PeekedClientHello, PeekError> {
    let mut bytes = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let room = (MAX_CLIENT_HELLO_BYTES + 64 - bytes.len()).min(chunk.len());
        let n = stream.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(PeekError::Closed { bytes });
        }
        bytes.extend_from_slice(&chunk[..n]);
        match parse_client_hello(&bytes) {
            ClientHelloParse::Incomplete if bytes.len() < MAX_CLIENT_HELLO_BYTES => continue,
            ClientHelloParse::Incomplete => {
                return Err(PeekError::Malformed {
                    reason: "ClientHello too large",
                    bytes,
                })
            }
            ClientHelloParse::Complete(info) => return Ok(PeekedClientHello { info, bytes }),
            ClientHelloParse::NotTls => {
                return Err(PeekError::NotTls {
                    first: bytes[0],
                    bytes,
                })
            }
            ClientHelloParse::Malformed(reason) => {
                return Err(PeekError::Malformed { reason, bytes })
            }
        }
    }
}

/// A stream that first yields `prefix` (bytes already read from `inner`), then reads
/// from `inner`; writes go straight to `inner`.
#[derive(Debug)]
pub struct PrefixedStream<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> PrefixedStream<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        PrefixedStream {
            prefix,
            pos: 0,
            inner,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner stream and the prefix bytes not yet read.
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self
            .prefix
            .get(self.pos..)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        (self.inner, rest)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PrefixedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(rest) = this.prefix.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PrefixedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "client_hello_tests.rs"]
mod tests;
