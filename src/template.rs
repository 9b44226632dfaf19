//! Rendering of the config's templates (minijinja) with strict undefined: a variable that does
//! not exist is an error naming the file, the image and the template, never an empty string.
//! Templates can read only their context and `env()`: no file, network or include access, and
//! no environment variable whose name looks like a credential.

use std::ops::Range;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Value};
use minijinja::{AutoEscape, Environment, ErrorKind as JinjaKind, UndefinedBehavior};
use toml::Spanned;

use crate::error::{ConfigError, ErrorKind, Source, suggest};
use crate::git::LazyGit;
use crate::platform::Platform;

/// What a template is for, to say where a failing one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Name,
    Repository,
    Registry,
    Tag,
    Arg(&'a str),
    Label(&'a str),
    Annotation(&'a str),
    Target,
    Context(&'a str),
    /// The build's `context` directory.
    BuildContext,
    Dockerfile,
}

impl Field<'_> {
    fn describe(&self) -> String {
        match self {
            Self::Name => "the `name` template".into(),
            Self::Repository => "the `repository` template".into(),
            Self::Registry => "the `registry` template".into(),
            Self::Tag => "a tag template".into(),
            Self::Arg(k) => format!("build arg `{k}`"),
            Self::Label(k) => format!("label `{k}`"),
            Self::Annotation(k) => format!("annotation `{k}`"),
            Self::Target => "the `target` template".into(),
            Self::Context(k) => format!("named context `{k}`"),
            Self::BuildContext => "the `context` template".into(),
            Self::Dockerfile => "the `dockerfile` template".into(),
        }
    }

    fn sees_platform(&self) -> bool {
        matches!(
            self,
            Self::Arg(_)
                | Self::Target
                | Self::Context(_)
                | Self::Label(_)
                | Self::Annotation(_)
                | Self::BuildContext
                | Self::Dockerfile
        )
    }
}

/// Instructions one template may execute; a tag template takes a few dozen.
const TEMPLATE_FUEL: u64 = 100_000;

/// The template engine of one config file.
pub struct Templates {
    /// Each distinct template is compiled once, up front, and kept here under its own text as
    /// its name: a config of 1,000 images repeats the same few templates thousands of times,
    /// and a read-only environment can be shared by the threads that render them.
    env: Environment<'static>,
    git: Arc<LazyGit>,
}

/// Parts of the names of environment variables that hold credentials, as CI systems judge
/// them (in any case): `REGISTRY_PASSWORD`, `GH_TOKEN`, `NPM_AUTH`, `SSH_KEY`.
const CREDENTIAL_MARKERS: [&str; 7] = [
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "KEY",
    "AUTH",
    "CREDENTIAL",
];

/// Whether environment variable `name` looks like it holds a credential.
pub fn looks_like_credential(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    CREDENTIAL_MARKERS.iter().any(|m| upper.contains(m))
}

/// `env()` of a variable that looks like a credential: what a template renders ends up in
/// plans, logs, labels, tags and reports, so such a value must travel as a build secret.
#[derive(Debug)]
struct CredentialInTemplate(String);

impl std::fmt::Display for CredentialInTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "environment variable `{}` looks like a credential",
            self.0
        )
    }
}

impl std::error::Error for CredentialInTemplate {}

fn env_function(name: String, default: Option<String>) -> Result<String, minijinja::Error> {
    // Refused whether it is set or not, before it is read: the name decides, not the value.
    if looks_like_credential(&name) {
        let refused = CredentialInTemplate(name);
        return Err(
            minijinja::Error::new(JinjaKind::InvalidOperation, refused.to_string())
                .with_source(refused),
        );
    }
    match (std::env::var(&name), default) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(d)) => Ok(d),
        (Err(_), None) => Err(minijinja::Error::new(
            JinjaKind::InvalidOperation,
            format!(
                "environment variable `{name}` is not set (give a default: env(\"{name}\", \"...\"))"
            ),
        )),
    }
}

