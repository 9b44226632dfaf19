//! The three ways `mab plan` prints a plan: text for people, JSON for tools, DOT for a picture.
//! Each writes to its destination as it goes: a plan of 4,000 builds is megabytes of text, and
//! building it in memory first cost more than computing the plan.

use std::io::{self, Write};

use rayon::prelude::*;
use serde_json::ser::{Formatter, PrettyFormatter};

use crate::error::join;
use crate::plan::{Plan, Step};

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn text(plan: &Plan, workdir_display: &str, out: &mut dyn Write) -> io::Result<()> {
    let builds = plan.builds.len();
    let manifests = plan.manifests.len();
    let files = match plan.files.as_slice() {
        [one] => one.clone(),
        all => format!("{} config files", all.len()),
    };
    writeln!(
        out,
        "Plan for {files}: {builds} build{}, {manifests} manifest list{} (podman runs in {workdir_display})",
        plural(builds),
        plural(manifests),
    )?;
    if let Some(changed) = &plan.changed_since {
        if changed.selected.is_empty() {
            writeln!(
                out,
                "\nNo image is touched by the changes since {}.",
                changed.revision
            )?;
        } else {
            writeln!(out, "\nSelected by the changes since {}:", changed.revision)?;
            let width = changed
                .selected
                .iter()
                .map(|s| s.image.len())
                .max()
                .unwrap_or(0);
            for s in &changed.selected {
                writeln!(out, "  {:width$}  {}", s.image, s.reason)?;
            }
        }
    }
    if let Some(unchanged) = &plan.unchanged {
        if unchanged.is_empty() {
            writeln!(
                out,
                "\nThe registry holds none of these images with the same inputs."
            )?;
        } else {
            writeln!(
                out,
                "\nUnchanged (the registry holds their inputs; not built):"
            )?;
            for u in unchanged {
                write!(out, "  {}  {}", u.image, u.index)?;
                if !u.new_tags.is_empty() {
                    write!(out, "  (adds {})", u.new_tags.join(", "))?;
                }
                writeln!(out)?;
            }
        }
    }
    for (n, b) in plan.builds.iter().enumerate() {
        write!(out, "\n[{}/{builds}] build {}", n + 1, b.id)?;
        if let Some(node) = &b.node {
            write!(out, " on node {node}")?;
        }
        if !b.depends_on.is_empty() {
            write!(out, " (after {})", b.depends_on.join(", "))?;
        }
        writeln!(out, "\n  {}", b.argv.shell_line())?;
        if let Some(p) = &b.publish {
            writeln!(
                out,
                "  {}  # for the lists and other nodes",
                p.push.shell_line()
            )?;
            writeln!(out, "  {}  # its digest", p.verify.shell_line())?;
        }
        if let Some(copy) = &b.dockerfile {
            for (line, why) in [
                (
                    &copy.declare,
                    "  # FROM lines read them: podman 4.3 leaves them empty there without an ARG",
                ),
                (&copy.label, ""),
            ] {
                if let Some(line) = line {
                    writeln!(
                        out,
                        "  # {} is {} with, after line {}: {}{why}",
                        copy.path,
                        copy.base.display(),
                        line.after_line,
                        line.instruction
                    )?;
                }
            }
        }
    }
    for m in &plan.manifests {
        write!(out, "\nmanifest {} [{}]", m.image, join(&m.platforms))?;
        if m.depends_on.is_empty() {
            writeln!(out, " (unchanged: new tags only)")?;
        } else {
            writeln!(out, " (after {})", m.depends_on.join(", "))?;
            writeln!(
                out,
                "  {}  # if an earlier run left one",
                m.remove_stale
                    .as_ref()
                    .map(|c| c.shell_line())
                    .unwrap_or_default()
            )?;
        }
        // External platforms join the list right after `create`, as a run adds them.
        if let Some(create) = &m.assemble.create {
            writeln!(out, "  {}", create.shell_line())?;
        }
        for e in &m.external {
            let how = match (&e.digest, e.from.digest()) {
                (Some(_), Some(_)) | (None, _) => "from a registry image, not built".to_string(),
                (Some(d), None) => format!("{} resolved to {d}", e.from),
            };
            writeln!(out, "  {}  # {}: {how}", e.add.shell_line(), e.platform)?;
        }
        for add in &m.assemble.adds {
            writeln!(out, "  {}", add.command.shell_line())?;
        }
        if !m.push {
            writeln!(
                out,
                "  (push = false: the list stays local; its tags would be {})",
                join(&m.tags)
            )?;
            continue;
        }
        publication(&m.publish, out)?;
    }
    Ok(())
}

