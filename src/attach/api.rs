//! The OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`), asked before the fallback
//! tag: a registry that has it answers 200 with an image index listing every manifest whose
//! `subject` is the digest (an empty index when none is); one without it answers 404 (measured:
//! docker-registry 2.8.2, the registry installable here). Any other answer, an unreachable
//! registry or one that wants credentials (mab does not log in for this one read) counts as no
//! API: the fallback tag, which every registry accepts and every client reads, is used.
//!
//! skopeo has no command for this request, so mab asks over HTTP itself: plain HTTP for a
//! registry the config or registries.conf marks `insecure` (as c/image falls back to for one),
//! HTTPS with the system's web roots otherwise.

use std::io::Read as _;
use std::time::{Duration, Instant};

use super::{Access, IMAGE_INDEX, Index, Subject};

/// What the registry said to the referrers API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It has the API: the manifests that refer to the digest.
    Index(Index),
    /// It has none, or said nothing usable: why, in words.
    Absent(String),
}

/// The longest answer read: a referrers index lists descriptors, a few hundred bytes each.
const MAX_BYTES: u64 = 4 << 20;

/// The request's URL for `subject`.
pub fn url(access: &Access, subject: &Subject) -> String {
    let qualified = subject.repository.qualified();
    let (registry, path) = qualified.split_once('/').unwrap_or((qualified, ""));
    // Docker Hub's API is served from another host than its name in references.
    let host = match registry {
        "docker.io" => "registry-1.docker.io",
        other => other,
    };
    let scheme = if access.insecure { "http" } else { "https" };
    format!("{scheme}://{host}/v2/{path}/referrers/{}", subject.digest())
}

/// Asks `subject`'s registry for what refers to it, within the run's registry limits (as the
/// supervisor keeps a registry command to them): no wait for the connection or the next bytes
/// longer than the stall limit, and the answer read by the deadline. (ureq's overall timeout
/// would override the per-read one, so the deadline is kept here, between reads.)
pub fn probe(access: &Access, subject: &Subject) -> Answer {
    let url = url(access, subject);
    let started = Instant::now();
    let (deadline, stall) = limits(access);
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(stall)
        .timeout_read(stall)
        .timeout_write(stall)
        .redirects(3)
        .build();
    match agent.get(&url).set("Accept", IMAGE_INDEX).call() {
        Ok(response) => {
            let status = response.status();
            let content_type = response.content_type().to_string();
            let mut reader = response.into_reader().take(MAX_BYTES);
            let mut body = Vec::new();
            let mut chunk = [0u8; 16 << 10];
            loop {
                if started.elapsed() > deadline {
                    return Answer::Absent(format!(
                        "GET {url}: no whole answer within the registry deadline ({deadline:?})"
                    ));
                }
                match reader.read(&mut chunk) {
                    Ok(0) => break answer(status, &content_type, &body),
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Answer::Absent(format!("GET {url}: {e}")),
                }
            }
        }
        Err(ureq::Error::Status(code, _)) => Answer::Absent(format!("GET {url}: {code}")),
        Err(e) => Answer::Absent(format!("GET {url}: {e}")),
    }
}

/// The request's deadline and stall limit: the run's, else their defaults.
fn limits(access: &Access) -> (Duration, Duration) {
    let deadline = access
        .limits
        .deadline
        .unwrap_or(crate::config::DEFAULT_REGISTRY_TIMEOUT);
    let stall = access
        .limits
        .stall
        .unwrap_or(crate::config::DEFAULT_REGISTRY_STALL)
        .min(deadline);
    (deadline, stall)
}

/// Judges an answer: the API is there only when it is 200 with an image index.
pub fn answer(status: u16, content_type: &str, body: &[u8]) -> Answer {
    if status != 200 {
        return Answer::Absent(format!("it answered {status}"));
    }
    match Index::parse(body) {
        Ok(index)
            if content_type == IMAGE_INDEX || index.media_type.as_deref() == Some(IMAGE_INDEX) =>
        {
            Answer::Index(index)
        }
        Ok(_) => Answer::Absent(format!("it answered {content_type}, not an image index")),
        Err(e) => Answer::Absent(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    fn subject(host: &str) -> Subject {
        Subject::named(format!("{host}/acme/app").parse().unwrap(), "sha256:ab")
    }

    #[test]
    fn the_url_names_the_registry_path_and_digest() {
        let insecure = Access {
            insecure: true,
            ..Access::default()
        };
        assert_eq!(
            url(&insecure, &subject("127.0.0.1:5000")),
            "http://127.0.0.1:5000/v2/acme/app/referrers/sha256:ab"
        );
        let hub = Subject::named("acme/app".parse().unwrap(), "sha256:ab");
        assert_eq!(
            url(&Access::default(), &hub),
            "https://registry-1.docker.io/v2/acme/app/referrers/sha256:ab"
        );
    }

    #[test]
    fn only_a_200_with_an_index_is_the_api() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cd","size":9,"artifactType":"application/spdx+json"}]}"#;
        match answer(200, IMAGE_INDEX, index) {
            Answer::Index(i) => {
                assert_eq!(
                    i.manifests[0].artifact_type.as_deref(),
                    Some("application/spdx+json")
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer(404, "text/plain", b"404 page not found"),
            Answer::Absent(_)
        ));
        assert!(matches!(
            answer(200, "text/html", b"<html>"),
            Answer::Absent(_)
        ));
        assert!(matches!(answer(401, IMAGE_INDEX, index), Answer::Absent(_)));
    }

    /// A stand-in HTTP server (NOT a registry: no registry with the referrers API installs
    /// offline here) answering one request with `status` and `body`: this tests the request
    /// mab makes and how it reads the answer, not a registry's behaviour.
    fn stand_in(
        status: &'static str,
        body: &'static [u8],
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let served = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                request.push_str(&line);
            }
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {IMAGE_INDEX}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .unwrap();
            stream.write_all(body).unwrap();
            request
        });
        (host, served)
    }

    #[test]
    fn a_stand_in_server_answering_an_index_is_read_as_the_api() {
        let (host, served) = stand_in(
            "200 OK",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        );
        let access = Access {
            insecure: true,
            ..Access::default()
        };
        let got = probe(&access, &subject(&host));
        let request = served.join().unwrap();
        assert!(
            request.starts_with("GET /v2/acme/app/referrers/sha256:ab HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains(&format!("accept: {IMAGE_INDEX}")),
            "{request}"
        );
        assert!(matches!(got, Answer::Index(i) if i.manifests.is_empty()));

        let (host, served) = stand_in("404 Not Found", b"404 page not found");
        let got = probe(&access, &subject(&host));
        served.join().unwrap();
        assert!(matches!(got, Answer::Absent(why) if why.contains("404")));
    }

    /// A registry that takes the request and never answers is given up on after the run's
    /// stall limit (the supervisor's rule for a registry command that moves no data), not
    /// waited on.
    #[test]
    fn a_registry_that_never_answers_is_given_up_on_by_the_runs_limits() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let held = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            // Holds the connection open, silent, until the probe has given up.
            let _ = wait.recv();
            drop(stream);
        });
        let access = Access {
            insecure: true,
            registries_conf: None,
            limits: crate::supervise::Limits {
                deadline: Some(Duration::from_secs(600)),
                stall: Some(Duration::from_millis(300)),
            },
        };
        let got = probe(&access, &subject(&host));
        done.send(()).unwrap();
        held.join().unwrap();
        assert!(
            matches!(&got, Answer::Absent(why) if why.to_lowercase().contains("timed out")),
            "{got:?}"
        );
    }
}
