//! The stages of a Dockerfile: each stage's base, `--platform`, `ARG`s, the images and named
//! contexts its instructions read, its `RUN`s and the version-dependent features it uses, found
//! once per file from the parsed instructions ([`super::parse`]).

use std::ops::Range;

use super::parse::{self, Flag, Instruction};
use super::{BUILD_PLATFORM_ARGS, ParseError, TARGET_PLATFORM_ARGS, check, shell};
use crate::podman_features::Feature;

/// How a stage reads a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    From,
    CopyFrom,
    MountFrom,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::From => "FROM",
            Self::CopyFrom => "COPY --from",
            Self::MountFrom => "RUN --mount=from",
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Arg {
    pub(super) name: String,
    pub(super) default: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) enum Item {
    Arg(Arg),
    Reads {
        via: Via,
        word: String,
        span: Range<usize>,
    },
    Run,
    /// A feature podman versions differ on ([`crate::podman_features`]).
    Uses(Feature, Range<usize>),
}

impl Item {
    /// The word mab expands, if any.
    fn expanded(&self) -> Option<&str> {
        match self {
            Self::Arg(arg) => arg.default.as_deref(),
            Self::Reads { word, .. } => Some(word),
            Self::Run | Self::Uses(..) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Stage {
    /// Lowercased, as stage names are matched.
    pub(super) name: Option<String>,
    /// As written: podman 4.3 matches `--target` to it exactly.
    pub(super) written_name: Option<String>,
    pub(super) base: String,
    pub(super) platform: Option<String>,
    /// The `FROM` instruction.
    pub(super) span: Range<usize>,
    pub(super) items: Vec<Item>,
    /// Where a line after its last instruction goes (a byte offset at a line's start, or the
    /// file's end), and how many lines come before it.
    pub(super) end: usize,
    pub(super) end_line: usize,
}

/// A parsed Dockerfile, read once and asked about for each build.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub(super) escape: char,
    pub(super) global_args: Vec<Arg>,
    pub(super) stages: Vec<Stage>,
    /// Which of [`BUILD_PLATFORM_ARGS`] the file names anywhere.
    pub(super) names_build_args: Vec<&'static str>,
    /// The `# check=` directive, which holds for every stage.
    pub(super) check: Option<Range<usize>>,
    /// The automatic `TARGET*` args that `FROM` lines read without a global `ARG`, and where
    /// such an `ARG` goes: the start of the first instruction's line.
    pub(super) undeclared_platform_args: Vec<&'static str>,
    pub(super) first_line: usize,
}

pub(super) fn arg_pairs(escape: char, text: &str) -> Vec<Arg> {
    // ARG's words are split like a shell's, with the file's escape character: quotes are kept
    // for the lexer, which removes them when the default is expanded.
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    let mut push = |word: &mut String| {
        if word.is_empty() {
            return;
        }
        let w = std::mem::take(word);
        out.push(match w.split_once('=') {
            Some((k, v)) => Arg {
                name: k.to_string(),
                default: Some(v.to_string()),
            },
            None => Arg {
                name: w,
                default: None,
            },
        });
    };
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => push(&mut word),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                word.push(c);
            }
            (_, c) if c == escape => {
                word.push(c);
                word.extend(chars.next());
            }
            (_, c) => word.push(c),
        }
    }
    push(&mut word);
    out
}

/// The `from=` of a `--mount` value (`type=bind,from=build,source=/out`).
pub(super) fn mount_from(value: &str) -> Option<&str> {
    value.split(',').find_map(|field| {
        let (k, v) = field.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("from")
            .then(|| v.trim().trim_matches('"'))
    })
}

pub(super) fn flags<'f>(flags: &'f [Flag], name: &'f str) -> impl Iterator<Item = &'f Flag> {
    flags
        .iter()
        .filter(move |f| f.name.eq_ignore_ascii_case(name))
}

