//! What a build reads from its Dockerfile: the stages the built target reaches, and for each of
//! them the images and named contexts it reads (`FROM`, `COPY --from`, `RUN --mount=from`) on the
//! platform it reads them, and whether it `RUN`s anything on that platform.
//!
//! The grammar (parser directives, escapes, continuations, heredocs, `ONBUILD`) is BuildKit's
//! parser's ([`parse`]); the variable rules are BuildKit's shell lexer's ([`shell`]); the
//! platform rules are podman 4.3.1's, measured
//! (DEVELOPERS.md): a stage `FROM` another stage runs on that stage's platform, and what a stage
//! copies or mounts from an image is read on the stage's platform.

mod check;
mod parse;
mod shell;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use parse::{Flag, Instruction};

use crate::platform::Platform;
use crate::podman_features::Feature;

pub use shell::{MAX_NESTING, Vars, expand};

/// The ignore file podman reads for a build context: `.containerignore`, else `.dockerignore`.
pub fn context_ignore_file(context: &Path) -> Option<PathBuf> {
    [".containerignore", ".dockerignore"]
        .iter()
        .map(|name| context.join(name))
        .find(|p| p.is_file())
}

/// The Dockerfile's own ignore file (`Dockerfile.containerignore`, else `.dockerignore`), which
/// podman reads instead of the context's.
pub fn dockerfile_ignore_file(dockerfile: &Path) -> Option<PathBuf> {
    [".containerignore", ".dockerignore"]
        .iter()
        .map(|ext| {
            let mut p = dockerfile.as_os_str().to_owned();
            p.push(ext);
            PathBuf::from(p)
        })
        .find(|p| p.is_file())
}

/// The build args podman 4.3.1 does not set itself but BuildKit does, and cross-compiling
/// Dockerfiles read: mab passes those a Dockerfile names.
pub const BUILD_PLATFORM_ARGS: [&str; 4] =
    ["BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"];

/// The automatic args of the target platform, which podman sets in stages but (4.3.1) leaves
/// empty in `FROM` lines unless a global `ARG` declares them.
pub const TARGET_PLATFORM_ARGS: [&str; 4] =
    ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"];

/// The automatic platform args of a build, `TARGET*` for the target and `BUILD*` for the machine
/// that builds.
pub fn platform_args(target: &Platform, build: &Platform) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        args.insert(format!("{prefix}PLATFORM"), p.to_string());
        args.insert(format!("{prefix}OS"), p.os().to_string());
        args.insert(format!("{prefix}ARCH"), p.arch().to_string());
        args.insert(
            format!("{prefix}VARIANT"),
            p.variant().unwrap_or_default().to_string(),
        );
    }
    args
}

pub use parse::Error as ParseError;

/// One `LABEL` instruction that sets all of `labels`, quoted and escaped with `escape` so the
/// builder reads every key and value literally (no variable expansion); none when a value holds
/// a line break, which a Dockerfile line cannot carry.
pub fn label_instruction(labels: &BTreeMap<String, String>, escape: char) -> Option<String> {
    let quote = |s: &str| {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '$' || c == escape {
                out.push(escape);
            }
            out.push(c);
        }
        out.push('"');
        out
    };
    let mut line = String::from("LABEL");
    for (k, v) in labels {
        if [k, v].iter().any(|s| s.contains(['\n', '\r'])) {
            return None;
        }
        line.push(' ');
        line.push_str(&quote(k));
        line.push('=');
        line.push_str(&quote(v));
    }
    Some(line)
}

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
struct Arg {
    name: String,
    default: Option<String>,
}

#[derive(Debug, Clone)]
enum Item {
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
struct Stage {
    /// Lowercased, as stage names are matched.
    name: Option<String>,
    /// As written: podman 4.3 matches `--target` to it exactly.
    written_name: Option<String>,
    base: String,
    platform: Option<String>,
    /// The `FROM` instruction.
    span: Range<usize>,
    items: Vec<Item>,
    /// Where a line after its last instruction goes (a byte offset at a line's start, or the
    /// file's end), and how many lines come before it.
    end: usize,
    end_line: usize,
}

/// A parsed Dockerfile, read once and asked about for each build.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    escape: char,
    global_args: Vec<Arg>,
    stages: Vec<Stage>,
    /// Which of [`BUILD_PLATFORM_ARGS`] the file names anywhere.
    names_build_args: Vec<&'static str>,
    /// The `# check=` directive, which holds for every stage.
    check: Option<Range<usize>>,
    /// The automatic `TARGET*` args that `FROM` lines read without a global `ARG`, and where
    /// such an `ARG` goes: the start of the first instruction's line.
    undeclared_platform_args: Vec<&'static str>,
    first_line: usize,
}

