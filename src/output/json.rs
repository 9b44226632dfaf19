//! The plan as JSON, for tools: written as `serde_json::to_writer_pretty` would, in batches.

use std::io::{self, Write};
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

use crate::config::SecretSource;
use crate::content::plan::ContentPlan;
use crate::plan::{Build, ChangedSince, Manifest, Plan, PlanNode, Unchanged, Warning};
use crate::settings::BuilderSettings;

/// The plan as `serde_json::to_writer_pretty` writes it, and a newline. Its builds and lists
/// are almost all of a large plan's JSON, and serialising them was 30% of the instructions of
/// `mab plan` for 1,000 images, on one core: they are serialised a batch at a time on rayon's
/// pool, each element into a buffer of its part of the batch, and written in order, so no more
/// than a batch is held in memory (the whole 12 MB of JSON was, before).
pub fn json(plan: &Plan, builder: &BuilderSettings, out: &mut dyn Write) -> io::Result<()> {
    json_in_batches(plan, builder, out, 256)
}

fn json_in_batches(
    plan: &Plan,
    builder: &BuilderSettings,
    out: &mut dyn Write,
    batch: usize,
) -> io::Result<()> {
    // Everything but the two arrays, serialised by the derived `Serialize` with the arrays
    // empty, so that field order and skipped fields stay decided in one place.
    let head = serde_json::to_vec_pretty(&PlanJson {
        builds: &[],
        manifests: &[],
        ..PlanJson::new(plan, builder)
    })?;
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

/// The plan's JSON (docs/plan-json.md): the plan, with how its config says a run runs
/// (`[builder]`: [`BuilderSettings`]) after `podman`, where the format has always shown it.
/// Every field is named in [`PlanJson::new`], so that a new field of [`Plan`] does not compile
/// until it is shown here or said not to be.
#[derive(Serialize)]
pub struct PlanJson<'a> {
    version: u32,
    podman: &'a [String],
    #[serde(flatten)]
    builder: &'a BuilderSettings,
    files: &'a [String],
    workdir: &'a Path,
    secrets: &'a [SecretSource],
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_since: Option<&'a ChangedSince>,
    warnings: &'a [Warning],
    #[serde(skip_serializing_if = "<[PlanNode]>::is_empty")]
    nodes: &'a [PlanNode],
    #[serde(skip_serializing_if = "Option::is_none")]
    unchanged: Option<&'a [Unchanged]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing: Option<&'a crate::sign::Signing>,
    builds: &'a [Build],
    manifests: &'a [Manifest],
    #[serde(skip_serializing_if = "ContentPlan::unconfigured")]
    content: &'a ContentPlan,
}

impl<'a> PlanJson<'a> {
    pub fn new(plan: &'a Plan, builder: &'a BuilderSettings) -> Self {
        let Plan {
            version,
            podman,
            // Where skopeo is told to read registries.conf: this machine's, not the plan's.
            registries_conf: _,
            files,
            workdir,
            secrets,
            changed_since,
            warnings,
            nodes,
            unchanged,
            signing,
            builds,
            manifests,
            content,
        } = plan;
        Self {
            version: *version,
            podman,
            builder,
            files,
            workdir,
            secrets,
            changed_since: changed_since.as_ref(),
            warnings,
            nodes,
            unchanged: unchanged.as_deref(),
            signing: signing.as_ref(),
            builds,
            manifests,
            content,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Planned;

    /// Plans a scratch config of `images` images on two platforms, each but the first reading
    /// the one before and declaring a `depends_on` it does not read (a warning each).
    fn plan_of(images: usize) -> Planned {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from(
            "[defaults]\nregistry = \"r.io/a\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\", \"{{ image.name }}-x\"]\n[builder]\ntimeout = \"1m\"\n",
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
        crate::planned_in(&location, &[], &Default::default(), env, &allowed).unwrap()
    }

    #[test]
    fn json_in_parallel_batches_is_what_serde_json_writes() {
        for images in [1, 7] {
            let Planned { plan, builder } = plan_of(images);
            assert!(images == 1 || !plan.warnings.is_empty());
            let whole =
                serde_json::to_string_pretty(&PlanJson::new(&plan, &builder)).unwrap() + "\n";
            // Where the format has always had them: after `podman`.
            assert!(
                whole.contains("\"podman\": [\n    \"podman\"\n  ],\n  \"timeout_secs\": 60,\n  \"retries\": 3,\n  \"files\""),
                "{whole}"
            );
            for batch in [1, 2, 3, 5, 256] {
                let mut out = Vec::new();
                json_in_batches(&plan, &builder, &mut out, batch).unwrap();
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