impl Dockerfile {
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let parsed = parse::parse(text)?;
        check::instructions(&parsed)?;
        let escape = parsed.escape;
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for ins in &parsed.instructions {
            if let Some(stage) = stages.last_mut().filter(|_| ins.keyword != "FROM") {
                stage.end = ins.next_line;
            }
            if ins.onbuild {
                continue;
            }
            match ins.keyword.as_str() {
                "ARG" if stages.is_empty() => {
                    let args = arg_pairs(escape, &ins.rest);
                    for default in args.iter().filter_map(|a| a.default.as_deref()) {
                        check::nesting(default, escape, ins)?;
                    }
                    global_args.extend(args);
                }
                "FROM" => {
                    let words: Vec<&str> = ins.rest.split_whitespace().collect();
                    let written_name = match words[..] {
                        [_, kw, name] if kw.eq_ignore_ascii_case("as") => Some(name.to_string()),
                        _ => None,
                    };
                    let base = words.first().copied().unwrap_or_default().to_string();
                    let platform = flags(&ins.flags, "platform").find_map(|f| f.value.clone());
                    for word in std::iter::once(&base).chain(&platform) {
                        check::nesting(word, escape, ins)?;
                    }
                    stages.push(Stage {
                        name: written_name.as_ref().map(|n| n.to_lowercase()),
                        written_name,
                        base,
                        platform,
                        span: ins.span.clone(),
                        items: Vec::new(),
                        end: ins.next_line,
                        end_line: 0,
                    });
                }
                _ => {
                    if let Some(stage) = stages.last_mut() {
                        let items = items(escape, ins);
                        for word in items.iter().filter_map(Item::expanded) {
                            check::nesting(word, escape, ins)?;
                        }
                        stage.items.extend(items);
                    }
                }
            }
        }
        for stage in &mut stages {
            stage.end_line = text[..stage.end].matches('\n').count();
        }
        let names_build_args = BUILD_PLATFORM_ARGS
            .into_iter()
            .filter(|a| text.contains(a))
            .collect();
        let reads_undeclared = |s: &Stage, name: &str| {
            !global_args.iter().any(|a| a.name == name)
                && std::iter::once(&s.base)
                    .chain(&s.platform)
                    .any(|w| shell::names_variable(w, name))
        };
        let undeclared_platform_args: Vec<&'static str> = TARGET_PLATFORM_ARGS
            .into_iter()
            .filter(|name| stages.iter().any(|s| reads_undeclared(s, name)))
            .collect();
        for stage in &mut stages {
            if undeclared_platform_args
                .iter()
                .any(|name| reads_undeclared(stage, name))
            {
                let at = stage.span.clone();
                stage
                    .items
                    .insert(0, Item::Uses(Feature::FromPlatformArgs, at));
            }
        }
        let first_line = parsed.instructions.first().map_or(0, |i| {
            text[..i.span.start].rfind('\n').map_or(0, |nl| nl + 1)
        });
        Ok(Self {
            escape,
            global_args,
            stages,
            names_build_args,
            check: parsed.check,
            undeclared_platform_args,
            first_line,
        })
    }

    /// Where an instruction appended to the stage a build of `target` ends at goes: a byte
    /// offset at the start of a line (or the file's end), and the number of the line before it.
    pub fn stage_end(&self, target: Option<&str>) -> Option<(usize, usize)> {
        let stage = &self.stages[self
            .target(target)
            .ok()
            .filter(|_| !self.stages.is_empty())?];
        Some((stage.end, stage.end_line))
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    /// The automatic `TARGET*` args `FROM` lines read with no global `ARG`, which podman 4.3
    /// leaves empty there; and where an `ARG` declaring them goes (a byte offset at a line's
    /// start, after the parser directives).
    pub fn undeclared_platform_args(&self) -> (&[&'static str], usize) {
        (&self.undeclared_platform_args, self.first_line)
    }

    /// The stage names as written, in order, for messages about `target`.
    pub fn stage_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .filter_map(|s| s.written_name.clone())
            .collect()
    }

    /// Which of [`BUILD_PLATFORM_ARGS`] the file names.
    pub fn names_build_args(&self) -> &[&'static str] {
        &self.names_build_args
    }
}

/// The references and `RUN` of one instruction of a stage.
pub(super) fn items(escape: char, ins: &Instruction) -> Vec<Item> {
    let reads = |via: Via, name: &str, pick: &dyn Fn(&str) -> Option<String>| {
        flags(&ins.flags, name)
            .filter_map(|f| {
                Some(Item::Reads {
                    via,
                    word: pick(f.value.as_deref()?)?,
                    span: f.span.clone(),
                })
            })
            .collect::<Vec<_>>()
    };
    let whole = |v: &str| Some(v.to_string());
    let mut out = match ins.keyword.as_str() {
        "ARG" => arg_pairs(escape, &ins.rest)
            .into_iter()
            .map(Item::Arg)
            .collect(),
        "COPY" | "ADD" => reads(Via::CopyFrom, "from", &whole),
        "RUN" => {
            let mut out = reads(Via::MountFrom, "mount", &|v| {
                mount_from(v).map(str::to_string)
            });
            out.push(Item::Run);
            out
        }
        _ => Vec::new(),
    };
    out.extend(uses(ins).into_iter().map(|(f, at)| Item::Uses(f, at)));
    out
}

/// The features podman versions differ on that one instruction uses, each where it is written.
pub(super) fn uses(ins: &Instruction) -> Vec<(Feature, Range<usize>)> {
    let keyword = ins.span.start..ins.span.start + ins.keyword.len();
    let mut out = Vec::new();
    if ins.heredoc {
        out.push((Feature::Heredoc, keyword.clone()));
    }
    for flag in &ins.flags {
        let name = flag.name.to_ascii_lowercase();
        let feature = match (ins.keyword.as_str(), name.as_str()) {
            ("COPY" | "ADD", "link") => Feature::CopyLink,
            ("COPY", "parents") => Feature::CopyParents,
            ("COPY", "exclude") => Feature::CopyExclude,
            ("ADD", "checksum") => Feature::AddChecksum,
            ("ADD", "unpack") => Feature::AddUnpack,
            ("RUN", "network") => Feature::RunNetwork,
            ("RUN", "security") => Feature::RunSecurity,
            ("RUN", "mount")
                if flag.value.as_deref().is_some_and(|v| {
                    v.split(',')
                        .any(|kv| kv.trim().eq_ignore_ascii_case("type=ssh"))
                }) =>
            {
                Feature::RunMountSsh
            }
            _ => continue,
        };
        out.push((feature, flag.span.clone()));
    }
    if ins.keyword == "ADD" && !ins.heredoc {
        // BuildKit's rule for a git source: `git@`, `git://`, `github.com/`, or an http(s)
        // URL whose path ends in `.git` (before a `#ref`).
        let words: Vec<&str> = ins.rest.split_whitespace().collect();
        let sources = &words[..words.len().saturating_sub(1)];
        let git = sources.iter().any(|w| {
            let path = w.split('#').next().unwrap_or(w);
            w.starts_with("git@")
                || w.starts_with("git://")
                || w.starts_with("github.com/")
                || ((w.starts_with("https://") || w.starts_with("http://"))
                    && path.ends_with(".git"))
        });
        if git {
            out.push((Feature::AddGit, keyword));
        }
    }
    out
}
