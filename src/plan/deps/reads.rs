//! What a build's Dockerfile reads, in the stages its target reaches, and which of those reads
//! are images of the config (by a tag, or a `target:` named context) and how each is redirected.

use std::collections::BTreeMap;

use crate::dockerfile::{self, EvalError, Inputs, Read};
use crate::error::{ConfigError, ErrorKind, join, suggest};
use crate::matrix::{BuildSpec, Instance, NamedContext};
use crate::plan::Warning;
use crate::platform::Platform;
use crate::reference::ImageRef;

use super::{Found, Index, LabelAt, Needs, Origin, Parsed, Redirect};

/// A build's args: the config's, then those mab adds.
struct Args<'a> {
    config: &'a BTreeMap<String, String>,
    added: &'a [(String, String)],
}

impl dockerfile::Vars for Args<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.config.get(name).map(String::as_str).or_else(|| {
            self.added
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        })
    }
}

impl<'a> Index<'a> {
    /// The dependencies the Dockerfile of build `spec` of instance `i` reads, and what else
    /// the build needs but its edges.
    pub(super) fn reads_of(
        &'a self,
        i: usize,
        spec: &BuildSpec,
        parsed: &'a Parsed,
        labels: Option<&str>,
        warnings: &mut Vec<Warning>,
    ) -> Result<(Vec<Found<'a>>, Needs), ConfigError> {
        let inst = &self.instances[i];
        let parsed = &parsed.dockerfile;
        let auto = &self.platform_args[&spec.platform];
        let added_args: Vec<(String, String)> = parsed
            .names_build_args()
            .iter()
            .filter(|name| !spec.args.contains_key(**name))
            .map(|name| (name.to_string(), auto[*name].clone()))
            .collect();
        let is_context = |n: &str| spec.contexts.contains_key(n);
        let reads = parsed
            .reads(&Inputs {
                args: &Args {
                    config: &spec.args,
                    added: &added_args,
                },
                platform: &spec.platform,
                platform_args: auto,
                is_context: &is_context,
                target: spec.target.as_deref(),
            })
            .map_err(|e| self.eval_error(inst, spec, e))?;
        let mut found = Vec::new();
        let mut bases: Vec<(String, Platform)> = Vec::new();
        for read in reads.reads {
            let external =
                (!read.context).then(|| (read.resolved.to_string(), read.platform.clone()));
            match self.found_of(i, spec, read, warnings)? {
                Some(f) => found.push(f),
                None => bases.extend(external),
            }
        }
        bases.sort();
        bases.dedup();
        let needs = Needs {
            edges: Vec::new(),
            added_args,
            run_platforms: reads.run_platforms,
            features: reads
                .uses
                .iter()
                .map(|(feature, at)| {
                    let (line, column) = spec.paths.dockerfile_source.line_col(at.start);
                    crate::plan::FeatureUse {
                        feature: *feature,
                        line,
                        column,
                    }
                })
                .collect(),
            declare: match parsed.undeclared_platform_args() {
                ([], _) => None,
                (names, offset) => Some(crate::plan::Insertion {
                    offset,
                    after_line: spec.paths.dockerfile_source.line_col(offset).0 - 1,
                    instruction: format!("ARG {}", names.join(" ")),
                }),
            },
            target: reads.target.map(str::to_string),
            label: labels.and_then(|instruction| {
                let (offset, after_line) = parsed.stage_end(spec.target.as_deref())?;
                Some(LabelAt {
                    offset,
                    after_line,
                    instruction: instruction.to_string(),
                })
            }),
            bases,
            external: Vec::new(),
        };
        Ok((found, needs))
    }

