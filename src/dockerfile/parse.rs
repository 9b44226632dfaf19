//! A Dockerfile split into instructions by the rules of BuildKit's parser
//! (`frontend/dockerfile/parser/parser.go`): a byte-order mark, parser directives before
//! anything else (`# escape=` picks the escape character), comment and empty lines, line
//! continuations with the escape character (comments and empty lines inside them are skipped),
//! and heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several in one `RUN`, `COPY`, `ADD` or
//! `ONBUILD` one), whose bodies are not instructions. Only what a plan needs is kept of each
//! instruction: its keyword, leading `--flags` and the rest.
//!
//! parse-dockerfile was tried first: it refuses `RUN python3 <<EOF` and two heredocs in one
//! `RUN` ("unknown instruction"), both of which BuildKit accepts (DEVELOPERS.md).

use std::ops::Range;

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Uppercased.
    pub keyword: String,
    /// `--name=value` words before the arguments (`--name` alone has no value).
    pub flags: Vec<Flag>,
    /// The arguments after the flags.
    pub rest: String,
    /// From the keyword to the end of its last line, heredoc bodies left out.
    pub span: Range<usize>,
    /// Where the next line after it starts (after its heredoc bodies too), or the file's end.
    pub next_line: usize,
    /// For `ONBUILD X`: X, which runs in the builds of images based on this one.
    pub onbuild: bool,
    /// It has a heredoc.
    pub heredoc: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub escape: char,
    pub instructions: Vec<Instruction>,
    /// A `# check=` parser directive, where it is.
    pub check: Option<Range<usize>>,
}

/// Why a file does not parse, where, and how to fix it when the message alone does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    pub span: Range<usize>,
    pub help: Option<String>,
}

impl Error {
    pub fn at(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A parser directive line: `# name=value`, with a name BuildKit knows.
fn directive(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let (name, value) = rest.split_once('=')?;
    let name = name.trim_end();
    let known = ["syntax", "escape", "check"];
    let name = name.to_ascii_lowercase();
    (known.contains(&name.as_str()) && !value.trim().is_empty()).then(|| (name, value.trim()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The line without a trailing escape character (and the blanks after it), and whether it
/// continues.
fn continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(body) => (body, true),
        None => (line, false),
    }
}

/// Words split at blanks outside quotes, quotes and escapes kept; a `<<` followed by blanks
/// keeps them, as BuildKit's lexer does, so `<< EOF` is one heredoc word.
fn raw_words(text: &str, escape: char) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut start = None;
    let mut quote = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            let heredoc_start = word.ends_with("<<") && !word.ends_with("<<<");
            if !heredoc_start {
                if let Some(s) = start.take() {
                    out.push((std::mem::take(&mut word), s..i));
                }
                continue;
            }
        }
        start.get_or_insert(i);
        word.push(c);
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, c) if c == escape && q != Some('\'') => {
                if let Some((_, n)) = chars.next() {
                    word.push(n);
                }
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((word, s..text.len()));
    }
    out
}

/// A heredoc word (`<<EOF`, `<<-'EOF'`, `3<<EOF`): its delimiter and whether tabs are chomped.
fn heredoc(word: &str) -> Option<(String, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start();
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name: String = rest.chars().filter(|c| *c != '"' && *c != '\'').collect();
    (!name.is_empty() && !name.contains(char::is_whitespace)).then_some((name, chomp))
}

/// Leading `--flag[=value]` words of an instruction's arguments, and the rest.
fn flags(args: &str, escape: char, at: usize, source: &str) -> (Vec<Flag>, String) {
    let mut out = Vec::new();
    let mut rest_start = args.len();
    for (word, range) in raw_words(args, escape) {
        let Some(flag) = word.strip_prefix("--") else {
            rest_start = range.start;
            break;
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.to_string(), None),
        };
        // The flag as written in the file, for errors; continuations may have moved it.
        let span = source[at..]
            .find(word.as_str())
            .map_or(at..at, |o| at + o..at + o + word.len());
        out.push(Flag { name, value, span });
    }
    (out, args[rest_start.min(args.len())..].trim().to_string())
}