/// An image or named context that a build reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read<'a> {
    /// As written, before variable expansion.
    pub written: &'a str,
    /// After expansion; what podman looks up.
    pub resolved: Cow<'a, str>,
    /// The build arg whose value decides the reference (`FROM ${BASE}`, `${BASE:-default}`),
    /// declared where it is read: podman 4.3 does not redirect such a reference with
    /// `--build-context`, but the arg can be overridden.
    pub via_arg: Option<&'a str>,
    /// It names one of the build's named contexts.
    pub context: bool,
    pub via: Via,
    /// The platform it is read on.
    pub platform: Platform,
    /// The `--platform` of its stage (or of the stage that one is based on), as written, when
    /// that decides the platform rather than the build's target.
    pub platform_flag: Option<&'a str>,
    /// Where it is read, in the file.
    pub span: Range<usize>,
}

impl Read<'_> {
    /// Whether the reference is variables and text (`${REG}/base:1`), which podman 4.3 neither
    /// redirects with `--build-context` nor lets one build arg decide.
    pub fn is_composite(&self) -> bool {
        self.via_arg.is_none() && self.written.contains('$')
    }
}

/// What one build reads, from the stages its target reaches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads<'a> {
    pub reads: Vec<Read<'a>>,
    /// The platforms that reached stages `RUN` on, each once: a foreign one needs an emulator.
    pub run_platforms: Vec<Platform>,
    /// The features podman versions differ on that reached stages use, where, in file order.
    pub uses: Vec<(Feature, Range<usize>)>,
    /// The target stage's name as written, when a target was asked for (matched regardless of
    /// case, as BuildKit does; podman 4.3 wants it exactly).
    pub target: Option<&'a str>,
}

/// Why a build's Dockerfile cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// `target` names no stage.
    UnknownTarget { target: String, stages: Vec<String> },
    /// A reached instruction whose reference or platform does not expand.
    At {
        span: Range<usize>,
        message: String,
        help: Option<String>,
    },
}

/// One build's view: its args, platforms, named contexts and target.
pub struct Inputs<'a> {
    /// The build args mab passes (they win over `ARG` defaults).
    pub args: &'a dyn Vars,
    pub platform: &'a Platform,
    /// The automatic platform args of the build ([`platform_args`]).
    pub platform_args: &'a BTreeMap<String, String>,
    /// Whether a name is one of the build's named contexts.
    pub is_context: &'a dyn Fn(&str) -> bool,
    pub target: Option<&'a str>,
}

/// What a stage's base or a `--from` names.
#[derive(Debug, Clone)]
enum Names<'a> {
    Scratch,
    Stage(usize),
    /// An image or a named context (`context`).
    External {
        resolved: Cow<'a, str>,
        context: bool,
    },
    Unresolved(String),
}

/// One instruction's reference, resolved.
#[derive(Debug, Clone)]
struct Ref<'a> {
    via: Via,
    written: &'a str,
    names: Names<'a>,
    via_arg: Option<&'a str>,
    span: &'a Range<usize>,
}

/// The variables in scope at an instruction: what the `ARG`s declared so far set, over the
/// automatic platform args for `FROM` lines (a stage starts with none).
struct Scope<'a> {
    base: Option<&'a BTreeMap<String, String>>,
    own: Vec<(&'a str, Option<String>)>,
}

impl Scope<'_> {
    fn declared(&self, name: &str) -> Option<&Option<String>> {
        self.own
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

impl Vars for Scope<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        match self.declared(name) {
            Some(v) => v.as_deref(),
            None => self.base.and_then(|b| b.var(name)),
        }
    }
}

