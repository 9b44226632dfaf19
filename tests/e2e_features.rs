//! The feature table (src/podman_features.rs) measured on the podman at hand (issue 20): each
//! test builds a tiny Dockerfile that uses one feature with the real `podman build`, sorts what
//! happened into builds / rejects / builds differently, and asserts it against the table's row for
//! this version. scripts/test.sh runs them on Debian 12's podman 4.3.1, scripts/podman5-root.sh
//! on Debian 13's 5.4.2: both columns of the table are measured here, not copied.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{self, BASE, text};
use mab::podman_features::{Does, Feature, Verdict, Version, row};

/// What one build did with the feature.
#[derive(Debug)]
enum Observed {
    Builds,
    /// The build failed: podman's output.
    Rejected(String),
    /// It built, differently from BuildKit: what was seen.
    Differs(String),
}

fn podman_version() -> Version {
    let out = Command::new("podman")
        .args(["version", "--format", "{{.Client.Version}}"])
        .output()
        .expect("podman runs");
    let said = String::from_utf8_lossy(&out.stdout);
    Version::parse(&said).unwrap_or_else(|| panic!("podman version says {said:?}"))
}

/// A build context in a temporary directory; its image is removed when it goes.
struct Probe {
    dir: tempfile::TempDir,
    tag: String,
}

impl Probe {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            tag: format!(
                "localhost/mab-features/{name}:{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    fn file(&self, rel: &str, content: &str) -> &Self {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
        self
    }

    /// `podman build` of `dockerfile` with `args`: no layer cache (nothing left in the storage
    /// the tests share but the tag, which drop removes).
    fn build(&self, dockerfile: &str, args: &[&str]) -> Output {
        self.file("Dockerfile", dockerfile);
        Command::new("podman")
            .args(["build", "--layers=false", "--force-rm", "-t", &self.tag])
            .args(args)
            .arg(self.dir.path())
            .env("BUILDAH_ISOLATION", "chroot")
            .output()
            .expect("podman runs")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// A failed build is a rejection; a built one is judged by the `PROBE:` line its RUN printed:
/// `builds` when it says `want`, else it differs.
fn judge(out: &Output, want: &str) -> Observed {
    let all = text(out);
    if !out.status.success() {
        return Observed::Rejected(all);
    }
    let probe = all
        .lines()
        .find_map(|l| l.trim().strip_prefix("PROBE:"))
        .unwrap_or_else(|| panic!("the build printed no PROBE line:\n{all}"))
        .trim()
        .to_string();
    if probe == want {
        Observed::Builds
    } else {
        Observed::Differs(probe)
    }
}

/// The table's row for `feature` on this podman against what was observed.
fn assert_row(feature: Feature, observed: Observed) {
    let v = podman_version();
    let row = row(feature);
    let what = row.written;
    match (row.verdict(v), &observed) {
        (Verdict::Known(Does::Builds, _), Observed::Builds) => {}
        (Verdict::Known(Does::Rejects(said), at), Observed::Rejected(out)) => assert!(
            out.contains(said),
            "{what} on podman {v}: rejected as the table says (measured on {at}), but not with \"{said}\":\n{out}"
        ),
        (Verdict::Known(Does::Differs(how), _), Observed::Differs(seen)) => {
            eprintln!("{what} on podman {v}: differs as the table says ({how}); seen: {seen}")
        }
        (Verdict::Known(does, at), _) => panic!(
            "{what} on podman {v}: the table says {does:?} (measured on {at}); measured here: {observed:?}"
        ),
        (Verdict::Unknown { below, above }, _) => panic!(
            "{what}: podman {v} is not in the table ({} {:?}, {} {:?}); measured here: {observed:?}: add it",
            below.0, below.1, above.0, above.1
        ),
    }
}

macro_rules! e2e_test {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[test]
        #[cfg_attr(
            not(e2e),
            ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
        )]
        fn $name() {
            let _serial = common::e2e_serial();
            $body
        }
    };
}

e2e_test! {
    /// `RUN <<EOF`: 4.3.1 reads the heredoc's lines as instructions.
    fn heredoc() {
        let p = Probe::new("heredoc");
        let out = p.build(&format!("FROM {BASE}\nRUN <<EOF\necho PROBE:heredoc\nEOF\n"), &[]);
        assert_row(Feature::Heredoc, judge(&out, "heredoc"));
    }
}

e2e_test! {
    fn copy_link() {
        let p = Probe::new("copy-link");
        p.file("a", "a\n");
        let out = p.build(&format!("FROM {BASE}\nCOPY --link a /a\nRUN echo PROBE:$(cat /a)\n"), &[]);
        assert_row(Feature::CopyLink, judge(&out, "a"));
    }
}

