//! Input digests: one per build, of everything that decides its image (the context files its
//! ignore file lets in, the Dockerfile, its command line less what changes on every run, the
//! digests of the images it reads from outside the run and the input digests of the builds it
//! reads), and one per manifest list, of its builds'. A run skips what the registry already
//! holds with the same input digest ([`crate::exec`]).
//!
//! The git `revision`/`created`/`version` labels and `--timestamp` are not inputs: an image
//! that did not change keeps those of the build that made it.

mod cache;
pub mod patterns;
mod tree;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::plan::{Base, Build, Plan, STATE_DIR};
use crate::state::StateDir;

pub use cache::Cache;
use patterns::Patterns;

/// The annotation on each entry of a pushed index that holds its build's input digest.
pub const ANNOTATION: &str = "dev.mab.inputs";

/// Where a list is also pushed, so that a later run finds it by its inputs: `mab-inputs-HEX`.
pub fn marker_tag(manifest_digest: &str) -> String {
    format!(
        "mab-inputs-{}",
        manifest_digest.trim_start_matches("sha256:")
    )
}

/// Where the file digests of earlier runs are kept, relative to the workdir.
fn cache_file() -> PathBuf {
    Path::new(STATE_DIR).join("hash-cache")
}

/// Where the file digests of earlier runs are kept, under the workdir.
pub fn cache_path(workdir: &Path) -> PathBuf {
    workdir.join(cache_file())
}

/// The input digests of a plan's builds and lists, in plan order (`sha256:HEX`).
#[derive(Debug, Clone)]
pub struct Digests {
    pub builds: Vec<String>,
    pub manifests: Vec<String>,
    /// Files in the contexts, and how many of them were read (not in the cache).
    pub files: usize,
    pub files_read: usize,
}

/// What a base image resolved to: its digest, or why there is none.
pub type Resolved = HashMap<Base, Result<String, String>>;

fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The digest of content, as registries name it.
pub fn digest_of(bytes: &[u8]) -> String {
    crate::reference::digest_of(bytes).to_string()
}

/// The ignore file podman applies to a build's context: the one `argv` names (the state
/// directory left out), else the Dockerfile's own, else the context's.
fn ignore_text(workdir: &Path, build: &Build) -> std::io::Result<String> {
    let read = |p: &Path| std::fs::read_to_string(workdir.join(p));
    if let Some(f) = &build.ignorefile {
        let base = match &f.base {
            Some(p) => read(p)?,
            None => String::new(),
        };
        return Ok(f.text(&base));
    }
    let own = crate::dockerfile::dockerfile_ignore_file(&workdir.join(&build.inputs.dockerfile));
    match own
        .or_else(|| crate::dockerfile::context_ignore_file(&workdir.join(&build.inputs.context)))
    {
        Some(p) => std::fs::read_to_string(p),
        None => Ok(String::new()),
    }
}

/// The files of a plan's builds, hashed: per build its context's and named directories'
/// digests, and the Dockerfiles'.
pub struct Files {
    /// Per build: its context's tree digest, then `(directory, digest)` per named directory.
    trees: Vec<(String, Vec<(PathBuf, String)>)>,
    dockerfiles: HashMap<PathBuf, String>,
    files: usize,
    files_read: usize,
}

