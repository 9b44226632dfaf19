//! A manifest list's publication: what each tag holds is recorded, the index is pushed once and
//! read back, and every other reference is pointed at it by a copy in the registry; plus the
//! skopeo commands that read and copy references.

use std::ffi::OsStr;

use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};

use super::command::{Arg, Command, CommandKind, Hole};
use super::{PlatformTag, Reach, STATE_DIR, Step};

/// `skopeo inspect --raw` of `reference`, the way pushes reach its registry.
pub fn inspect_command(
    reference: impl Into<Arg>,
    insecure: bool,
    registries_conf: Option<&OsStr>,
) -> Command {
    inspect(&["inspect", "--raw"], reference, insecure, registries_conf)
}

/// `skopeo inspect --config --raw` of `reference`: its image's config, as [`inspect_command`]
/// reaches the registry.
pub fn inspect_config_command(
    reference: impl Into<Arg>,
    insecure: bool,
    registries_conf: Option<&OsStr>,
) -> Command {
    let words = &["inspect", "--config", "--raw"];
    inspect(words, reference, insecure, registries_conf)
}

fn inspect(
    words: &[&str],
    reference: impl Into<Arg>,
    insecure: bool,
    registries_conf: Option<&OsStr>,
) -> Command {
    let mut c = Command::new(CommandKind::Inspect, ["skopeo"], words.iter().copied());
    if insecure {
        c.arg("--tls-verify=false");
    }
    pass_registries_conf(&mut c, registries_conf);
    c.registry(reference);
    c
}

/// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF, which podman honours: pass it on.
fn pass_registries_conf(c: &mut Command, registries_conf: Option<&OsStr>) {
    if let Some(conf) = registries_conf {
        c.args([
            "--registries-conf".into(),
            conf.to_string_lossy().into_owned(),
        ]);
    }
}

/// `skopeo copy` of the index `from` (`REPO@DIGEST`) to tag `to`, byte for byte, so that the
/// tag names the same digest; writes the digest to `digestfile`. `to` may be in another
/// repository or registry than `from` (skopeo then copies the blobs it lacks); `insecure` says
/// how each end is reached.
pub fn copy_command(
    from: Arg,
    to: &ImageRef,
    insecure: [bool; 2],
    registries_conf: Option<&OsStr>,
    digestfile: &str,
) -> Command {
    let mut c = Command::new(
        CommandKind::Copy,
        ["skopeo"],
        [
            "copy",
            "--all",
            "--preserve-digests",
            "--digestfile",
            digestfile,
        ],
    );
    let [src, dest] = insecure;
    if src {
        c.arg("--src-tls-verify=false");
    }
    if dest {
        c.arg("--dest-tls-verify=false");
    }
    pass_registries_conf(&mut c, registries_conf);
    c.arg(from.prefixed("docker://")).registry(to.to_string());
    c
}

/// Where a list's step for `reference` (a tag or the marker) has skopeo or podman write the
/// digest, relative to the workdir: named by the tag in the list's own repository, by the
/// whole reference (`/` as `+`, which no reference holds) in another.
fn digestfile(image: &str, reach: Reach, reference: &ImageRef) -> String {
    if reference.repository == *reach.repository {
        format!("{STATE_DIR}/digest/{image}@{}", reference.tag)
    } else {
        let flat = reference.to_string().replace('/', "+");
        format!("{STATE_DIR}/digest/{image}@{flat}")
    }
}

