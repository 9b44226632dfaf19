//! `.containerignore`/`.dockerignore` patterns, matched the way buildah and BuildKit match them
//! (moby's patternmatcher): every pattern in order, the last one that matches a path or one of
//! its parent directories decides, `!` patterns let back in.

use globset::{GlobBuilder, GlobMatcher};

struct Rule {
    glob: GlobMatcher,
    exception: bool,
}

/// The patterns of one ignore file.
#[derive(Default)]
pub struct Patterns {
    rules: Vec<Rule>,
    exceptions: bool,
}

/// `filepath.Clean` of a pattern, in `/` form, without a leading `/`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

impl Patterns {
    /// The patterns of an ignore file's text. A pattern that is no valid glob matches nothing,
    /// as in buildah, which reports it only when it is used.
    pub fn parse(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let Ok(glob) = GlobBuilder::new(&clean(pattern))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            else {
                continue;
            };
            rules.push(Rule {
                glob: glob.compile_matcher(),
                exception,
            });
        }
        Self {
            exceptions: rules.iter().any(|r| r.exception),
            rules,
        }
    }

    /// Whether `path` (relative to the context, `/`-separated) is left out of the context.
    pub fn excluded(&self, path: &str) -> bool {
        let mut matched = false;
        for rule in &self.rules {
            // Only a pattern that could change the verdict is tried.
            if rule.exception != matched {
                continue;
            }
            let hit = rule.glob.is_match(path)
                || path
                    .match_indices('/')
                    .any(|(i, _)| rule.glob.is_match(&path[..i]));
            if hit {
                matched = !rule.exception;
            }
        }
        matched
    }

    /// Whether nothing under directory `path` can be in the context: it is excluded and no
    /// `!` pattern could let a file under it back in.
    pub fn prunes(&self, path: &str) -> bool {
        !self.exceptions && self.excluded(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_matching_pattern_decides() {
        let p = Patterns::parse("# comment\n*.md\n!README.md\ntarget\n/build/\n**/*.tmp\n\n");
        assert!(p.excluded("notes.md"));
        assert!(!p.excluded("README.md"));
        // `*` stops at a slash, as in Go's filepath.Match.
        assert!(!p.excluded("docs/notes.md"));
        assert!(p.excluded("target"));
        assert!(p.excluded("target/debug/app"), "a parent directory matches");
        assert!(p.excluded("build/x"));
        assert!(p.excluded("a/b/c.tmp"));
        assert!(p.excluded("c.tmp"));
        assert!(!p.excluded("src/main.rs"));
        assert!(
            !p.prunes("target"),
            "an exception could let something back in"
        );
    }

    #[test]
    fn exceptions_let_files_back_into_excluded_directories() {
        let p = Patterns::parse("vendor\n!vendor/keep.txt\n");
        assert!(p.excluded("vendor/a.txt"));
        assert!(!p.excluded("vendor/keep.txt"));
        let p = Patterns::parse("vendor\n");
        assert!(p.prunes("vendor"));
        assert!(!p.prunes("src"));
    }

    #[test]
    fn dockerignore_patterns_are_anchored_at_the_context() {
        let excluded = |ignore: &str, rel: &str| Patterns::parse(ignore).excluded(rel);
        // `*.md` is the context's top level only, as in docker; `**/*.md` is any depth.
        assert!(excluded("*.md\n", "README.md"));
        assert!(!excluded("*.md\n", "docs/guide.md"));
        assert!(excluded("**/*.md\n", "docs/guide.md"));
        // A directory excludes what is below it; a leading `/` or `./` changes nothing.
        assert!(excluded("node_modules\n", "node_modules/x/index.js"));
        assert!(excluded("/build\n", "build/out.o"));
        assert!(excluded("./build\n", "build/out.o"));
        assert!(!excluded("build\n", "src/build/out.o"));
        // The last matching line wins; comments and blank lines are skipped.
        assert!(!excluded("# docs\n\n*.md\n!KEEP.md\n", "KEEP.md"));
        assert!(excluded("*.md\n!KEEP.md\n", "OTHER.md"));
        // Unlike gitignore, an exception brings back a file of an excluded directory.
        assert!(!excluded("docs\n!docs/keep.md\n", "docs/keep.md"));
        assert!(excluded("docs\n!docs/keep.md\n", "docs/other.md"));
        assert!(excluded("docs/\n", "docs/other.md"));
    }

    #[test]
    fn patterns_are_cleaned() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("/a/../b"), "b");
        assert_eq!(clean("/"), ".");
        let p = Patterns::parse("./logs/\n");
        assert!(p.excluded("logs/x.log"));
    }
}
