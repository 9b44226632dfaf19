//! The README and docs/ stay true: every relative link leads to a file and heading that exist,
//! every `cargo run` command the README shows runs, every script it names is there, and the
//! config of its tour plans.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const MAB: &str = env!("CARGO_BIN_EXE_mab");

fn pages() -> Vec<PathBuf> {
    let mut pages = vec![
        Path::new(ROOT).join("README.md"),
        Path::new(ROOT).join("DEVELOPERS.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The lines of a Markdown page outside code fences, with their line numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The code blocks of a page in the given language.
fn blocks<'a>(text: &'a str, lang: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match (&mut current, t.strip_prefix("```")) {
            (None, Some(info)) if info.trim() == lang => current = Some(Vec::new()),
            (Some(_), Some(_)) => out.push(current.take().unwrap()),
            (None, Some(_)) => current = Some(Vec::new()).filter(|_| false),
            (Some(block), None) => block.push(line),
            (None, None) => {}
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap();
    prose(&text)
        .into_iter()
        .filter_map(|(_, l)| l.strip_prefix('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// Every `[text](target)` of a line, but the ones inside inline code.
fn links(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_code = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => in_code = !in_code,
            b']' if !in_code && bytes.get(i + 1) == Some(&b'(') => {
                if let Some(end) = line[i + 2..].find(')') {
                    out.push(&line[i + 2..i + 2 + end]);
                    i += 2 + end;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading_that_exist() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (n, line) in prose(&text) {
            for target in links(line) {
                if target.starts_with("http://") || target.starts_with("https://") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
                let dest = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                let at = format!("{}:{n}: {target}", page.display());
                if !dest.exists() {
                    broken.push(format!("{at}: no such file"));
                } else if !anchor.is_empty()
                    && (dest.extension().is_none_or(|e| e != "md")
                        || !anchors(&dest).iter().any(|a| a == anchor))
                {
                    broken.push(format!("{at}: no such heading"));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_stays_short_and_links_every_page_of_docs() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines: move detail to docs/"
    );
    for page in pages()
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("docs"))
    {
        let name = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        assert!(
            readme.contains(&format!("]({name}")),
            "README.md does not link {name}"
        );
    }
}

/// One README command line, run: `cargo run [--release] -- ARGS` as the mab binary (in the
/// directory a leading `cd DIR &&` names, up to a pipe), scripts checked to be there.
fn check_command(line: &str) -> Result<(), String> {
    let line = line.split(" #").next().unwrap().trim();
    let line = line.split(" | ").next().unwrap();
    let (dir, cmd) = match line.strip_prefix("cd ") {
        Some(rest) => {
            let (dir, cmd) = rest.split_once(" && ").ok_or("cd without &&")?;
            (Path::new(ROOT).join(dir), cmd)
        }
        None => (PathBuf::from(ROOT), line),
    };
    let words = shlex::split(cmd).ok_or("bad quoting")?;
    let words = match words.iter().position(|w| w == "2>" || w == ">") {
        Some(at) => &words[..at],
        None => &words[..],
    };
    match words.first().map(String::as_str) {
        Some("cargo") if words.get(1).is_some_and(|w| w == "run") => {
            let at = words.iter().position(|w| w == "--").ok_or("no --")?;
            let out = Command::new(MAB)
                .args(&words[at + 1..])
                .current_dir(&dir)
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            Ok(())
        }
        Some("cargo") => Ok(()),
        Some(script) if script.starts_with("scripts/") => {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.join(script)).map_err(|e| e.to_string())?;
            if meta.permissions().mode() & 0o111 == 0 {
                return Err("not executable".into());
            }
            Ok(())
        }
        other => Err(format!("a command this test does not know: {other:?}")),
    }
}

#[test]
fn the_readme_commands_run() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let commands: Vec<&str> = blocks(&readme, "sh")
        .into_iter()
        .flatten()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    assert!(
        commands.len() >= 5,
        "only {} commands found",
        commands.len()
    );
    let failed: Vec<String> = commands
        .iter()
        .filter_map(|c| check_command(c).err().map(|e| format!("{c}\n  {e}")))
        .collect();
    assert!(
        failed.is_empty(),
        "README commands that fail:\n{}",
        failed.join("\n")
    );
}

#[test]
fn the_tour_config_plans() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let tour = blocks(&readme, "toml")
        .into_iter()
        .next()
        .expect("the tour's toml block")
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("multiarch.toml"), tour).unwrap();
    std::fs::create_dir_all(root.join("base")).unwrap();
    std::fs::create_dir_all(root.join("services/api")).unwrap();
    std::fs::write(root.join("base/Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(
        root.join("services/api/Dockerfile"),
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "tour"]);
    let out = Command::new(MAB)
        .args(["plan", "--format", "json"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let builds = plan["builds"].as_array().unwrap();
    // base and two api instances, each for two platforms.
    assert_eq!(builds.len(), 6, "{plan:#}");
    let api = builds
        .iter()
        .find(|b| {
            b["id"]
                .as_str()
                .unwrap()
                .starts_with("api-go1.22@linux-arm64")
        })
        .expect("api-go1.22 for arm64");
    let after: Vec<&str> = api["depends_on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(
        after,
        ["base@linux-arm64"],
        "the tour says api waits for base per platform"
    );
}