e2e_test! {
    /// BuildKit keeps the source's path below the context: /dst/src/a.
    fn copy_parents() {
        let p = Probe::new("copy-parents");
        p.file("src/a", "a\n");
        let out = p.build(
            &format!("FROM {BASE}\nCOPY --parents src/a /dst/\nRUN echo PROBE:$(ls /dst)\n"),
            &[],
        );
        assert_row(Feature::CopyParents, judge(&out, "src"));
    }
}

e2e_test! {
    /// BuildKit matches `--exclude` patterns below the source: src/b.log stays out.
    fn copy_exclude() {
        let p = Probe::new("copy-exclude");
        p.file("src/a.txt", "a\n").file("src/b.log", "b\n");
        let out = p.build(
            &format!("FROM {BASE}\nCOPY --exclude=*.log src/ /dst/\nRUN echo PROBE:$(ls /dst | tr '\\n' ,)\n"),
            &[],
        );
        assert_row(Feature::CopyExclude, judge(&out, "a.txt,"));
    }
}

e2e_test! {
    /// Builds means: the right sum builds and a wrong one fails the build.
    fn add_checksum() {
        let server = Static::serve();
        std::fs::write(server.root().join("f"), "payload\n").unwrap();
        let sum = "sha256:d1ed2d04e5a3fd8e6fa57dca2eafa4a6e87bc1e5fc8fe9a1d9eef1b0ae3fd80f";
        let right = format!("sha256:{}", sha256(b"payload\n"));
        assert_ne!(right, sum);
        let p = Probe::new("add-checksum");
        let df = |sum: &str| {
            format!(
                "FROM {BASE}\nADD --checksum={sum} http://127.0.0.1:{}/f /f\nRUN echo PROBE:$(cat /f)\n",
                server.port
            )
        };
        let observed = match judge(&p.build(&df(&right), &[]), "payload") {
            Observed::Builds if p.build(&df(sum), &[]).status.success() => {
                Observed::Differs("a wrong sum builds too".into())
            }
            other => other,
        };
        assert_row(Feature::AddChecksum, observed);
    }
}

e2e_test! {
    fn add_unpack() {
        let p = Probe::new("add-unpack");
        p.file("a", "a\n");
        let out = p.build(&format!("FROM {BASE}\nADD --unpack=true a /a\nRUN echo PROBE:$(cat /a)\n"), &[]);
        assert_row(Feature::AddUnpack, judge(&out, "a"));
    }
}

e2e_test! {
    /// A repository served over git's smart HTTP protocol: BuildKit clones it into the
    /// destination.
    fn add_git_url() {
        let server = Static::serve();
        let work = tempfile::tempdir().unwrap();
        let git = |dir: &Path, args: &[&str]| {
            let out = Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t.invalid")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t.invalid")
                .output()
                .expect("git runs");
            assert!(out.status.success(), "git {args:?}: {}", text(&out));
        };
        std::fs::write(work.path().join("README"), "cloned\n").unwrap();
        git(work.path(), &["init", "-q", "-b", "main"]);
        git(work.path(), &["add", "README"]);
        git(work.path(), &["commit", "-q", "-m", "one"]);
        let bare = server.root().join("repo.git");
        git(work.path(), &["clone", "-q", "--bare", ".", bare.to_str().unwrap()]);
        let p = Probe::new("add-git");
        let out = p.build(
            &format!(
                "FROM {BASE}\nADD http://127.0.0.1:{}/repo.git /src\nRUN if [ -f /src/README ]; then echo PROBE:cloned; elif [ -f /src ]; then echo PROBE:a-file; else echo PROBE:neither; fi\n",
                server.port
            ),
            &[],
        );
        assert_row(Feature::AddGit, judge(&out, "cloned"));
    }
}

e2e_test! {
    fn run_network() {
        let p = Probe::new("run-network");
        let out = p.build(&format!("FROM {BASE}\nRUN --network=none echo PROBE:ran\n"), &[]);
        assert_row(Feature::RunNetwork, judge(&out, "ran"));
    }
}

e2e_test! {
    fn run_security() {
        let p = Probe::new("run-security");
        let out = p.build(&format!("FROM {BASE}\nRUN --security=insecure echo PROBE:ran\n"), &[]);
        assert_row(Feature::RunSecurity, judge(&out, "ran"));
    }
}

e2e_test! {
    /// Without `--ssh`, BuildKit fails the step; podman runs it with no agent.
    fn run_mount_ssh() {
        let p = Probe::new("run-mount-ssh");
        let out = p.build(
            &format!("FROM {BASE}\nRUN --mount=type=ssh if [ -S \"$SSH_AUTH_SOCK\" ]; then echo PROBE:agent; else echo PROBE:no-agent; fi\n"),
            &[],
        );
        assert_row(Feature::RunMountSsh, judge(&out, "agent"));
    }
}