/// Hashes every context and Dockerfile the plan's builds read, using and updating the cache
/// under the state directory. Needs no registry: it can run while base images resolve.
pub fn hash_files(plan: &Plan) -> std::io::Result<Files> {
    let workdir = &plan.workdir;
    let since_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    // Each distinct (directory, ignore file) once.
    let mut trees: BTreeMap<(PathBuf, String), Option<[u8; 32]>> = BTreeMap::new();
    let mut build_trees = Vec::with_capacity(plan.builds.len());
    for b in &plan.builds {
        let context = (b.inputs.context.clone(), ignore_text(workdir, b)?);
        let mut dirs = Vec::new();
        for d in &b.inputs.dirs {
            let ignore = match crate::dockerfile::context_ignore_file(&workdir.join(d)) {
                Some(p) => std::fs::read_to_string(p)?,
                None => String::new(),
            };
            dirs.push((d.clone(), ignore));
        }
        for key in std::iter::once(&context).chain(&dirs) {
            trees.entry(key.clone()).or_insert(None);
        }
        build_trees.push((context, dirs));
    }
    let state = StateDir::open(workdir)?;
    let cache = match state.read(cache_file()) {
        Ok(text) => Cache::parse(text),
        // A link there is refused: the state directory is not the run's own.
        Err(e) if crate::state::is_refused(&e) => return Err(e),
        Err(_) => Cache::default(),
    };
    let hashed: Vec<tree::Tree> = trees
        .par_iter()
        .map(|((dir, ignore), _)| {
            let cached = cache.files(&dir.to_string_lossy());
            tree::hash(
                &workdir.join(dir),
                &Patterns::parse(ignore),
                &cached,
                since_ns,
            )
        })
        .collect::<std::io::Result<_>>()?;
    let mut updated: HashMap<String, cache::Files> = HashMap::new();
    let (mut files, mut files_read) = (0, 0);
    for (((dir, _), slot), t) in trees.iter_mut().zip(hashed) {
        *slot = Some(t.digest);
        files += t.count;
        files_read += t.read;
        if let Some(f) = t.files {
            updated
                .entry(dir.to_string_lossy().into_owned())
                .or_default()
                .extend(f);
        }
    }
    // Only a cache: a run that cannot save it is slower next time, not wrong.
    if !updated.is_empty() {
        let _ = state.write(cache_file(), cache.render(&updated).as_bytes());
    }

    let mut dockerfiles: HashMap<PathBuf, String> = HashMap::new();
    for b in &plan.builds {
        let path = &b.inputs.dockerfile;
        if !dockerfiles.contains_key(path) {
            dockerfiles.insert(path.clone(), sha256_hex(std::fs::read(workdir.join(path))?));
        }
    }
    let tree_hex = |key: &(PathBuf, String)| {
        let d = trees[key].expect("every tree is hashed");
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let trees = build_trees
        .iter()
        .map(|(context, dirs)| {
            let dirs = dirs.iter().map(|d| (d.0.clone(), tree_hex(d))).collect();
            (tree_hex(context), dirs)
        })
        .collect();
    Ok(Files {
        trees,
        dockerfiles,
        files,
        files_read,
    })
}

/// The input digest of list `m`, given each of its builds' (by build id): what its marker
/// tag names. A split run's merge computes it from the digests the runners wrote.
pub fn list_digest<'a>(m: &crate::plan::Manifest, build: impl Fn(&str) -> &'a str) -> String {
    let mut recipe = String::from("mab list 1\n");
    for id in &m.depends_on {
        recipe.push_str(&format!("{id} {}\n", build(id)));
    }
    // A platform taken from a registry image is the image of that digest: a moved tag makes
    // another list.
    for e in &m.external {
        let digest = e.digest.as_deref().unwrap_or("unresolved");
        recipe.push_str(&format!("external {} {} {digest}\n", e.platform, e.from));
    }
    sha256_hex(recipe)
}

/// The input digests of the plan's builds and lists, from their hashed files and what each
/// base image resolved to.
pub fn digests(plan: &Plan, hashed: &Files, bases: &Resolved) -> Digests {
    let index = plan.build_index();
    // The plan lists dependencies before their dependents.
    let mut builds: Vec<String> = Vec::with_capacity(plan.builds.len());
    for (b, (context, dirs)) in plan.builds.iter().zip(&hashed.trees) {
        let mut recipe = String::from("mab inputs 1\n");
        // Without what changes on every run or is hashed apart: the podman prefix and a node's
        // options, `--iidfile`, `--file` (the Dockerfile's content is hashed), `--ignorefile`
        // (its patterns decide the context's digest), `--timestamp` and the per-run labels.
        for a in b.argv.input_words() {
            recipe.push_str(&a);
            recipe.push('\0');
        }
        recipe.push('\n');
        recipe.push_str(&format!(
            "dockerfile {}\n",
            hashed.dockerfiles[&b.inputs.dockerfile]
        ));
        for l in &b.inputs.labels {
            recipe.push_str(&format!("label {l}\0\n"));
        }
        recipe.push_str(&format!("context {context}\n"));
        for (dir, digest) in dirs {
            recipe.push_str(&format!("dir {} {digest}\n", dir.display()));
        }
        for base in &b.inputs.bases {
            let digest = match bases.get(base) {
                Some(Ok(d)) => d.as_str(),
                _ => "unresolved",
            };
            recipe.push_str(&format!(
                "base {} {} {digest}\n",
                base.reference, base.platform
            ));
        }
        for dep in &b.depends_on {
            recipe.push_str(&format!("dep {dep} {}\n", builds[index[dep.as_str()]]));
        }
        builds.push(sha256_hex(recipe));
    }
    let manifests = plan
        .manifests
        .iter()
        .map(|m| list_digest(m, |id| &builds[index[id]]))
        .collect();
    Digests {
        builds,
        manifests,
        files: hashed.files,
        files_read: hashed.files_read,
    }
}