impl Templates {
    /// `texts` are the templates to compile now; others are compiled each time they render.
    pub fn new<'t>(git: Arc<LazyGit>, texts: impl IntoIterator<Item = &'t str>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Names are template texts: one ending in `.html` must not switch on HTML escaping.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_function("env", env_function);
        // A config is input: a template that loops for ever must fail, not hang a CI job.
        env.set_fuel(Some(TEMPLATE_FUEL));
        for text in texts {
            // A template that does not compile is left out: rendering it reports the error.
            if text.contains('{') && env.get_template(text).is_err() {
                let _ = env.add_template_owned(text.to_string(), text.to_string());
            }
        }
        Self { env, git }
    }

    pub fn git(&self) -> Value {
        Value::from_dyn_object(self.git.clone())
    }

    pub fn git_info(&self) -> Option<&crate::git::GitInfo> {
        self.git.info()
    }

    /// Renders `template`, written in `source`, with `ctx`; `image` names the image in errors.
    pub fn render(
        &self,
        source: &Source,
        template: &Spanned<String>,
        ctx: &Value,
        image: &str,
        field: Field,
    ) -> Result<String, ConfigError> {
        let text = template.get_ref();
        // Most values are plain strings: skip the compiler for them.
        if !text.contains('{') {
            return Ok(text.clone());
        }
        let rendered = match self.env.get_template(text) {
            Ok(compiled) => compiled.render(ctx),
            Err(_) => self.env.render_str(text, ctx),
        };
        rendered.map_err(|e| self.explain(source, template, ctx, image, field, e))
    }

    /// Turns a minijinja error into one that says which variable, where, and what exists instead.
    fn explain(
        &self,
        source: &Source,
        template: &Spanned<String>,
        ctx: &Value,
        image: &str,
        field: Field,
        e: minijinja::Error,
    ) -> ConfigError {
        let text = template.get_ref();
        let whole = template.span();
        let span = e
            .range()
            .and_then(|r| inner_span(source.text(), &whole, text, r))
            .unwrap_or(whole.clone());
        let place = format!("{} of image `{image}`", field.describe());
        let detail = e.detail().unwrap_or_default().to_string();
        let err = |message: String, label: &str| {
            ConfigError::new(ErrorKind::Template, message).at(source, span.clone(), Some(label))
        };
        if let Some(CredentialInTemplate(name)) = find_source(&e) {
            return ConfigError::new(
                ErrorKind::Secret,
                format!(
                    "{place} reads environment variable `{name}`, which looks like a credential: what a template renders shows in plans, logs, labels and tags"
                ),
            )
            .at(source, span, Some("a credential"))
            .with_help(crate::config::pass_as_secret(name));
        }
        match e.kind() {
            JinjaKind::SyntaxError => err(
                format!("template syntax error in {place}: {detail}"),
                "here",
            ),
            JinjaKind::UndefinedError => match self.missing_variable(text, ctx) {
                Some(path)
                    if path.first() == Some(&"platform".to_string()) && !field.sees_platform() =>
                {
                    let why = if field == Field::Tag {
                        "tags cannot depend on the platform: one tag names one manifest list that holds every platform"
                    } else {
                        "`platform` is only available in build args, `target`, `contexts`, `context`, `dockerfile`, labels and annotations"
                    };
                    err(format!("{place} uses `platform`: {why}"), "platform-specific").with_help(
                        "put platform-specific values in `args`, or in [images.NAME.platform.\"os/arch\"] overrides",
                    )
                }
                Some(path) if path[0] == "git" && self.git.info().is_none() => err(
                    format!(
                        "{place} uses `{}`, but {} is not in a git repository with commits",
                        path.join("."),
                        self.git.dir().display()
                    ),
                    "needs git",
                )
                .with_help(
                    "commit the project to git, or replace the git variable with a `vars` entry",
                ),
                Some(path) => {
                    let name = path.join(".");
                    let help = self.siblings(ctx, &path).and_then(|known| {
                        let last = path.last().map(String::as_str).unwrap_or_default();
                        suggest(last, known.iter().map(String::as_str)).or_else(|| {
                            let parent = path[..path.len() - 1].join(".");
                            (!known.is_empty())
                                .then(|| format!("`{parent}` holds: {}", known.join(", ")))
                        })
                    });
                    err(
                        format!("undefined variable `{name}` in {place}"),
                        "undefined",
                    )
                    .with_help_opt(help)
                }
                None => err(format!("undefined value in {place}: {detail}"), "undefined"),
            },
            _ => err(format!("cannot render {place}: {detail}"), "here"),
        }
    }

    /// The first variable path the template uses that `ctx` does not hold.
    fn missing_variable(&self, text: &str, ctx: &Value) -> Option<Vec<String>> {
        let env = &self.env;
        let tmpl = env.template_from_str(text).ok()?;
        let mut used: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
        used.sort();
        used.into_iter().find_map(|path| {
            let parts: Vec<String> = path.split('.').map(str::to_string).collect();
            if env.globals().any(|(g, _)| g == parts[0]) {
                return None;
            }
            let mut value = ctx.clone();
            for (i, part) in parts.iter().enumerate() {
                value = value.get_attr(part).unwrap_or(Value::UNDEFINED);
                if value.is_undefined() {
                    return Some(parts[..=i].to_vec());
                }
            }
            None
        })
    }

    /// The names defined beside the last part of `path`, for a did-you-mean.
    fn siblings(&self, ctx: &Value, path: &[String]) -> Option<Vec<String>> {
        let mut parent = ctx.clone();
        for part in &path[..path.len() - 1] {
            parent = parent.get_attr(part).ok()?;
        }
        let mut keys: Vec<String> = parent
            .try_iter()
            .ok()?
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        keys.sort();
        Some(keys)
    }
}