/// A list's publication steps, then the restores `--atomic` runs after a failure.
fn publication(steps: &[Step], out: &mut dyn Write) -> io::Result<()> {
    for step in steps {
        match step {
            Step::Record { argv, .. } => {
                writeln!(out, "  {}  # what it holds now", argv.shell_line())?
            }
            Step::Held { tag, digest } => writeln!(
                out,
                "  # {tag} holds {} (read by the registry check)",
                digest.as_deref().unwrap_or("nothing")
            )?,
            Step::Push { argv, verify, .. } | Step::Copy { argv, verify, .. } => {
                writeln!(out, "  {}", argv.shell_line())?;
                writeln!(out, "  {}  # verify", verify.shell_line())?;
            }
            Step::Sign(s) => {
                let what = match s.platform {
                    None => "the index".to_string(),
                    Some(_) => s.what(),
                };
                writeln!(
                    out,
                    "  {}  # sign {what}, unless its signature tag holds one of the key",
                    s.push.shell_line()
                )?;
            }
        }
    }
    for restore in steps.iter().filter_map(Step::restore) {
        writeln!(
            out,
            "  {}  # --atomic: puts it back after a failure",
            restore.shell_line()
        )?;
    }
    Ok(())
}

/// The plan's warnings, for stderr: each with its fix.
pub fn warnings(plan: &Plan) -> String {
    plan.warnings
        .iter()
        .map(|w| format!("warning: {}\n  help: {}\n", w.message, w.help))
        .collect()
}

/// The plan as `serde_json::to_writer_pretty` writes it, and a newline. Its builds and lists
/// are almost all of a large plan's JSON, and serialising them was 30% of the instructions of
/// `mab plan` for 1,000 images, on one core: they are serialised a batch at a time on rayon's
/// pool, each element into a buffer of its part of the batch, and written in order, so no more
/// than a batch is held in memory (the whole 12 MB of JSON was, before).
pub fn json(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    json_in_batches(plan, out, 256)
}

fn json_in_batches(plan: &Plan, out: &mut dyn Write, batch: usize) -> io::Result<()> {
    // Everything but the two arrays, serialised by the derived `Serialize` with the arrays
    // empty, so that field order and skipped fields stay decided in one place.
    let head = serde_json::to_vec_pretty(&without_graph(plan))?;
    // A newline and two spaces are a key of the top object: a string in JSON holds no newline.
    // Looked for from the end: only `content` follows them, while the warnings before them
    // are a line each (1,000 of them in a config of 1,000 images was 400 KB to search).
    const ARRAYS: &[u8] = b"\n  \"builds\": [],\n  \"manifests\": []";
    let at = head
        .windows(ARRAYS.len())
        .rposition(|w| w == ARRAYS)
        .expect("the plan's JSON has its builds and lists, empty, one after the other");
    out.write_all(&head[..at])?;
    out.write_all(b"\n  \"builds\": ")?;
    write_array(&plan.builds, out, batch)?;
    out.write_all(b",\n  \"manifests\": ")?;
    write_array(&plan.manifests, out, batch)?;
    out.write_all(&head[at + ARRAYS.len()..])?;
    out.write_all(b"\n")
}

