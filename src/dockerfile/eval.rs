//! Evaluating a Dockerfile for one build: its args and platform decide what each reached
//! stage's base and `--from`s name (BuildKit's variable rules, [`super::shell`]) and the
//! platform each is read on (podman 4.3.1's rules, measured: DEVELOPERS.md).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use super::stages::{Arg, Item, Stage, Via};
use super::{Dockerfile, Vars, expand, shell};
use crate::platform::Platform;
use crate::podman_features::Feature;

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
pub(super) enum Names<'a> {
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
pub(super) struct Ref<'a> {
    pub(super) via: Via,
    pub(super) written: &'a str,
    pub(super) names: Names<'a>,
    pub(super) via_arg: Option<&'a str>,
    pub(super) span: &'a Range<usize>,
}

/// The variables in scope at an instruction: what the `ARG`s declared so far set, over the
/// automatic platform args for `FROM` lines (a stage starts with none).
pub(super) struct Scope<'a> {
    pub(super) base: Option<&'a BTreeMap<String, String>>,
    pub(super) own: Vec<(&'a str, Option<String>)>,
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

impl Dockerfile {
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
    pub(super) fn target(&self, target: Option<&str>) -> Result<usize, EvalError> {
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
