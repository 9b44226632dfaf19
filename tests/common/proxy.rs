//! A fault-injecting HTTP proxy in front of the test registry, for the registry failures a run
//! must survive: a connection reset in the middle of a blob upload, a manifest PUT that is never
//! answered, an error status on one tag.
//!
//! It parses the requests (request line, headers, a `Content-Length` or chunked body) so that it
//! knows which request it is forwarding; responses are piped back as they come. Go's HTTP client
//! (podman, skopeo) never pipelines, so a response the proxy makes up cannot interleave with one
//! from the registry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to the requests it matches instead of forwarding them faithfully.
#[derive(Clone, Debug)]
pub enum Fault {
    /// A blob upload (PATCH or PUT to `/v2/<name>/blobs/uploads/...`) is cut with a TCP reset
    /// after this many body bytes were forwarded. A body shorter than that is not cut.
    ResetUpload { after_bytes: u64 },
    /// `PUT /v2/<name>/manifests/<reference>` (any reference when `None`, else only that tag or
    /// digest): the request is read and never answered; the connection stays open.
    HangManifestPut { reference: Option<String> },
    /// `<method> /v2/<name>/manifests/<reference>` answered by the proxy with this status and a
    /// registry-style JSON error body, without reaching the registry.
    Status {
        method: &'static str,
        reference: String,
        status: u16,
    },
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    /// The armed fault and how many more requests it hits (`None`: every one).
    fault: Mutex<Option<(Fault, Option<usize>)>>,
    hits: AtomicUsize,
    stopping: AtomicBool,
    /// The open connections' sockets by connection number, shut down when the proxy is
    /// dropped so that no thread stays blocked (a hung request holds its connection until then).
    sockets: Mutex<Vec<(usize, TcpStream)>>,
    connections: AtomicUsize,
}

impl Proxy {
    /// A plain-HTTP proxy on 127.0.0.1:<free port> in front of the registry at
    /// 127.0.0.1:`upstream_port`.
    pub fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared::default());
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if shared.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        // A failed connection is the client's or the registry's business.
                        let _ = serve(client, upstream_port, &shared);
                    });
                }
            })
        };
        Self {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Arms `fault` for the next `times` matching requests (`None`: every one until `clear`).
    pub fn fail(&self, fault: Fault, times: Option<usize>) {
        *self.shared.fault.lock().unwrap() = Some((fault, times));
    }

    pub fn clear(&self) {
        *self.shared.fault.lock().unwrap() = None;
    }

    /// How many requests a fault has hit so far.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for (_, s) in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// One request's head as the proxy needs it.
struct Head {
    method: String,
    path: String,
    /// The request line and headers, as received.
    raw: Vec<u8>,
    body: Body,
}

enum Body {
    Length(u64),
    Chunked,
}

/// What the proxy does with one request.
enum Action {
    Forward,
    Reset { after_bytes: u64 },
    Hang,
    Answer(u16),
}

fn serve(client: TcpStream, upstream_port: u16, shared: &Shared) -> std::io::Result<()> {
    let upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    let id = shared.connections.fetch_add(1, Ordering::SeqCst);
    {
        let mut sockets = shared.sockets.lock().unwrap();
        sockets.push((id, client.try_clone()?));
        sockets.push((id, upstream.try_clone()?));
    }
    let aborted = Arc::new(AtomicBool::new(false));
    // Responses flow back as the registry sends them.
    let pump = {
        let (mut from, mut to) = (upstream.try_clone()?, client.try_clone()?);
        let aborted = aborted.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            // An orderly end of the registry's side; after a reset the client gets no FIN.
            if !aborted.load(Ordering::SeqCst) {
                let _ = to.shutdown(Shutdown::Write);
            }
        })
    };
    let mut reader = BufReader::new(client.try_clone()?);
    let mut to_registry = upstream.try_clone()?;
    let result = loop {
        let head = match read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match action(&head, shared) {
            Action::Forward => {
                to_registry.write_all(&head.raw)?;
                forward_body(&mut reader, &mut to_registry, &head.body, u64::MAX)?;
            }
            Action::Reset { after_bytes } => {
                to_registry.write_all(&head.raw)?;
                let sent = forward_body(&mut reader, &mut to_registry, &head.body, after_bytes)?;
                if sent >= after_bytes {
                    shared.hits.fetch_add(1, Ordering::SeqCst);
                    aborted.store(true, Ordering::SeqCst);
                    break Ok(());
                }
            }
            Action::Hang => {
                forward_body(&mut reader, &mut std::io::sink(), &head.body, u64::MAX)?;
                shared.hits.fetch_add(1, Ordering::SeqCst);
                // Never answered: wait for the client to give up, or the proxy to stop.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                break Ok(());
            }
            Action::Answer(status) => {
                forward_body(&mut reader, &mut std::io::sink(), &head.body, u64::MAX)?;
                shared.hits.fetch_add(1, Ordering::SeqCst);
                let body = format!(
                    "{{\"errors\":[{{\"code\":\"UNAVAILABLE\",\"message\":\"injected by the test proxy for {} {}\",\"detail\":null}}]}}",
                    head.method, head.path
                );
                let mut out = client.try_clone()?;
                write!(
                    out,
                    "HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                out.flush()?;
                break Ok(());
            }
        }
    };
    if aborted.load(Ordering::SeqCst) {
        // SO_LINGER 0: the last close of each socket sends a TCP reset, not an orderly FIN,
        // which is what a proxy or load balancer that drops a connection mid-transfer does.
        for s in [&client, &upstream] {
            let _ = rustix::net::sockopt::set_socket_linger(s, Some(Duration::ZERO));
        }
        // Ends the pump's read without writing anything to the client.
        let _ = upstream.shutdown(Shutdown::Read);
    } else {
        let _ = upstream.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
    }
    let _ = pump.join();
    // The last handles: dropping them (and `client`, `upstream` below) closes the sockets.
    shared.sockets.lock().unwrap().retain(|(c, _)| *c != id);
    drop(reader);
    drop(to_registry);
    result
}