/// The plan without its builds and lists. Every field is named, so that a new field of
/// [`Plan`] does not compile until it is passed on here.
fn without_graph(plan: &Plan) -> Plan {
    let Plan {
        version,
        podman,
        registries_conf,
        timeout_secs,
        retries,
        registry_timeout_secs,
        registry_stall_secs,
        files,
        workdir,
        secrets,
        changed_since,
        warnings,
        nodes,
        unchanged,
        signing,
        builds: _,
        manifests: _,
        content,
    } = plan;
    Plan {
        version: *version,
        podman: podman.clone(),
        registries_conf: registries_conf.clone(),
        timeout_secs: *timeout_secs,
        retries: *retries,
        registry_timeout_secs: *registry_timeout_secs,
        registry_stall_secs: *registry_stall_secs,
        files: files.clone(),
        workdir: workdir.clone(),
        secrets: secrets.clone(),
        changed_since: changed_since.clone(),
        warnings: warnings.clone(),
        nodes: nodes.clone(),
        unchanged: unchanged.clone(),
        signing: signing.clone(),
        builds: Vec::new(),
        manifests: Vec::new(),
        content: content.clone(),
    }
}

/// `items` as a value of the plan's top object, as the pretty printer writes it: an element a
/// line, indented two levels. Batches of `batch` elements are serialised in parallel.
fn write_array<T: serde::Serialize + Sync>(
    items: &[T],
    out: &mut dyn Write,
    batch: usize,
) -> io::Result<()> {
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    // A part per core (and a few more, for a core that another process holds).
    let part = batch.div_ceil(4 * rayon::current_num_threads()).max(1);
    for (b, chunk) in items.chunks(batch).enumerate() {
        let parts: Vec<io::Result<Vec<u8>>> = chunk
            .par_chunks(part)
            .enumerate()
            .map(|(p, elements)| {
                let mut buf = Vec::with_capacity(4096 * elements.len());
                for (i, element) in elements.iter().enumerate() {
                    if b + p + i > 0 {
                        buf.push(b',');
                    }
                    buf.extend_from_slice(b"\n    ");
                    write_element(&mut buf, element)?;
                }
                Ok(buf)
            })
            .collect();
        for buf in parts {
            out.write_all(&buf?)?;
        }
    }
    out.write_all(b"\n  ]")
}

/// One element of an array of the top object, as `to_writer_pretty` of the whole plan writes it.
fn write_element<T: serde::Serialize>(buf: &mut Vec<u8>, element: &T) -> io::Result<()> {
    let mut pretty = PrettyFormatter::new();
    // Opened as the plan's object and the array are, unwritten: the element's lines are then
    // indented as theirs are.
    pretty.begin_object(&mut io::sink())?;
    pretty.begin_array(&mut io::sink())?;
    element.serialize(&mut serde_json::Serializer::with_formatter(buf, pretty))?;
    Ok(())
}

fn dot_quote(s: &str) -> String {
    // Newlines become DOT's `\n` escape, which centres each line of a label.
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

pub fn dot(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "digraph mab {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];"
    )?;
    // With build nodes, one cluster of builds per node.
    for n in &plan.nodes {
        writeln!(
            out,
            "  subgraph {} {{\n    label={};",
            dot_quote(&format!("cluster_{}", n.name)),
            dot_quote(&format!("node {} ({})", n.name, n.address))
        )?;
        for b in plan
            .builds
            .iter()
            .filter(|b| b.node.as_ref() == Some(&n.name))
        {
            writeln!(out, "    {};", dot_quote(&b.id))?;
        }
        writeln!(out, "  }}")?;
    }
    for b in &plan.builds {
        let label = format!("{}\n{}", b.image, b.platform);
        writeln!(out, "  {} [label={}];", dot_quote(&b.id), dot_quote(&label))?;
        for d in &b.depends_on {
            writeln!(out, "  {} -> {};", dot_quote(d), dot_quote(&b.id))?;
        }
    }
    for m in &plan.manifests {
        let list = dot_quote(&format!("manifest:{}", m.image));
        let tags: Vec<String> = m.tags.iter().map(ToString::to_string).collect();
        let label = format!("{}\n{}", m.image, tags.join("\n"));
        writeln!(
            out,
            "  {list} [shape=ellipse, label={}];",
            dot_quote(&label)
        )?;
        for d in &m.depends_on {
            writeln!(out, "  {} -> {list};", dot_quote(d))?;
        }
    }
    writeln!(out, "}}")
}

