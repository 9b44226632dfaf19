//! What a stack of layers holds, worked out top layer first: a path is decided by the highest
//! layer that has an entry for it, and a whiteout, an opaque directory or a non-directory in a
//! higher layer hides everything a lower layer has below that path. Within one layer the last
//! entry of a path wins, as when a tar is unpacked.
//!
//! Shared by the content check (which keeps an ELF header per file) and the builtin SBOM of an
//! image read from its layers (which keeps each file's hashes).

use std::collections::{HashMap, HashSet};

/// An entry of the current layer, kept until the layer ends.
#[derive(Debug, Clone)]
pub enum Kept<T> {
    /// A regular file and what the reader kept of it.
    File(T),
    /// Deletes or replaces the path and all below it (a whiteout, a link, a device).
    Hides,
    Dir,
}

/// The layers seen so far, top first, and the current one.
#[derive(Debug)]
pub struct Stack<T> {
    /// Paths a higher layer decided.
    decided: HashSet<String>,
    /// Paths below which nothing of a lower layer is in the image.
    hidden: HashSet<String>,
    /// The current layer: its entries by path (the last wins), its opaque directories.
    layer: HashMap<String, Kept<T>>,
    opaque: Vec<String>,
}

impl<T> Default for Stack<T> {
    fn default() -> Self {
        Self {
            decided: HashSet::new(),
            hidden: HashSet::new(),
            layer: HashMap::new(),
            opaque: Vec::new(),
        }
    }
}

impl<T> Stack<T> {
    /// One entry of the current layer; `path` is absolute in the image (`/usr/bin/x`).
    pub fn put(&mut self, path: &str, kept: Kept<T>) {
        self.layer.insert(path.to_string(), kept);
    }

    /// `path` is a directory of the current layer whose lower layers' contents are hidden.
    pub fn opaque(&mut self, path: &str) {
        self.opaque.push(path.to_string());
    }

    /// What the current layer holds at `path` so far (a hard link's target).
    pub fn in_layer(&self, path: &str) -> Option<&Kept<T>> {
        self.layer.get(path)
    }

    /// The current layer is complete: its files that are in the image (not decided or hidden
    /// by a higher layer), in no particular order. The next entries are of the layer below.
    pub fn next_layer(&mut self) -> Vec<(String, T)> {
        let layer = std::mem::take(&mut self.layer);
        // What this layer hides applies to the layers below it only.
        let mut hides = std::mem::take(&mut self.opaque);
        let mut files = Vec::new();
        for (path, kept) in layer {
            if self.is_hidden(&path) || !self.decided.insert(path.clone()) {
                continue;
            }
            match kept {
                Kept::File(t) => files.push((path, t)),
                Kept::Hides => hides.push(path),
                Kept::Dir => {}
            }
        }
        self.hidden.extend(hides);
        files
    }

    /// Whether a higher layer hid one of `path`'s ancestors.
    fn is_hidden(&self, path: &str) -> bool {
        if self.hidden.is_empty() {
            return false;
        }
        let mut at = path;
        while let Some((parent, _)) = at.rsplit_once('/') {
            let parent = if parent.is_empty() { "/" } else { parent };
            if self.hidden.contains(parent) {
                return true;
            }
            if parent == "/" {
                return false;
            }
            at = parent;
        }
        false
    }
}