/// Pointing `tag` at the index of list `image` by a copy in the registry, read back after,
/// with the restore that `--atomic` runs after a failure. The index is in repository `from`:
/// `index` when the registry holds it already, else the one the list's push makes.
pub fn copy_step(
    image: &str,
    (from, index): (&Repository, Option<&str>),
    (tag, platform): (&ImageRef, Option<&Platform>),
    reach: Reach,
    registries_conf: Option<&OsStr>,
) -> Step {
    let file = digestfile(image, reach, tag);
    let source = match (index, platform) {
        (Some(digest), _) => Arg::Lit(format!("{from}@{digest}")),
        (None, Some(p)) => Arg::holed(format!("{from}@"), Hole::ImageOf(p.clone()), ""),
        (None, None) => Arg::holed(format!("{from}@"), Hole::PushedIndex, ""),
    };
    let insecure = [reach.insecure(from), reach.insecure(&tag.repository)];
    Step::Copy {
        argv: copy_command(source, tag, insecure, registries_conf, &file),
        index: index.map(String::from),
        verify: inspect_command(tag.to_string(), insecure[1], registries_conf),
        restore: restore_command(image, tag, reach, registries_conf),
        tag: tag.clone(),
        platform: platform.cloned(),
        digestfile: file,
    }
}

fn restore_command(
    image: &str,
    tag: &ImageRef,
    reach: Reach,
    registries_conf: Option<&OsStr>,
) -> Command {
    let held = Arg::holed(format!("{}@", tag.repository), Hole::Held, "");
    let file = digestfile(image, reach, tag);
    let insecure = reach.insecure(&tag.repository);
    copy_command(held, tag, [insecure; 2], registries_conf, &file)
}

/// What a list's publication needs to know of it.
pub struct ToPublish<'a> {
    /// The podman program and its global options.
    pub podman: &'a [String],
    /// The instance name.
    pub image: &'a str,
    /// The local manifest list.
    pub list: &'a str,
    pub tags: &'a [ImageRef],
    pub platform_tags: &'a [PlatformTag],
    pub reach: Reach<'a>,
    pub registries_conf: Option<&'a OsStr>,
}

/// The publication of a list: what each tag holds is recorded, the index is pushed once (to
/// `marker`, else to the first tag) and read back, then every other tag is pointed at it by a
/// copy in the registry (from the repository it was pushed to, to each tag's, which may be in
/// another registry). No tag gets an index of its own push, so all hold the same bytes.
pub fn publication(list: &ToPublish, marker: Option<ImageRef>) -> Vec<Step> {
    let Some(first) = list.tags.first() else {
        return Vec::new();
    };
    let conf = list.registries_conf;
    let reach = list.reach;
    let own = list.platform_tags.iter().map(|p| &p.tag);
    let mut steps: Vec<Step> = list
        .tags
        .iter()
        .chain(own)
        .map(|tag| Step::Record {
            tag: tag.clone(),
            argv: inspect_command(tag.to_string(), reach.insecure(&tag.repository), conf),
        })
        .collect();
    let to = marker.clone().unwrap_or_else(|| first.clone());
    let file = match &marker {
        Some(_) => format!("{STATE_DIR}/digest/{}@marker", list.image),
        None => digestfile(list.image, reach, &to),
    };
    let insecure = reach.insecure(&to.repository);
    let mut argv = Command::new(
        CommandKind::ManifestPush,
        list.podman,
        ["manifest", "push", "--all", "--digestfile", &file],
    );
    if insecure {
        argv.arg("--tls-verify=false");
    }
    argv.arg(list.list).registry(to.to_string());
    steps.push(Step::Push {
        verify: inspect_command(to.to_string(), insecure, conf),
        restore: marker
            .is_none()
            .then(|| restore_command(list.image, &to, reach, conf)),
        marker: marker.is_some(),
        digestfile: file,
        argv,
        to: to.clone(),
    });
    let copied = if marker.is_some() {
        list.tags
    } else {
        &list.tags[1..]
    };
    let from = (&to.repository, None);
    steps.extend(
        copied
            .iter()
            .map(|tag| copy_step(list.image, from, (tag, None), reach, conf)),
    );
    // Each platform's tags get its image, read from the index pushed.
    steps.extend(
        list.platform_tags
            .iter()
            .map(|p| copy_step(list.image, from, (&p.tag, Some(&p.platform)), reach, conf)),
    );
    steps
}