/// The table printed at the end of `mab run`: every build and manifest list with its status,
/// then the log tail of each failure.
/// `table`: false prints only failures and the verdict (`mab run -q`).
pub fn summary(
    report: &crate::exec::Report,
    plan: &Plan,
    table: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    use crate::exec::Status;
    if table {
        status_table(report, plan, out)?;
    }
    let failures = report
        .builds
        .iter()
        .filter_map(|b| match &b.status {
            Status::Failed { reason } => Some((b.id.clone(), reason, &b.log, &b.log_tail)),
            _ => None,
        })
        .chain(report.manifests.iter().filter_map(|m| match &m.status {
            Status::Failed { reason } => Some((
                format!("{} manifest list", m.image),
                reason,
                &m.log,
                &m.log_tail,
            )),
            _ => None,
        }));
    for (what, reason, log, tail) in failures {
        writeln!(out, "\nFAILED {what}: {reason}\n  log: {}", log.display())?;
        for line in tail.as_deref().unwrap_or_default().lines() {
            writeln!(out, "  | {line}")?;
        }
    }
    let built = report
        .builds
        .iter()
        .filter(|b| b.status == Status::Built)
        .count();
    let pushed = report
        .manifests
        .iter()
        .filter(|m| m.status == Status::Pushed)
        .count();
    let unchanged = |n: usize| {
        if n == 0 {
            String::new()
        } else {
            format!(" ({n} unchanged)")
        }
    };
    let unchanged_builds = unchanged(
        report
            .builds
            .iter()
            .filter(|b| b.status == Status::Unchanged)
            .count(),
    );
    let unchanged_lists = unchanged(
        report
            .manifests
            .iter()
            .filter(|m| m.status == Status::Unchanged)
            .count(),
    );
    let verdict = match report.interrupted {
        Some(_) => "INTERRUPTED",
        None if report.success => "ok",
        None => "FAILED",
    };
    writeln!(
        out,
        "\n{verdict}: {built}/{} builds{unchanged_builds}, {pushed}/{} manifest lists pushed{unchanged_lists} (run {}, logs in {})",
        report.builds.len(),
        report.manifests.len(),
        report.run_id,
        report.run_dir.display()
    )
}

/// Every build and manifest list with its status.
fn status_table(report: &crate::exec::Report, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    use crate::exec::Status;
    let secs = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
    let width = report
        .builds
        .iter()
        .map(|b| b.image.len())
        .chain(report.manifests.iter().map(|m| m.image.len()))
        .max()
        .unwrap_or(0)
        .max(13);
    writeln!(
        out,
        "\n{:<width$}  {:<14}  {:<9}  {:>7}  image id",
        "image", "platform", "status", "time"
    )?;
    for b in &report.builds {
        let id = match (&b.image_id, &b.published) {
            (Some(id), _) => short(id),
            // An unchanged build's image is the registry's.
            (None, Some(published)) => {
                format!("{} (registry)", short(published.digest.digest()))
            }
            (None, None) => String::new(),
        };
        writeln!(
            out,
            "{:<width$}  {:<14}  {:<9}  {:>7}  {id}",
            b.image,
            b.platform.to_string(),
            b.status.word(),
            secs(b.duration_ms)
        )?;
    }
    writeln!(out, "\n{:<width$}  {:<9}  tags", "manifest list", "status")?;
    for (m, planned) in report.manifests.iter().zip(&plan.manifests) {
        let word = m.status.word();
        if m.tags.is_empty() {
            let tags = match &m.status {
                Status::Assembled => format!("{} (local)", m.list),
                Status::Failed { reason } | Status::Skipped { reason } => reason.clone(),
                _ => join(&planned.tags),
            };
            writeln!(out, "{:<width$}  {word:<9}  {tags}", m.image)?;
            continue;
        }
        let tag_width = m.tags.iter().map(|t| t.reference.len()).max().unwrap_or(0);
        for (n, t) in m.tags.iter().enumerate() {
            let (image, word) = if n == 0 {
                (m.image.as_str(), word)
            } else {
                ("", "")
            };
            writeln!(
                out,
                "{image:<width$}  {word:<9}  {:<tag_width$}  {:<12}  {}",
                t.reference,
                t.status.word(),
                tag_detail(t)
            )?;
        }
    }
    Ok(())
}

