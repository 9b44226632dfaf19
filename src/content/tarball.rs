//! Reading a layer as a registry holds it: a tar stream, gzip- or zstd-compressed or not, whose
//! entries are fed to a [`Visitor`] (the content check's [`super::Checker`], the builtin SBOM's
//! collector) without unpacking anything.
//!
//! A layer is the build's output, so its bytes are untrusted: nothing is written to disk, a
//! path is normalised lexically and one that climbs out of the image's root fails the walk,
//! a file is read only as far as the visitor reads it, and the metadata entries the reader must
//! keep (GNU long names, PAX records) are capped at [`MAX_META`]. The tar crate's own handling of
//! those reads them whole into memory, so entries are iterated raw and they are read here.

use std::io::{self, BufRead, BufReader, Read};

use super::check::Entry;

/// What a walk of layers reports, entry by entry, top layer first.
pub trait Visitor {
    /// A regular file, its content read as far as the visitor needs (the rest is skipped).
    fn file(&mut self, path: &str, content: &mut dyn Read) -> io::Result<()>;
    /// A hard link to `target`: an earlier entry of the same layer, if the layer holds it
    /// (`None`: a target that is no path in the image).
    fn hard_link(&mut self, path: &str, target: Option<&str>);
    /// Any other entry: a directory, a whiteout, an opaque directory, a link or a device.
    fn entry(&mut self, path: &str, entry: Entry<'_>);
    /// The layer is complete; what follows is the layer below.
    fn next_layer(&mut self);
}

/// The most a GNU long name or a PAX record set may hold. Linux's PATH_MAX is 4 KiB and a
/// file's xattrs (which PAX records carry) are at most 64 KiB on the common file systems.
pub const MAX_META: u64 = 1 << 20;

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The tar stream of `layer`, decompressed as its first bytes say (media types are not
/// trusted to tell: skopeo may rewrite them when it converts a manifest).
pub fn decompress<'a>(layer: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut layer = BufReader::new(layer);
    let head = layer.fill_buf()?;
    Ok(if head.starts_with(GZIP) {
        Box::new(flate2::bufread::MultiGzDecoder::new(layer))
    } else if head.starts_with(ZSTD) {
        Box::new(Zstd::new(layer))
    } else {
        Box::new(layer)
    })
}

/// Feeds the entries of one layer's tar stream (decompressed) to `visitor`, then ends the
/// layer there.
pub fn walk(tar: impl Read, visitor: &mut dyn Visitor) -> io::Result<()> {
    let mut archive = tar::Archive::new(tar);
    let mut meta = Meta::default();
    for entry in archive.entries()?.raw(true) {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_longname() {
            meta.name = Some(trim_nul(read_meta(&mut entry)?));
            continue;
        }
        if kind.is_gnu_longlink() {
            meta.link = Some(trim_nul(read_meta(&mut entry)?));
            continue;
        }
        if kind.is_pax_local_extensions() {
            meta.pax = Some(read_meta(&mut entry)?);
            continue;
        }
        if kind.is_pax_global_extensions() {
            read_meta(&mut entry)?;
            continue;
        }
        let taken = std::mem::take(&mut meta);
        let named = taken.resolve(&entry)?;
        let Some(path) = normalize(&named.path)? else {
            continue;
        };
        let (parent, name) = split(&path);
        if name == ".wh..wh..opq" {
            visitor.entry(parent, Entry::Opaque);
            continue;
        }
        if let Some(deleted) = name.strip_prefix(".wh.") {
            // `.wh..wh.*` other than the opaque marker is aufs bookkeeping, not a path.
            if !deleted.starts_with(".wh.") {
                visitor.entry(&join(parent, deleted), Entry::Whiteout);
            }
            continue;
        }
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous | T::GNUSparse => visitor.file(&path, &mut entry)?,
            T::Link => {
                let target = named.link.as_deref().map(normalize).transpose()?.flatten();
                visitor.hard_link(&path, target.as_deref());
            }
            T::Directory => visitor.entry(&path, Entry::Dir),
            _ => visitor.entry(&path, Entry::Other),
        }
    }
    visitor.next_layer();
    Ok(())
}