fn arg_pairs(escape: char, text: &str) -> Vec<Arg> {
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
fn mount_from(value: &str) -> Option<&str> {
    value.split(',').find_map(|field| {
        let (k, v) = field.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("from")
            .then(|| v.trim().trim_matches('"'))
    })
}

fn flags<'f>(flags: &'f [Flag], name: &'f str) -> impl Iterator<Item = &'f Flag> {
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

    /// The scope of `FROM` lines: the automatic platform args, then the global `ARG`s, whose
    /// values come from the build args, else their defaults.
    fn global_scope<'a>(&'a self, inputs: &'a Inputs) -> Scope<'a> {
        let mut scope = Scope {
            base: Some(inputs.platform_args),
            own: Vec::with_capacity(self.global_args.len()),
        };
        for arg in &self.global_args {
            let value = self.value(arg, &scope, inputs, None);
            // A global ARG without a value leaves an automatic one as it is.
            if value.is_some() || !inputs.platform_args.contains_key(&arg.name) {
                scope.own.push((&arg.name, value));
            }
        }
        scope
    }

    /// An `ARG`'s value: the build arg, else its default, else (in a stage) the global value.
    fn value(
        &self,
        arg: &Arg,
        scope: &Scope,
        inputs: &Inputs,
        global: Option<&Scope>,
    ) -> Option<String> {
        if let Some(v) = inputs.args.var(&arg.name) {
            return Some(v.to_string());
        }
        match &arg.default {
            Some(d) => Some(expand(d, self.escape, scope).unwrap_or_default()),
            None => global.and_then(|g| g.var(&arg.name)).map(str::to_string),
        }
    }

    /// What the name `resolved` (read in a stage before stage `before`) stands for.
    fn names<'a>(&self, resolved: Cow<'a, str>, before: usize, inputs: &Inputs) -> Names<'a> {
        if (inputs.is_context)(&resolved) {
            // podman looks a name up in the named contexts before the stages.
            return Names::External {
                resolved,
                context: true,
            };
        }
        if resolved.eq_ignore_ascii_case("scratch") {
            return Names::Scratch;
        }
        let stage = self.stages[..before].iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&resolved))
        });
        match stage {
            Some(j) => Names::Stage(j),
            None => Names::External {
                resolved,
                context: false,
            },
        }
    }

    /// A word as a reference: expanded in `scope`; `index_ok` for `--from`, where a number is a
    /// stage.
    fn resolve_word<'a>(
        &self,
        word: &'a str,
        scope: &Scope,
        before: usize,
        index_ok: bool,
        inputs: &Inputs,
    ) -> Names<'a> {
        // Most references are literal: nothing to expand, nothing to allocate.
        let literal = !word.contains(['$', '\'', '"', self.escape]);
        let expanded = if literal {
            Ok(Cow::Borrowed(word))
        } else {
            expand(word, self.escape, scope).map(Cow::Owned)
        };
        match expanded {
            Ok(r) if r.is_empty() => Names::Unresolved(format!("`{word}` expands to nothing")),
            Ok(r) if index_ok && r.chars().all(|c| c.is_ascii_digit()) => {
                match r.parse::<usize>().ok().filter(|&i| i < self.stages.len()) {
                    Some(i) => Names::Stage(i),
                    None => Names::Unresolved(format!("there is no stage {r}")),
                }
            }
            Ok(r) => self.names(r, before, inputs),
            Err(e) => Names::Unresolved(e),
        }
    }

    /// Every stage's base and `--from`s, resolved; and whether it `RUN`s.
    fn resolve<'a>(
        &'a self,
        inputs: &Inputs,
        global: &Scope,
    ) -> Vec<(Ref<'a>, Vec<Ref<'a>>, bool)> {
        // An arg can redirect a reference where it is declared, set or not.
        let overriding = |declared: &dyn Fn(&str) -> bool, w: &'a str| {
            shell::overriding_variable(w).filter(|v| declared(v))
        };
        let global_declared = |v: &str| self.global_args.iter().any(|a| a.name == v);
        self.stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let base = Ref {
                    via: Via::From,
                    written: &stage.base,
                    names: self.resolve_word(&stage.base, global, i, false, inputs),
                    via_arg: overriding(&global_declared, &stage.base),
                    span: &stage.span,
                };
                let mut scope = Scope {
                    base: None,
                    own: Vec::new(),
                };
                let mut refs = Vec::new();
                let mut runs = false;
                for item in &stage.items {
                    match item {
                        Item::Arg(arg) => {
                            let value = self.value(arg, &scope, inputs, Some(global));
                            scope.own.push((&arg.name, value));
                        }
                        Item::Run | Item::Uses(..) => runs |= matches!(item, Item::Run),
                        Item::Reads { via, word, span } => refs.push(Ref {
                            via: *via,
                            written: word,
                            // Any stage, by name or index: `--from` may name a later one.
                            names: self.resolve_word(word, &scope, self.stages.len(), true, inputs),
                            via_arg: overriding(&|v| scope.declared(v).is_some(), word),
                            span,
                        }),
                    }
                }
                (base, refs, runs)
            })
            .collect()
    }

    /// The stage a build stops at.
    fn target(&self, target: Option<&str>) -> Result<usize, EvalError> {
        let Some(t) = target else {
            return Ok(self.stages.len().saturating_sub(1));
        };
        self.stages
            .iter()
            .position(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
            .ok_or_else(|| EvalError::UnknownTarget {
                target: t.to_string(),
                stages: self.stage_names(),
            })
    }

    /// What a build of this file reads, from the stages its target reaches.
    pub fn reads<'a>(&'a self, inputs: &Inputs) -> Result<Reads<'a>, EvalError> {
        if self.stages.is_empty() {
            return Ok(Reads::default());
        }
        let target = self.target(inputs.target)?;
        let global = self.global_scope(inputs);
        let resolved = self.resolve(inputs, &global);
        // Reachable stages: the target, and every stage a reached one is based on or reads.
        let mut reached = vec![false; self.stages.len()];
        let mut stack = vec![target];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut reached[i], true) {
                continue;
            }
            let (base, refs, _) = &resolved[i];
            for r in std::iter::once(base).chain(refs) {
                if let Names::Stage(j) = r.names {
                    stack.push(j);
                }
            }
        }
        // Platforms in file order: a stage's base stage comes before it.
        let mut platforms: Vec<Option<(Platform, Option<&str>)>> = vec![None; self.stages.len()];
        for i in (0..self.stages.len()).filter(|&i| reached[i]) {
            let (base, _, _) = &resolved[i];
            platforms[i] = Some(match &base.names {
                Names::Stage(j) => platforms[*j]
                    .clone()
                    .expect("a base stage is reached first"),
                _ => (
                    self.stage_platform(&self.stages[i], inputs, &global)?,
                    self.stages[i].platform.as_deref(),
                ),
            });
        }
        let mut out = Reads {
            target: inputs
                .target
                .and(self.stages[target].written_name.as_deref()),
            ..Reads::default()
        };
        out.uses
            .extend(self.check.clone().map(|at| (Feature::CheckDirective, at)));
        for i in (0..self.stages.len()).filter(|&i| reached[i]) {
            out.uses
                .extend(self.stages[i].items.iter().filter_map(|item| match item {
                    Item::Uses(f, at) => Some((*f, at.clone())),
                    _ => None,
                }));
        }
        for i in (0..self.stages.len()).filter(|&i| reached[i]) {
            let (platform, platform_flag) = platforms[i].as_ref().expect("set above");
            let (base, refs, runs) = &resolved[i];
            for r in std::iter::once(base).chain(refs) {
                match &r.names {
                    Names::Scratch | Names::Stage(_) => {}
                    Names::Unresolved(message) => {
                        return Err(EvalError::At {
                            span: (*r.span).clone(),
                            message: format!("{} `{}`: {message}", r.via, r.written),
                            help: Some(
                                "set the build arg it needs in the image's `args`, or give the ARG a default"
                                    .into(),
                            ),
                        });
                    }
                    Names::External { resolved, context } => out.reads.push(Read {
                        written: r.written,
                        resolved: resolved.clone(),
                        via_arg: r.via_arg,
                        context: *context,
                        via: r.via,
                        platform: platform.clone(),
                        platform_flag: *platform_flag,
                        span: (*r.span).clone(),
                    }),
                }
            }
            if *runs && !out.run_platforms.contains(platform) {
                out.run_platforms.push(platform.clone());
            }
        }
        Ok(out)
    }

    /// `--platform` of a stage not based on another, or the target platform.
    fn stage_platform(
        &self,
        stage: &Stage,
        inputs: &Inputs,
        global: &Scope,
    ) -> Result<Platform, EvalError> {
        let Some(word) = &stage.platform else {
            return Ok(inputs.platform.clone());
        };
        let at = |message: String| {
            EvalError::At {
            span: stage.span.clone(),
            message,
            help: Some("write --platform=$BUILDPLATFORM, --platform=$TARGETPLATFORM or a platform such as linux/amd64".into()),
        }
        };
        let value = expand(word, self.escape, global).map_err(at)?;
        value.parse::<Platform>().map_err(|e| {
            at(format!(
                "`--platform={word}` is `{value}`, not a platform: {e}"
            ))
        })
    }
}

/// The references and `RUN` of one instruction of a stage.
fn items(escape: char, ins: &Instruction) -> Vec<Item> {
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
fn uses(ins: &Instruction) -> Vec<(Feature, Range<usize>)> {
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

#[cfg(test)]
mod tests;