    /// What one read of build `spec` of instance `i` depends on, if anything: a `target:`
    /// context, or an image of the config by one of its tags; and how it is redirected.
    fn found_of(
        &self,
        i: usize,
        spec: &BuildSpec,
        read: Read<'a>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Option<Found<'a>>, ConfigError> {
        let inst = &self.instances[i];
        let (dep, redirect) = if read.context {
            match &spec.contexts[read.resolved.as_ref()] {
                NamedContext::Image { name, source, span } => {
                    let dep = self.context_image(inst, &read.resolved, name, source, span)?;
                    let redirect = match read.via_arg {
                        Some(a) => Redirect::Arg {
                            name: a.to_string(),
                            named: true,
                        },
                        None => Redirect::Named(read.resolved.to_string()),
                    };
                    (dep, Some(redirect))
                }
                NamedContext::Remote { .. } | NamedContext::Dir(_) => {
                    if let Some(arg) = read.via_arg {
                        warnings.push(unredirected(inst, &read, arg));
                    }
                    return Ok(None);
                }
            }
        } else {
            let Some(&dep) =
                ImageRef::qualify_written(&read.resolved).and_then(|q| self.by_ref.get(&q))
            else {
                return Ok(None);
            };
            if dep == i {
                // An image built FROM its own earlier release reads it from the registry.
                return Ok(None);
            }
            let redirect = match read.via_arg {
                Some(a) => Some(Redirect::Arg {
                    name: a.to_string(),
                    named: false,
                }),
                None if read.is_composite() => {
                    // The order still holds; the image is read as written.
                    warnings.push(composite(inst, &self.instances[dep], &read));
                    None
                }
                None => Some(Redirect::Reference(read.resolved.to_string())),
            };
            (dep, redirect)
        };
        Ok(Some(Found {
            dep,
            platform: read.platform.clone(),
            redirect,
            origin: Origin::Dockerfile(read),
        }))
    }

    fn eval_error(&self, inst: &Instance, spec: &BuildSpec, e: EvalError) -> ConfigError {
        let def = &self.config.images[inst.image];
        match e {
            EvalError::UnknownTarget { target, stages } => {
                let written = def
                    .overrides
                    .get(&spec.platform)
                    .and_then(|o| o.target.as_ref())
                    .or(def.target.as_ref())
                    .expect("a target was given");
                let listed = if stages.is_empty() {
                    "it has no named stage".to_string()
                } else {
                    format!("its stages: {}", stages.join(", "))
                };
                let help = suggest(&target, stages.iter().map(String::as_str))
                    .map_or(listed.clone(), |s| format!("{s} ({listed})"));
                written
                    .source
                    .error(
                        ErrorKind::Target,
                        written.text.span(),
                        format!(
                            "target `{target}` of image `{}` is not a stage of {}",
                            inst.name,
                            spec.paths.dockerfile.display()
                        ),
                    )
                    .with_help(help)
            }
            EvalError::At {
                span,
                message,
                help,
            } => spec
                .paths
                .dockerfile_source
                .error(
                    ErrorKind::Dockerfile,
                    span,
                    format!("image `{}` ({}): {message}", inst.name, spec.platform),
                )
                .with_help_opt(help),
        }
    }
}

/// A reference of variables and text, which podman reads as written.
fn composite(inst: &Instance, dep: &Instance, read: &Read) -> Warning {
    Warning {
        image: inst.name.clone(),
        message: format!(
            "`{}` reads `{}` as `{}`: podman 4.3 redirects only a literal reference or one build arg, so this build reads {} from the registry, not the {} this run builds",
            inst.name, read.resolved, read.written, read.resolved, dep.name
        ),
        help: format!(
            "make the whole reference one ARG (`ARG BASE={}` then `FROM ${{BASE}}`), or write it literally",
            read.written
        ),
    }
}

/// A build arg that names a directory or URL context, which an arg override cannot carry.
fn unredirected(inst: &Instance, read: &Read, arg: &str) -> Warning {
    Warning {
        image: inst.name.clone(),
        message: format!(
            "`{}` reads named context `{}` through build arg {arg}: podman 4.3 does not look a build arg's value up in the named contexts",
            inst.name, read.resolved
        ),
        help: format!("write `{} {}` literally", read.via, read.resolved),
    }
}

/// A `depends_on` entry whose image the Dockerfile never reads.
pub(super) fn unread(inst: &Instance, dep: &Instance) -> Warning {
    Warning {
        image: inst.name.clone(),
        message: format!(
            "`{}` depends on `{}`, but its Dockerfile reads none of {}'s images: the build waits for it and reads nothing of it",
            inst.name, dep.name, dep.name
        ),
        help: format!(
            "read it in a FROM, COPY --from or RUN --mount=from by one of its tags ({}), or through a named context: contexts = {{ NAME = \"target:{}\" }}",
            join(&dep.tags),
            dep.name
        ),
    }
}