/// The error of type `T` in the chain of `e`'s sources.
fn find_source<T: std::error::Error + 'static>(e: &minijinja::Error) -> Option<&T> {
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        if let Some(found) = cause.downcast_ref::<T>() {
            return Some(found);
        }
        next = cause.source();
    }
    None
}

/// Maps a range inside a template to the file, when the TOML string holds the template verbatim
/// (no escapes): then errors point at the exact characters.
fn inner_span(
    file: &str,
    whole: &Range<usize>,
    text: &str,
    inner: Range<usize>,
) -> Option<Range<usize>> {
    let written = file.get(whole.clone())?;
    let body = written.get(1..written.len().checked_sub(1)?)?;
    (body == text && inner.end <= text.len())
        .then(|| whole.start + 1 + inner.start..whole.start + 1 + inner.end)
}

/// `platform` in templates: renders as `linux/arm/v7`, with `.os`, `.arch`, `.variant`.
#[derive(Debug)]
pub struct PlatformValue(pub Platform);

impl Object for PlatformValue {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "os" => Value::from(self.0.os().to_string()),
            "arch" => Value::from(self.0.arch().to_string()),
            "variant" => Value::from(self.0.variant().unwrap_or_default().to_string()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["os", "arch", "variant"])
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn source(text: &str) -> Source {
        Source::new("m.toml".into(), "m.toml".into(), text.into())
    }

    fn spanned(src: &Source, s: &str) -> Spanned<String> {
        let start = src
            .text()
            .find(&format!("\"{s}\""))
            .expect("template in source");
        Spanned::new(start..start + s.len() + 2, s.to_string())
    }