pub fn parse(text: &str) -> Result<Parsed, Error> {
    let text_start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut offset = text_start;
    for line in text[text_start..].split_inclusive('\n') {
        lines.push((offset, line.trim_end_matches(['\n', '\r'])));
        offset += line.len();
    }
    let mut parsed = Parsed {
        escape: '\\',
        instructions: Vec::new(),
        check: None,
    };
    let mut directives = true;
    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        i += 1;
        if directives {
            if let Some((name, value)) = directive(line) {
                if name == "check" {
                    parsed.check = Some(start..start + line.len());
                }
                if name == "escape" {
                    parsed.escape = match value {
                        "\\" => '\\',
                        "`" => '`',
                        other => {
                            return Err(Error::at(
                                start..start + line.len(),
                                format!("invalid escape token '{other}': it must be ` or \\"),
                            ));
                        }
                    };
                }
                continue;
            }
            directives = false;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let begin = start + (line.len() - trimmed.len());
        let (body, mut continues) = continuation(trimmed, parsed.escape);
        let mut joined = body.to_string();
        let mut end = start + line.len();
        while continues && i < lines.len() {
            let (s, l) = lines[i];
            i += 1;
            if is_comment(l) || l.trim().is_empty() {
                continue;
            }
            let (body, more) = continuation(l, parsed.escape);
            joined.push_str(body);
            continues = more;
            end = s + l.len();
        }
        let joined = joined.trim();
        let (keyword, args) = joined
            .split_once(char::is_whitespace)
            .unwrap_or((joined, ""));
        let mut keyword = keyword.to_ascii_uppercase();
        let mut args = args.trim_start();
        let onbuild = keyword == "ONBUILD";
        if onbuild {
            let (k, a) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            keyword = k.to_ascii_uppercase();
            args = a.trim_start();
        }
        let mut has_heredoc = false;
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") && args.contains("<<") {
            for (word, _) in raw_words(args, parsed.escape) {
                let Some((delimiter, chomp)) = heredoc(&word) else {
                    continue;
                };
                has_heredoc = true;
                let terminated = lines[i..].iter().position(|(_, l)| {
                    let l = if chomp { l.trim_start_matches('\t') } else { l };
                    *l == delimiter
                });
                match terminated {
                    Some(n) => i += n + 1,
                    None => {
                        return Err(Error::at(
                            begin..begin,
                            format!("heredoc `{delimiter}` is never terminated"),
                        ));
                    }
                }
            }
        }
        let (flags, rest) = flags(args, parsed.escape, begin, &text[..end]);
        parsed.instructions.push(Instruction {
            keyword,
            flags,
            rest,
            span: begin..end,
            next_line: lines.get(i).map_or(text.len(), |(o, _)| *o),
            onbuild,
            heredoc: has_heredoc,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .instructions
            .into_iter()
            .map(|i| i.keyword)
            .collect()
    }

    #[test]
    fn heredoc_shapes() {
        let shapes = [
            ("FROM a\nRUN <<A <<B\nFROM x\nA\nFROM y\nB\nCMD z\n", "RUN"),
            (
                "FROM a\nRUN <<A cat > /a && <<B cat > /b\nFROM x\nA\nFROM y\nB\nCMD z\n",
                "RUN",
            ),
            ("FROM a\nRUN python3 <<EOF\nFROM x\nEOF\nCMD z\n", "RUN"),
            ("FROM a\nRUN <<-'EOT' bash\n\tFROM x\n\tEOT\nCMD z\n", "RUN"),
            (
                "FROM a\nCOPY <<EOF1 <<\"EOF2\" /dir/\nFROM x\nEOF1\nFROM y\nEOF2\nCMD z\n",
                "COPY",
            ),
            (
                "FROM a\nRUN 3<<EOF cat /dev/fd/3\nFROM x\nEOF\nCMD z\n",
                "RUN",
            ),
            ("FROM a\nRUN << EOF\nFROM x\nEOF\nCMD z\n", "RUN"),
            ("FROM a\nONBUILD RUN <<EOF\nFROM x\nEOF\nCMD z\n", "RUN"),
        ];
        for (text, second) in shapes {
            assert_eq!(keywords(text), ["FROM", second, "CMD"], "{text}");
            assert!(parse(text).unwrap().instructions[1].heredoc, "{text}");
        }
        // A here-string and a shell heredoc inside quotes are not heredocs of the Dockerfile.
        assert_eq!(
            keywords("FROM a\nRUN cat <<<word\nCMD z\n"),
            ["FROM", "RUN", "CMD"]
        );
        let err = parse("FROM a\nRUN <<EOF\nnever closed\n").unwrap_err();
        assert_eq!(err.span, 7..7);
    }

    #[test]
    fn directives_continuations_comments() {
        let text = "\u{feff}# syntax=docker/dockerfile:1\n# escape=`\nFROM `\n  # inside\n\n  busybox AS b\nRUN dir C:\\\n";
        let p = parse(text).unwrap();
        assert_eq!(p.escape, '`');
        assert_eq!(p.instructions[0].rest, "busybox AS b");
        assert_eq!(
            &text[p.instructions[0].span.clone()],
            "FROM `\n  # inside\n\n  busybox AS b"
        );
        assert_eq!(p.instructions[1].rest, "dir C:\\");
        // A directive after an instruction or a comment is a comment.
        let p = parse("# hello\n# escape=`\nFROM a \\\n  b\n").unwrap();
        assert_eq!((p.escape, p.instructions[0].rest.as_str()), ('\\', "a   b"));
        assert!(parse("# escape=x\nFROM a\n").is_err());
    }

    #[test]
    fn flags_and_their_spans() {
        let text = "FROM a\nrun --mount=type=bind,from=x,source=\"/a b\" --network=none make\n";
        let p = parse(text).unwrap();
        let run = &p.instructions[1];
        assert_eq!(run.keyword, "RUN");
        assert_eq!(run.rest, "make");
        assert_eq!(run.flags.len(), 2);
        assert_eq!(
            run.flags[0].value.as_deref(),
            Some("type=bind,from=x,source=\"/a b\"")
        );
        assert_eq!(
            &text[run.flags[0].span.clone()],
            "--mount=type=bind,from=x,source=\"/a b\""
        );
        let onbuild = parse("FROM a\nONBUILD COPY --from=b / /\n").unwrap();
        assert!(onbuild.instructions[1].onbuild);
        assert_eq!(onbuild.instructions[1].keyword, "COPY");
    }
}