/// What a tag held and holds, in short digests.
fn tag_detail(t: &crate::exec::TagReport) -> String {
    use crate::exec::{Held, TagStatus};
    let before = match &t.before {
        Some(Held::Digest(d)) => short(d),
        Some(Held::Nothing) => "(new tag)".into(),
        None => "(not read)".into(),
    };
    let index = t.digest.as_deref().map_or_else(|| "?".into(), short);
    match &t.status {
        TagStatus::Moved => format!("{before} -> {index}"),
        TagStatus::Unchanged => index,
        TagStatus::Failed { .. } => {
            let held = match &t.before {
                Some(Held::Digest(d)) => format!("still {}", short(d)),
                Some(Held::Nothing) => "still no such tag".into(),
                None => "not moved".into(),
            };
            match &t.digest {
                Some(d) => format!("{held}, not {}", short(d)),
                None => held,
            }
        }
        TagStatus::Restored => format!("back at {before} (was moved to {index})"),
        TagStatus::NotRestored { reason } => format!("at {index}: {reason}"),
    }
}

/// The first 12 hex digits of a digest or image id.
fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plans a scratch config of `images` images on two platforms, each but the first reading
    /// the one before and declaring a `depends_on` it does not read (a warning each).
    fn plan_of(images: usize) -> Plan {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from(
            "[defaults]\nregistry = \"r.io/a\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\", \"{{ image.name }}-x\"]\n",
        );
        for i in 0..images {
            let from = match i {
                0 => "busybox".to_string(),
                _ => format!("r.io/a/i{}:1", i - 1),
            };
            std::fs::create_dir_all(dir.path().join(format!("i{i}"))).unwrap();
            std::fs::write(
                dir.path().join(format!("i{i}/Dockerfile")),
                format!("FROM {from}\nARG A\n"),
            )
            .unwrap();
            config.push_str(&format!(
                "[images.i{i}]\ncontext = \"i{i}\"\nargs = {{ A = \"\\\"q\\\"\\n{{{{ platform.arch }}}}\" }}\n"
            ));
            if i > 1 {
                config.push_str(&format!("depends_on = [\"i{}\"]\n", i - 2));
            }
        }
        let path = dir.path().join("multiarch.toml");
        std::fs::write(&path, config).unwrap();
        let location = crate::config::Location::File(path);
        let allowed = crate::confine::Allowed::resolve(&[], dir.path(), None);
        let env = crate::settings::Environment::default();
        crate::plan_in(&location, &[], &Default::default(), env, &allowed).unwrap()
    }

    #[test]
    fn json_in_parallel_batches_is_what_serde_json_writes() {
        for images in [1, 7] {
            let plan = plan_of(images);
            assert!(images == 1 || !plan.warnings.is_empty());
            let whole = serde_json::to_string_pretty(&plan).unwrap() + "\n";
            for batch in [1, 2, 3, 5, 256] {
                let mut out = Vec::new();
                json_in_batches(&plan, &mut out, batch).unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    whole,
                    "{images} images, batch {batch}"
                );
            }
        }
    }

    #[test]
    fn an_empty_array_is_written_as_the_pretty_printer_does() {
        let mut out = Vec::new();
        write_array::<u32>(&[], &mut out, 4).unwrap();
        assert_eq!(out, b"[]");
    }
}