    fn render(text: &str, field: Field) -> Result<String, ConfigError> {
        let src = source(&format!("t = \"{text}\"\n"));
        let t = Templates::new(Arc::new(LazyGit::new(std::env::temp_dir())), [text]);
        let ctx = context! {
            vars => context! { version => "1.4.2" },
            matrix => context! { go => "1.22" },
        };
        // As in `matrix::expand`: only per-build fields see the platform.
        let ctx = if field.sees_platform() {
            context! { platform => Value::from_object(PlatformValue("linux/arm/v7".parse().unwrap())), ..ctx }
        } else {
            ctx
        };
        t.render(&src, &spanned(&src, text), &ctx, "api", field)
    }

    #[test]
    fn renders_variables_and_platform() {
        assert_eq!(
            render("{{ vars.version }}-go{{ matrix.go }}", Field::Tag).unwrap(),
            "1.4.2-go1.22"
        );
        assert_eq!(
            render(
                "{{ platform }}|{{ platform.arch }}{{ platform.variant }}",
                Field::Arg("A")
            )
            .unwrap(),
            "linux/arm/v7|armv7"
        );
        assert_eq!(render("plain", Field::Tag).unwrap(), "plain");
    }

    #[test]
    fn undefined_variable_is_an_error_with_suggestion() {
        let e = render("{{ vars.verison }}", Field::Tag).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Template);
        assert!(
            e.message()
                .contains("undefined variable `vars.verison` in a tag template of image `api`"),
            "{}",
            e.message()
        );
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert_eq!(help, "did you mean `version`?");
        assert_eq!(e.location(), Some("m.toml:1:9"));
    }

    #[test]
    fn tags_cannot_use_platform() {
        let e = render("{{ vars.version }}-{{ platform.arch }}", Field::Tag).unwrap_err();
        assert!(
            e.message().contains("tags cannot depend on the platform"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn labels_and_annotations_may_use_platform_and_names_may_not() {
        let arch = "{{ platform.arch }}";
        assert_eq!(render(arch, Field::Label("io.hass.arch")).unwrap(), "arm");
        assert_eq!(render(arch, Field::Annotation("a")).unwrap(), "arm");
        let e = render(arch, Field::Name).unwrap_err();
        assert!(
            e.message()
                .contains("`platform` is only available in build args, `target`, `contexts`, `context`, `dockerfile`, labels and annotations"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn runaway_templates_stop() {
        let e = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            Field::Tag,
        )
        .unwrap_err();
        assert!(
            e.message().contains("cannot render a tag template"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn env_refuses_credentials_by_name_set_or_not() {
        for name in [
            "NPM_TOKEN",
            "registry_password",
            "Passwd",
            "AWS_SECRET_ACCESS_KEY",
            "SSH_KEY",
            "GIT_AUTH",
            "CREDENTIALS_FILE",
        ] {
            assert!(looks_like_credential(name), "{name}");
            let e =
                render(&format!("{{{{ env('{name}', 'x') }}}}"), Field::Label("l")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Secret, "{name}: {}", e.message());
            assert!(
                e.message().contains(&format!("`{name}`")),
                "{}",
                e.message()
            );
        }
        // Inside other expressions too: the call fails, whatever surrounds it.
        let e = render("{% if env('A_TOKEN', '') %}y{% endif %}", Field::Tag).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Secret);
        assert!(!looks_like_credential("CI_COMMIT_BRANCH"));
    }

    #[test]
    fn syntax_errors_and_env() {
        let e = render("{{ vars.version ", Field::Tag).unwrap_err();
        assert!(
            e.message()
                .starts_with("template syntax error in a tag template"),
            "{}",
            e.message()
        );
        let e = render("{{ env(\"MAB_SURELY_UNSET_VAR\") }}", Field::Tag).unwrap_err();
        assert!(
            e.message().contains("`MAB_SURELY_UNSET_VAR` is not set"),
            "{}",
            e.message()
        );
        assert_eq!(
            render("{{ env(\"MAB_SURELY_UNSET_VAR\", \"d\") }}", Field::Tag).unwrap(),
            "d"
        );
    }
}