/// What the metadata entries before an entry said about it.
#[derive(Default)]
struct Meta {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

/// An entry's path and link target, metadata entries applied.
struct Named {
    path: Vec<u8>,
    link: Option<Vec<u8>>,
}

impl Meta {
    fn resolve<R: Read>(self, entry: &tar::Entry<'_, R>) -> io::Result<Named> {
        let mut path = self.name;
        let mut link = self.link;
        if let Some(pax) = &self.pax {
            for record in tar::PaxExtensions::new(pax) {
                let record = record?;
                match record.key() {
                    Ok("path") => path = Some(record.value_bytes().to_vec()),
                    Ok("linkpath") => link = Some(record.value_bytes().to_vec()),
                    // Entries are iterated raw, so the tar crate skips data by the header's
                    // size: a PAX size that differs (a file over 8 GiB) would misread the
                    // stream from there.
                    Ok("size") => {
                        let pax_size = std::str::from_utf8(record.value_bytes())
                            .ok()
                            .and_then(|s| s.trim().parse::<u64>().ok());
                        if pax_size != Some(entry.header().size()?) {
                            return Err(io::Error::other(
                                "a PAX size other than the tar header's (a file over 8 GiB) is not read",
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Named {
            path: path.unwrap_or_else(|| entry.header().path_bytes().into_owned()),
            link: link.or_else(|| entry.header().link_name_bytes().map(|l| l.into_owned())),
        })
    }
}

fn read_meta(entry: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry.take(MAX_META + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_META {
        return Err(io::Error::other(format!(
            "a tar metadata entry (long name or PAX records) is over {MAX_META} bytes"
        )));
    }
    Ok(bytes)
}

fn trim_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// `raw` as an absolute path in the image (`./usr/bin/x` → `/usr/bin/x`); `None` for the root
/// itself; an error for a path that climbs out of it.
fn normalize(raw: &[u8]) -> io::Result<Option<String>> {
    let text = String::from_utf8_lossy(raw);
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(io::Error::other(format!(
                        "the layer names a path outside the image: {text}"
                    )));
                }
            }
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| format!("/{}", parts.join("/"))))
}

/// `/a/b` → (`/a`, `b`); `/b` → (`/`, `b`).
fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => ("/", path),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A zstd stream of any number of frames (ruzstd's decoder reads one), skippable frames
/// (zstd:chunked's metadata) skipped. ruzstd's default window limit bounds its memory.
struct Zstd<R: BufRead> {
    source: R,
    decoder: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> Zstd<R> {
    fn new(source: R) -> Self {
        Self {
            source,
            decoder: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::BlockDecodingStrategy;
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_frame {
                while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                    self.decoder
                        .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                        .map_err(io::Error::other)?;
                }
                let n = self.decoder.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.in_frame = false;
            }
            if self.source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.decoder.init(&mut self.source) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                }
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::content::{Checker, Machine};
    use crate::platform::Platform;

    fn foreign() -> Machine {
        let p: Platform = if cfg!(target_arch = "aarch64") {
            "linux/amd64".parse().unwrap()
        } else {
            "linux/arm64".parse().unwrap()
        };
        Machine::of(&p).unwrap()
    }

    fn host_elf() -> Vec<u8> {
        std::fs::read("/proc/self/exe").unwrap()[..4096].to_vec()
    }

    /// A tar of `entries`: (path, type, data or link target). The layer tests of the SBOM
    /// make theirs with it too.
    pub(crate) fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    h.set_size(0);
                    b.append_link(&mut h, path, std::str::from_utf8(data).unwrap())
                        .unwrap();
                }
                _ => {
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, *data).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn check(layers: &[Vec<u8>]) -> io::Result<crate::content::Counts> {
        let allow = globset::GlobSet::empty();
        let mut checker = Checker::new(foreign(), &allow);
        for layer in layers {
            walk(decompress(layer.as_slice())?, &mut checker)?;
        }
        Ok(checker.finish())
    }

    fn paths(counts: &crate::content::Counts) -> Vec<&str> {
        counts.mismatches.iter().map(|m| m.path.as_str()).collect()
    }

    use tar::EntryType as T;

    #[test]
    fn whiteouts_and_opaque_dirs_of_a_higher_layer_hide_lower_files() {
        let elf = host_elf();
        let top = tar_of(&[
            ("bin/", T::Directory, b""),
            ("bin/.wh.gone", T::Regular, b""),
            ("opt/", T::Directory, b""),
            ("opt/.wh..wh..opq", T::Regular, b""),
            ("opt/new", T::Regular, &elf),
        ]);
        let low = tar_of(&[
            ("bin/gone", T::Regular, &elf),
            ("bin/kept", T::Regular, &elf),
            ("opt/old", T::Regular, &elf),
        ]);
        let counts = check(&[top, low]).unwrap();
        assert_eq!(paths(&counts), ["/bin/kept", "/opt/new"]);
        assert_eq!((counts.files, counts.elf), (2, 2));
    }

    #[test]
    fn gzip_and_zstd_layers_read_as_plain_ones() {
        use std::io::Write;
        let elf = host_elf();
        let plain = tar_of(&[("./usr/bin/tool", T::Regular, &elf)]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        // Two zstd frames with a skippable frame between them, as zstd:chunked writes.
        let (a, b) = plain.split_at(700);
        let mut zst =
            ruzstd::encoding::compress_to_vec(a, ruzstd::encoding::CompressionLevel::Fastest);
        zst.extend(0x184D2A50u32.to_le_bytes());
        zst.extend(3u32.to_le_bytes());
        zst.extend(b"xyz");
        zst.extend(ruzstd::encoding::compress_to_vec(
            b,
            ruzstd::encoding::CompressionLevel::Fastest,
        ));
        for layer in [plain.clone(), gz, zst] {
            let counts = check(&[layer]).unwrap();
            assert_eq!(paths(&counts), ["/usr/bin/tool"]);
        }
    }

    #[test]
    fn hard_links_are_their_targets_files_and_symlinks_are_not_followed() {
        let elf = host_elf();
        let layer = tar_of(&[
            ("bin/real", T::Regular, &elf),
            ("bin/hard", T::Link, b"bin/real"),
            ("bin/soft", T::Symlink, b"/bin/real"),
            ("bin/to-lower", T::Link, b"lib/elsewhere"),
        ]);
        let counts = check(&[layer]).unwrap();
        assert_eq!(paths(&counts), ["/bin/hard", "/bin/real"]);
        assert_eq!((counts.files, counts.elf), (3, 2));
    }

    #[test]
    fn long_names_come_from_gnu_and_pax_entries() {
        let elf = host_elf();
        let deep = format!("{}/tool", "d".repeat(150));
        let gnu = tar_of(&[(&deep, T::Regular, &elf)]);
        let counts = check(&[gnu]).unwrap();
        assert_eq!(paths(&counts), [format!("/{deep}").as_str()]);

        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("path", b"pax/named/tool".as_slice())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(elf.len() as u64);
        h.set_mode(0o755);
        b.append_data(&mut h, "short", elf.as_slice()).unwrap();
        let counts = check(&[b.into_inner().unwrap()]).unwrap();
        assert_eq!(paths(&counts), ["/pax/named/tool"]);
    }

    #[test]
    fn a_path_out_of_the_root_fails_and_dot_dots_inside_it_are_resolved() {
        let elf = host_elf();
        // The tar crate refuses to write `..`: the name is set in the header's bytes.
        let named = |name: &[u8], data: &[u8]| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, data).unwrap();
            b.into_inner().unwrap()
        };
        let inside = named(b"usr/../bin/./x", &elf);
        assert_eq!(paths(&check(&[inside]).unwrap()), ["/bin/x"]);
        let err = check(&[named(b"../../etc/x", b"x")]).unwrap_err();
        assert!(err.to_string().contains("outside the image"), "{err}");
    }

    #[test]
    fn hostile_tars_fail_without_reading_them_whole() {
        // Truncated in the middle of a file's data.
        let elf = host_elf();
        let layer = tar_of(&[("a", T::Regular, &elf)]);
        assert!(check(&[layer[..1024].to_vec()]).is_err());
        // A header whose checksum is wrong.
        let mut bad = tar_of(&[("a", T::Regular, b"x")]);
        bad[0] ^= 0xff;
        assert!(check(&[bad]).is_err());
        // A long-name entry that claims (and streams) more than the cap: refused, not kept.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(T::GNULongName);
        let big = vec![b'a'; (MAX_META + 10) as usize];
        h.set_size(big.len() as u64);
        h.set_path("././@LongLink").unwrap();
        h.set_cksum();
        b.append(&h, big.as_slice()).unwrap();
        let err = check(&[b.into_inner().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("over"), "{err}");
        // Not a tar at all.
        assert!(check(&[vec![0x42; 3000]]).is_err());
    }

    #[test]
    fn a_big_file_is_read_only_as_far_as_its_header() {
        // 8 MiB of data behind an ELF header: the walk reads 20 bytes of it and skips the rest.
        let mut data = host_elf();
        data.resize(8 << 20, 0);
        let layer = tar_of(&[("big", T::Regular, &data)]);
        drop(data);
        let counts = check(&[layer]).unwrap();
        assert_eq!(paths(&counts), ["/big"]);
    }
}
