//! Secret values kept out of logs: a command's output is masked on its way from the pipe to
//! the log, so an unmasked value never touches the disk.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Mutex;

/// Replaces secret values in a stream of output with `***`, also when a value is split across
/// two reads: it holds back an end of the output that could be the start of a secret, until
/// more comes or the stream ends; everything else is written at once.
pub struct Masker<W: Write> {
    secrets: Vec<Vec<u8>>,
    pending: Vec<u8>,
    out: W,
}

impl<W: Write> Masker<W> {
    /// `secrets` longest first, so a value containing another is masked whole.
    pub fn new(secrets: &[String], out: W) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self {
            secrets,
            pending: Vec::new(),
            out,
        }
    }

    /// The longest end of `pending` that is the start of a secret (and not a whole one).
    fn partial(&self) -> usize {
        let p = &self.pending;
        self.secrets
            .iter()
            .filter_map(|s| {
                (1..s.len().min(p.len() + 1))
                    .rev()
                    .find(|&k| p[p.len() - k..] == s[..k])
            })
            .max()
            .unwrap_or(0)
    }

    fn mask(&mut self) {
        for secret in &self.secrets {
            let mut at = 0;
            while let Some(i) = find(&self.pending[at..], secret) {
                let start = at + i;
                self.pending
                    .splice(start..start + secret.len(), b"***".iter().copied());
                at = start + 3;
            }
        }
    }

    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.pending.extend_from_slice(chunk);
        self.mask();
        let ready = self.pending.len() - self.partial();
        if ready > 0 {
            self.out.write_all(&self.pending[..ready])?;
            self.pending.drain(..ready);
        }
        Ok(())
    }

    /// Writes what was held back; the stream has ended.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.mask();
        self.out.write_all(&self.pending)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Copies `from` into `file` through a [`Masker`].
pub(super) fn copy_masked(
    mut from: Box<dyn Read + Send>,
    file: &Mutex<File>,
    secrets: &[String],
) -> std::io::Result<()> {
    let mut masker = Masker::new(secrets, Vec::new());
    let mut buf = [0u8; 8192];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        masker.write(&buf[..n])?;
        let ready = std::mem::take(&mut masker.out);
        if !ready.is_empty() {
            file.lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_all(&ready)?;
        }
    }
    let rest = masker.finish()?;
    file.lock()
        .unwrap_or_else(|e| e.into_inner())
        .write_all(&rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(secrets: &[&str], chunks: &[&str]) -> String {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let mut m = Masker::new(&secrets, Vec::new());
        let mut out = Vec::new();
        for c in chunks {
            m.write(c.as_bytes()).unwrap();
            out.append(&mut m.out);
        }
        out.extend(m.finish().unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn secrets_are_masked_also_across_reads() {
        assert_eq!(masked(&["hunter22"], &["pw=hunter22\n"]), "pw=***\n");
        assert_eq!(
            masked(&["hunter22"], &["pw=hun", "ter", "22\n"]),
            "pw=***\n"
        );
        assert_eq!(
            masked(&["abcd", "abcdefgh"], &["x abcdefgh y abcd"]),
            "x *** y ***"
        );
        assert_eq!(masked(&[], &["plain"]), "plain");
        assert_eq!(masked(&["hunter22"], &["hunter2"]), "hunter2");
        // Output that cannot start a secret is not held back.
        let secrets = vec!["hunter22".to_string()];
        let mut m = Masker::new(&secrets, Vec::new());
        m.write(b"line one\npw=hunt").unwrap();
        assert_eq!(m.out, b"line one\npw=");
    }
}
