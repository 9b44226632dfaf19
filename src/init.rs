//! `mab init`: a starter `multiarch.toml` next to a Dockerfile, valid as written.

use std::path::{Path, PathBuf};

use crate::config::{self, FILE_NAME};
use crate::error::{ConfigError, Error, ErrorKind};
use crate::git::GitInfo;
use crate::platform::Platform;

/// What `init` wrote.
#[derive(Debug)]
pub struct Written {
    pub config: PathBuf,
    /// The schema file the `#:schema` line names, when it was not there yet.
    pub schema: Option<PathBuf>,
}

/// A repository-name component from a directory name: `My_App 2` → `my_app-2`.
fn image_name(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            c
        } else {
            '-'
        };
        // No separator may start, end or repeat: the grammar wants [a-z0-9]+ between them.
        if c.is_ascii_alphanumeric()
            || name
                .chars()
                .last()
                .is_some_and(|l| l.is_ascii_alphanumeric())
        {
            name.push(c);
        }
    }
    let name = name.trim_end_matches(['-', '_', '.']).to_string();
    if name.is_empty() { "app".into() } else { name }
}

/// `text` as a TOML string, quoted and escaped by the toml crate.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// `name` as a TOML key: bare where TOML allows it, else quoted (`"my.app"`, which bare would
/// be the table `my` holding `app`).
fn toml_key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_string()
    } else {
        toml_string(name)
    }
}

/// `ghcr.io/<owner>` for a GitHub remote; a placeholder to edit otherwise.
fn registry_for(remote: Option<&str>) -> (String, bool) {
    let owner = remote.and_then(|r| {
        let rest = r
            .strip_prefix("https://github.com/")
            .or_else(|| r.strip_prefix("git@github.com:"))?;
        Some(rest.split('/').next()?.to_ascii_lowercase())
    });
    match owner {
        Some(o) if !o.is_empty() => (format!("ghcr.io/{o}"), false),
        _ => ("registry.example.com/your-team".into(), true),
    }
}

/// Writes `multiarch.toml` in `dir` for the Dockerfile `dockerfile` (relative to `dir`).
/// Refuses to overwrite an existing config (a usage error, like a missing Dockerfile); a file
/// that cannot be written is mab's failure, not the user's config's.
pub fn init(dir: &Path, dockerfile: &Path) -> Result<Written, Error> {
    let config_path = dir.join(FILE_NAME);
    if config_path.exists() {
        return Err(ConfigError::new(
            ErrorKind::Io,
            format!(
                "{} already exists; mab init does not overwrite it",
                config::display_path(&config_path)
            ),
        )
        .with_help("edit it, or remove it first")
        .into());
    }
    if !dir.join(dockerfile).is_file() {
        return Err(ConfigError::new(
            ErrorKind::Path,
            format!(
                "no Dockerfile at {}",
                config::display_path(&dir.join(dockerfile))
            ),
        )
        .with_help("run mab init where your Dockerfile is, or name it: mab init path/to/Dockerfile")
        .into());
    }
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let root = config::monorepo_root(&dir);
    let git = GitInfo::read(&dir);
    let (registry, placeholder) = registry_for(git.as_ref().and_then(|g| g.remote.as_deref()));
    let mut platforms = vec![Platform::host().to_string()];
    for p in ["linux/amd64", "linux/arm64"] {
        if !platforms.iter().any(|x| x == p) {
            platforms.push(p.to_string());
        }
    }
    let platforms: Vec<String> = platforms.iter().map(|p| toml_string(p)).collect();
    let tags = if git.is_some() {
        r#"["{{ git.short_sha }}", "latest"]"#
    } else {
        r#"["latest"]"#
    };
    let dockerfile_line = if dockerfile == Path::new("Dockerfile") {
        String::new()
    } else {
        format!(
            "dockerfile = {}\n",
            toml_string(&dockerfile.display().to_string())
        )
    };
    let registry_note = if placeholder {
        "  # TODO: where to push"
    } else {
        ""
    };
    // In a monorepo, the root's schema serves every file and its defaults apply: the new
    // file names just its image.
    let schema_dir = root.as_deref().unwrap_or(&dir);
    let schema_path = schema_dir.join("multiarch.schema.json");
    let schema_ref = pathdiff::diff_paths(&schema_path, &dir).unwrap_or(schema_path.clone());
    let schema_ref = if schema_ref.starts_with("..") {
        schema_ref.display().to_string()
    } else {
        format!("./{}", schema_ref.display())
    };
    let defaults = match &root {
        Some(root) => format!(
            "# Part of the monorepo whose root is {}: its defaults and vars apply here.\n\n",
            pathdiff::diff_paths(root.join(FILE_NAME), &dir)
                .unwrap_or_default()
                .display()
        ),
        None => format!(
            "[defaults]\n\
             registry  = {}{registry_note}\n\
             platforms = [{}]\n\
             tags      = {tags}\n\n",
            toml_string(&registry),
            platforms.join(", ")
        ),
    };
    let text = format!(
        "#:schema {schema_ref}\n\
         # mab: `mab plan` shows what would be built and pushed, `mab run` does it.\n\
         # Reference: the README of mab, or `mab schema`.\n\n\
         {defaults}\
         [images.{key}]\n\
         {dockerfile_line}\n\
         # A platform may build from a Dockerfile or context of its own, and paths may be\n\
         # templates (home-assistant: context = \"python/{{{{ matrix.python }}}}\"):\n\
         # [images.{key}.platform.\"linux/arm64\"]\n\
         # dockerfile = \"Dockerfile.aarch64\"\n",
        key = toml_key(&image_name(&dir))
    );
    let io = |path: &Path, e: std::io::Error| {
        Error::Other(anyhow::Error::new(e).context(format!("cannot write {}", path.display())))
    };
    std::fs::write(&config_path, text).map_err(|e| io(&config_path, e))?;
    let schema = if schema_path.exists() {
        None
    } else {
        let json =
            serde_json::to_string_pretty(&config::schema()).expect("a schema serialises") + "\n";
        std::fs::write(&schema_path, json).map_err(|e| io(&schema_path, e))?;
        Some(schema_path)
    };
    Ok(Written {
        config: config_path,
        schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_registries() {
        assert_eq!(image_name(Path::new("/x/My_App 2")), "my_app-2");
        assert_eq!(image_name(Path::new("/x/--web--")), "web");
        assert_eq!(image_name(Path::new("/")), "app");
        assert_eq!(
            registry_for(Some("https://github.com/Acme/web.git")),
            ("ghcr.io/acme".into(), false)
        );
        assert_eq!(
            registry_for(Some("git@github.com:acme/web.git")),
            ("ghcr.io/acme".into(), false)
        );
        assert!(registry_for(None).1);
        assert_eq!(toml_key("my.app"), "\"my.app\"");
        assert_eq!(toml_key("my_app-2"), "my_app-2");
    }
}
