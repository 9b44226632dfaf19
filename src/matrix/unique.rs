//! Every instance name and every pushed reference is one image's: two that collide are an
//! error at both places.

use std::collections::HashMap;

use crate::config::Config;
use crate::error::{ConfigError, ErrorKind};
use crate::platform::Platform;
use crate::reference::ImageRef;

use super::Instance;

pub(super) fn check_unique(config: &Config, instances: &[Instance]) -> Result<(), ConfigError> {
    let source = |inst: &Instance| &config.images[inst.image].file.source;
    let mut names: HashMap<&str, &Instance> = HashMap::with_capacity(instances.len());
    let mut refs: HashMap<String, Pusher> = HashMap::new();
    for inst in instances {
        if let Some(first) = names.insert(&inst.name, inst) {
            return Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!("two image instances are named `{}`", inst.name),
            )
            .at(
                source(first),
                first.name_span.clone(),
                Some(format!("`{}` from image `{}`", first.name, first.key)),
            )
            .at(
                source(inst),
                inst.name_span.clone(),
                Some(format!("`{}` again, from image `{}`", inst.name, inst.key)),
            )
            .with_help("give matrix images a `name` template that uses every matrix key"));
        }
        let own = inst
            .builds
            .iter()
            .flat_map(|b| b.tags.iter().map(move |r| (r, Some(&b.platform))));
        for (r, platform) in inst.tags.iter().map(|r| (r, None)).chain(own) {
            if let Some(first) = refs.insert(r.qualified(), (inst, platform)) {
                return Err(pushed_twice(config, r, first, (inst, platform)));
            }
        }
    }
    Ok(())
}

/// What pushes one reference: an instance's list, or one platform's image of it.
type Pusher<'a> = (&'a Instance, Option<&'a Platform>);

/// The error for `r` pushed by both `a` and `b`: at their names, or at the two platforms'
/// `tags` when one instance pushes it twice.
fn pushed_twice(config: &Config, r: &ImageRef, a: Pusher, b: Pusher) -> ConfigError {
    let def = |inst: &Instance| &config.images[inst.image];
    let what = |(inst, platform): Pusher| match platform {
        Some(p) => format!("the {p} image of `{}`", inst.name),
        None => format!("`{}`", inst.name),
    };
    let mut err = ConfigError::new(
        ErrorKind::Duplicate,
        format!("`{r}` is pushed by both {} and {}", what(a), what(b)),
    );
    // A platform's tags, where they are written.
    let own_tags = |(inst, platform): Pusher| {
        let tags = &def(inst).overrides.get(platform?)?.tags;
        let (first, last) = (tags.first()?, tags.last()?);
        let span = if first.source.path() == last.source.path() {
            first.text.span().start..last.text.span().end
        } else {
            first.text.span()
        };
        Some((first.source.clone(), span))
    };
    for pusher in [a, b] {
        let label = Some(what(pusher));
        err = match own_tags(pusher) {
            Some((source, span)) => err.at(&source, span, label),
            None => err.at(
                &def(pusher.0).file.source,
                pusher.0.name_span.clone(),
                label,
            ),
        };
    }
    err.with_help(if a.1.is_none() && b.1.is_none() {
        "one tag names one manifest list: make the tags differ, e.g. with a matrix value"
    } else {
        "one reference names one image: make the tags differ, e.g. with `{{ platform.arch }}` in a platform's tags"
    })
}
