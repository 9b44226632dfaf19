//! Reading a pushed index back: its digest and its platforms must be the plan's.

use oci_spec::image::Descriptor;

use crate::platform::Platform;

/// The entries of an index, each with its platform.
pub(super) fn entries(raw: &[u8]) -> Result<Vec<(Platform, Descriptor)>, String> {
    let index = oci_spec::image::ImageIndex::from_reader(raw)
        .map_err(|e| format!("the registry did not return an image index: {e}"))?;
    let mut listed = Vec::with_capacity(index.manifests().len());
    for m in index.manifests() {
        let Some(p) = m.platform() else {
            return Err(format!("the index lists {} without a platform", m.digest()));
        };
        let written = match p.variant().as_deref() {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os(), p.architecture()),
            _ => format!("{}/{}", p.os(), p.architecture()),
        };
        let platform: Platform = written
            .parse()
            .map_err(|e| format!("the index lists platform `{written}`: {e}"))?;
        listed.push((platform, m.clone()));
    }
    Ok(listed)
}

/// Checks an index read back from the registry: its digest is the one pushed, and it lists
/// exactly the planned platforms, compared as platforms (`arm64` with variant `v8` is `arm64`).
pub fn verify_index(raw: &[u8], pushed_digest: &str, planned: &[Platform]) -> Result<(), String> {
    let digest = crate::inputs::digest_of(raw);
    if digest != pushed_digest {
        return Err(format!(
            "the registry serves {digest}, but {pushed_digest} was pushed"
        ));
    }
    let mut listed: Vec<Platform> = entries(raw)?.into_iter().map(|(p, _)| p).collect();
    let mut wanted = planned.to_vec();
    listed.sort();
    wanted.sort();
    if listed != wanted {
        return Err(format!(
            "the pushed index lists [{}], the plan has [{}]",
            crate::error::join(&listed),
            crate::error::join(&wanted)
        ));
    }
    Ok(())
}

/// Checks that the index lists, for each `(platform, digest)` of `expected`, that image: the
/// one its build node pushed.
pub(super) fn verify_entries(raw: &[u8], expected: &[(Platform, String)]) -> Result<(), String> {
    let listed = entries(raw)?;
    for (platform, digest) in expected {
        match listed.iter().find(|(p, _)| p == platform) {
            Some((_, d)) if d.digest().to_string() == *digest => {}
            Some((_, d)) => {
                return Err(format!(
                    "its {platform} image is {}, but the run put {digest} there",
                    d.digest()
                ));
            }
            None => return Err(format!("it lists no {platform} image")),
        }
    }
    Ok(())
}