e2e_test! {
    /// `FROM ... as` in lower case breaks BuildKit's FromAsCasing check, an error with
    /// `error=true`; a podman that ignores the directive builds it.
    fn check_directive() {
        let p = Probe::new("check");
        let out = p.build(
            &format!("# check=error=true\nFROM {BASE} as lower\nRUN echo PROBE:built\n"),
            &[],
        );
        assert_row(Feature::CheckDirective, judge(&out, "checked"));
    }
}

e2e_test! {
    fn from_platform_args() {
        let p = Probe::new("from-targetos");
        let out = p.build(
            &format!("FROM {BASE} AS x-linux\nRUN echo linux > /os\nFROM x-$TARGETOS\nRUN echo PROBE:$(cat /os)\n"),
            &[],
        );
        assert_row(Feature::FromPlatformArgs, judge(&out, "linux"));
    }
}

e2e_test! {
    /// An arm64 build's `FROM --platform=$BUILDPLATFORM` stage runs on the machine (x86_64)
    /// when podman sets BUILDPLATFORM.
    #[cfg_attr(not(target_arch = "x86_64"), ignore = "measured on amd64 machines")]
    fn build_platform() {
        let p = Probe::new("buildplatform");
        let out = p.build(
            &format!("FROM --platform=$BUILDPLATFORM {BASE}\nRUN echo PROBE:$(uname -m)\n"),
            &["--platform", "linux/arm64"],
        );
        assert_row(Feature::BuildPlatform, judge(&out, "x86_64"));
    }
}

/// A file server on 127.0.0.1 for ADD's URLs: a file is served as it is, a directory as a
/// listing (as `python3 -m http.server` does), anything else 404; and git's smart HTTP protocol
/// (`info/refs?service=...`, `POST .../git-upload-pack`) by `git http-backend` as a CGI, as a
/// git forge serves it.
struct Static {
    root: tempfile::TempDir,
    port: u16,
}

impl Static {
    fn serve() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let dir = root.path().to_path_buf();
        // Lives as long as the test process; it only answers what the test's build asks.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let dir = dir.clone();
                std::thread::spawn(move || answer(conn, &dir));
            }
        });
        Self { root, port }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }
}

fn answer(conn: TcpStream, root: &Path) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The headers, up to the empty line.
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if !reader.read_line(&mut header).is_ok_and(|n| n > 0) || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if query.starts_with("service=git-") || path.ends_with("/git-upload-pack") {
        return git_backend(conn, reader, root, (method, path, query), &headers);
    }
    let local: PathBuf = root.join(path.trim_start_matches('/'));
    let escapes = path.split('/').any(|c| c == "..");
    let (status, body) = if escapes {
        ("404 Not Found", Vec::new())
    } else if local.is_file() {
        ("200 OK", std::fs::read(&local).unwrap_or_default())
    } else if local.is_dir() {
        let mut names: Vec<String> = std::fs::read_dir(&local)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        ("200 OK", format!("{}\n", names.join("\n")).into_bytes())
    } else {
        ("404 Not Found", Vec::new())
    };
    let mut w = conn;
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if method != "HEAD" {
        let _ = w.write_all(&body);
    }
}

/// One request of git's smart protocol, answered by `git http-backend` (CGI: the request's
/// headers as environment, its body on stdin, headers then the body on stdout).
fn git_backend(
    mut conn: TcpStream,
    mut reader: BufReader<TcpStream>,
    root: &Path,
    (method, path, query): (&str, &str, &str),
    headers: &[(String, String)],
) {
    use std::io::Read;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let length: usize = header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", length.to_string())
        .env("CONTENT_TYPE", header("content-type").unwrap_or(""))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    for (k, v) in headers {
        cgi.env(
            format!("HTTP_{}", k.to_ascii_uppercase().replace('-', "_")),
            v,
        );
    }
    let mut child = cgi.spawn().expect("git http-backend runs");
    let mut stdin = child.stdin.take().expect("stdin");
    // Written from a thread of its own: the backend may answer before it read everything.
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().expect("git http-backend ends");
    let _ = writer.join();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, at + 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| (at, at + 2))
        });
    let Some((end, start)) = split else { return };
    let cgi_headers = String::from_utf8_lossy(&out.stdout[..end]).into_owned();
    let status = cgi_headers
        .lines()
        .find_map(|l| l.strip_prefix("Status:"))
        .map_or("200 OK".to_string(), |s| s.trim().to_string());
    let rest: Vec<&str> = cgi_headers
        .lines()
        .filter(|l| !l.starts_with("Status:"))
        .collect();
    let body = &out.stdout[start..];
    let rest: String = rest.iter().map(|h| format!("{h}\r\n")).collect();
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\n{rest}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(body);
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