/// The action for `head`: the armed fault if it matches, which then counts one use.
fn action(head: &Head, shared: &Shared) -> Action {
    let mut armed = shared.fault.lock().unwrap();
    let Some((fault, times)) = armed.as_mut() else {
        return Action::Forward;
    };
    let manifest_ref = head
        .path
        .split('?')
        .next()
        .and_then(|p| p.rsplit_once("/manifests/"))
        .map(|(_, r)| r);
    let action = match fault {
        Fault::ResetUpload { after_bytes }
            if (head.method == "PATCH" || head.method == "PUT")
                && head.path.contains("/blobs/uploads/") =>
        {
            Action::Reset {
                after_bytes: *after_bytes,
            }
        }
        Fault::HangManifestPut { reference }
            if head.method == "PUT"
                && manifest_ref
                    .is_some_and(|r| reference.as_deref().is_none_or(|want| r == want)) =>
        {
            Action::Hang
        }
        Fault::Status {
            method,
            reference,
            status,
        } if head.method == *method && manifest_ref == Some(reference.as_str()) => {
            Action::Answer(*status)
        }
        _ => return Action::Forward,
    };
    match times {
        Some(0) => return Action::Forward,
        Some(n) => *n -= 1,
        None => {}
    }
    action
}

/// Reads a request line and its headers; `None` when the client closed the connection.
fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut raw = Vec::new();
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    raw.extend_from_slice(line.as_bytes());
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let mut body = Body::Length(0);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(line.as_bytes());
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                body = Body::Length(value.parse().unwrap_or(0));
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.eq_ignore_ascii_case("chunked")
            {
                body = Body::Chunked;
            }
        }
    }
    Ok(Some(Head {
        method,
        path,
        raw,
        body,
    }))
}

/// Copies a request body from `reader` to `out` as it was framed, stopping once `limit` bytes
/// of content have been sent; returns how many were.
fn forward_body(
    reader: &mut BufReader<TcpStream>,
    out: &mut impl Write,
    body: &Body,
    limit: u64,
) -> std::io::Result<u64> {
    match body {
        Body::Length(n) => copy_at_most(reader, out, *n, limit),
        Body::Chunked => {
            let mut sent = 0;
            let mut line = String::new();
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                out.write_all(line.as_bytes())?;
                let size = line.trim_end().split(';').next().unwrap_or("0");
                let size = u64::from_str_radix(size.trim(), 16).unwrap_or(0);
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            out.write_all(b"\r\n")?;
                            return Ok(sent);
                        }
                        out.write_all(line.as_bytes())?;
                    }
                }
                sent += copy_at_most(reader, out, size, limit - sent)?;
                if sent >= limit {
                    return Ok(sent);
                }
                line.clear();
                reader.read_line(&mut line)?;
                out.write_all(line.as_bytes())?;
            }
        }
    }
}

/// Copies `n` bytes, or `limit` if fewer; returns how many were copied.
fn copy_at_most(
    reader: &mut BufReader<TcpStream>,
    out: &mut impl Write,
    n: u64,
    limit: u64,
) -> std::io::Result<u64> {
    let take = n.min(limit);
    let copied = std::io::copy(&mut reader.by_ref().take(take), out)?;
    if copied < take {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(copied)
}
