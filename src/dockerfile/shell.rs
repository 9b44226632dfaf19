//! Variable expansion in Dockerfile words, as BuildKit's shell lexer does it
//! (`frontend/dockerfile/shell/lex.go`, `ProcessWord`): quotes removed, the escape character
//! honoured, and `$A`, `${A}`, `${A:-w}`, `${A-w}`, `${A:+w}`, `${A+w}`, `${A:?w}`, `${A?w}`,
//! `${A#p}`, `${A##p}`, `${A%p}`, `${A%%p}`, `${A/p/r}` and `${A//p/r}`, nested in any of them.
//! Written here because no Rust crate expands with these rules (shell crates follow POSIX sh,
//! which differs on escapes, unset positional parameters and `${A/p/r}`).

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::str::Chars;

/// Where variable values come from.
pub trait Vars {
    fn var(&self, name: &str) -> Option<&str>;
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// How deep `${...}` may nest in one word. The lexer recurses once per level, and BuildKit's
/// (Go, whose stacks grow) has no limit, but a thread of mab has a fixed stack: 20,000 levels
/// overflowed it. Real Dockerfiles nest two or three levels.
pub const MAX_NESTING: usize = 100;

/// `word` with its variables expanded and its quotes and escapes removed, or why it cannot be.
pub fn expand(word: &str, escape: char, vars: &dyn Vars) -> Result<String, String> {
    Lexer::new(word, escape, vars)
        .until(None, false)
        .map_err(|e| format!("cannot expand `{word}`: {e}"))
}

/// Every variable set, to a value that is no pattern and not empty: expanding with these fails
/// only for what fails whatever the values (the nesting, the syntax).
struct AllSet;

impl Vars for AllSet {
    fn var(&self, _: &str) -> Option<&str> {
        Some("x")
    }
}

/// Whether `word` nests `${...}` deeper than [`MAX_NESTING`], whatever the variables' values:
/// the lexer reads the words of `${A:-w}` and `${A/p/r}` whether or not A is set, so it meets
/// the same nesting with any values.
pub fn too_deep(word: &str, escape: char) -> bool {
    if !word.contains("${") {
        return false;
    }
    let mut lexer = Lexer::new(word, escape, &AllSet);
    let _ = lexer.until(None, false);
    lexer.too_deep
}

/// Whether `word` reads the variable `name` (`$NAME` or `${NAME...}`), escapes not considered:
/// enough to know which automatic args a `FROM` line needs declared.
pub fn names_variable(word: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    word.match_indices('$').any(|(at, _)| {
        let rest = &word[at + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        rest.strip_prefix(name)
            .is_some_and(|after| !after.starts_with(ident))
    })
}

/// Where a word can be redirected by overriding one build arg: it is a single `$NAME`,
/// `${NAME}`, `${NAME:-default}` or `${NAME-default}`, so setting NAME decides its value.
pub fn overriding_variable(word: &str) -> Option<&str> {
    let name_end = |s: &str| {
        s.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let valid = |name: &str| !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit());
    if let Some(inner) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
        let end = name_end(inner);
        let (name, rest) = inner.split_at(end);
        let defaulting = rest.is_empty() || rest.starts_with(":-") || rest.starts_with('-');
        // The default must close with the word: `${A:-x}${B}` is two expressions.
        return (valid(name) && defaulting && balanced(rest)).then_some(name);
    }
    let name = word.strip_prefix('$')?;
    (valid(name) && name_end(name) == name.len()).then_some(name)
}

/// Whether every `${` in `s` closes inside it.
fn balanced(s: &str) -> bool {
    let mut depth = 0usize;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                depth += 1;
            }
            '}' if depth == 0 => return false,
            '}' => depth -= 1,
            _ => {}
        }
    }
    depth == 0
}

struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    escape: char,
    vars: &'a dyn Vars,
    /// The `${` open around the current position.
    depth: usize,
    /// Set when one more would have gone past [`MAX_NESTING`].
    too_deep: bool,
}

impl<'a> Lexer<'a> {
    fn new(word: &'a str, escape: char, vars: &'a dyn Vars) -> Self {
        Self {
            chars: word.chars().peekable(),
            escape,
            vars,
            depth: 0,
            too_deep: false,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    /// Reads up to `stop` (consumed) or the end. `raw` keeps escape characters, as the
    /// patterns of `#`, `%` and `/` need them.
    fn until(&mut self, stop: Option<char>, raw: bool) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.chars.next();
                return Ok(out);
            }
            match c {
                '$' => out.push_str(&self.dollar()?),
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted(raw)?),
                _ => {
                    self.chars.next();
                    if c == self.escape {
                        if raw {
                            out.push(c);
                        }
                        match self.chars.next() {
                            Some(escaped) => out.push(escaped),
                            None => break,
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        match stop {
            Some(s) => Err(format!(
                "unexpected end of statement while looking for matching {s}"
            )),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        self.chars.next();
        let mut out = String::new();
        loop {
            match self.chars.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self, raw: bool) -> Result<String, String> {
        self.chars.next();
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.chars.next();
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(_) => {
                    let mut c = self.chars.next().expect("peeked");
                    if c == self.escape {
                        if raw {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                c = self.chars.next().expect("peeked");
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// A name: digits (a positional parameter), one special parameter, or letters, digits
    /// and `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.chars.next();
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.chars.next();
                return c.to_string();
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            name.push(c);
            self.chars.next();
        }
        name
    }

    fn get(&self, name: &str) -> Option<String> {
        self.vars.var(name).map(str::to_string)
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.chars.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.get(&name).unwrap_or_default());
        }
        self.chars.next();
        if self.depth == MAX_NESTING {
            self.too_deep = true;
            return Err(format!(
                "variables nested more than {MAX_NESTING} levels deep"
            ));
        }
        self.depth += 1;
        let value = self.braced();
        self.depth -= 1;
        value
    }

    /// `${...}` after the `${`.
    fn braced(&mut self) -> Result<String, String> {
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let mut modifier = match self.chars.next() {
            Some('}') => return Ok(self.get(&name).unwrap_or_default()),
            Some('/') => return self.replace(&name),
            Some(c) => c,
            None => return Err("syntax error: missing '}'".into()),
        };
        let null_is_unset = modifier == ':';
        if null_is_unset {
            modifier = self.chars.next().unwrap_or('}');
        }
        let unsupported = || format!("unsupported modifier ({modifier}) in substitution");
        let pattern = matches!(modifier, '#' | '%');
        if !matches!(modifier, '-' | '+' | '?') && !pattern || (pattern && null_is_unset) {
            return Err(unsupported());
        }
        let word = self.until(Some('}'), pattern).map_err(|e| {
            if self.peek().is_none() {
                "syntax error: missing '}'".to_string()
            } else {
                e
            }
        })?;
        let value = self.get(&name);
        let empty = |v: &Option<String>| v.is_none() || (null_is_unset && v.as_deref() == Some(""));
        Ok(match modifier {
            '-' if empty(&value) => word,
            '-' => value.unwrap_or_default(),
            '+' if empty(&value) => String::new(),
            '+' => word,
            '?' if empty(&value) => {
                let what = if value.is_none() { "unset" } else { "empty" };
                let message = if word.is_empty() {
                    format!("is not allowed to be {what}")
                } else {
                    word
                };
                return Err(format!("{name}: {message}"));
            }
            '?' => value.unwrap_or_default(),
            _ => {
                let (greedy, pattern) = match word.strip_prefix(modifier) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let glob = Glob::parse(pattern)?;
                let value = value.unwrap_or_default();
                if modifier == '#' {
                    glob.trim_prefix(&value, greedy).to_string()
                } else {
                    glob.trim_suffix(&value, greedy).to_string()
                }
            }
        })
    }

    /// `${NAME/pattern/replacement}` and `${NAME//pattern/replacement}`, after the first `/`.
    fn replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.chars.next();
        }
        let missing = |lexer: &mut Self, e: String, what: &str| {
            if lexer.peek().is_none() {
                format!("syntax error: missing '{what}'")
            } else {
                e
            }
        };
        let pattern = self
            .until(Some('/'), true)
            .map_err(|e| missing(self, e, "/' in ${}"))?;
        let replacement = self
            .until(Some('}'), true)
            .map_err(|e| missing(self, e, "}"))?;
        let glob = Glob::parse(&pattern)?;
        Ok(glob.replace(&self.get(name).unwrap_or_default(), &replacement, all))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Any,
    Star,
    Char(char),
}

/// A shell pattern of `${A#p}` and friends: `*`, `?` and escaped literals, no brackets.
struct Glob(Vec<Token>);

impl Glob {
    fn parse(pattern: &str) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => Token::Star,
                '?' => Token::Any,
                // `}` and `/` are escaped only to get them past the `${...}` syntax.
                '\\' if matches!(chars.peek(), Some('}' | '/')) => continue,
                '\\' => match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => Token::Char(e),
                    other => {
                        let shown = other.map(String::from).unwrap_or_default();
                        return Err(format!(
                            "invalid pattern ({pattern}) in substitution: invalid escape '\\{shown}'"
                        ));
                    }
                },
                other => Token::Char(other),
            });
        }
        Ok(Self(tokens))
    }

    /// Whether the pattern matches all of `text`. A loop, not a recursion per token: a pattern
    /// is as long as the Dockerfile line or the build arg it comes from. On a mismatch it goes
    /// back to the last `*` only (one more character for it): an earlier `*` can never match
    /// more than that one can, so O(pattern × text), never exponential.
    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let tokens = &self.0;
        let (mut t, mut c) = (0, 0);
        // After the last `*`: where its rest of the pattern starts, and where its match ends.
        let mut star: Option<(usize, usize)> = None;
        while c < text.len() {
            match tokens.get(t) {
                Some(Token::Star) => {
                    star = Some((t + 1, c));
                    t += 1;
                }
                Some(Token::Any) => (t, c) = (t + 1, c + 1),
                Some(Token::Char(ch)) if *ch == text[c] => (t, c) = (t + 1, c + 1),
                _ => match star {
                    Some((rest, end)) => {
                        star = Some((rest, end + 1));
                        (t, c) = (rest, end + 1);
                    }
                    None => return false,
                },
            }
        }
        tokens[t..].iter().all(|token| *token == Token::Star)
    }

    /// Char boundaries of `s`, from 0 to its length.
    fn boundaries(s: &str) -> impl DoubleEndedIterator<Item = usize> + '_ {
        s.char_indices().map(|(i, _)| i).chain([s.len()])
    }

    fn trim_prefix<'v>(&self, value: &'v str, greedy: bool) -> &'v str {
        let fits = |&end: &usize| self.matches(&value[..end]);
        let end = if greedy {
            Self::boundaries(value).rev().find(fits)
        } else {
            Self::boundaries(value).find(fits)
        };
        end.map_or(value, |e| &value[e..])
    }

    fn trim_suffix<'v>(&self, value: &'v str, greedy: bool) -> &'v str {
        let fits = |&start: &usize| self.matches(&value[start..]);
        let start = if greedy {
            Self::boundaries(value).find(fits)
        } else {
            Self::boundaries(value).rev().find(fits)
        };
        start.map_or(value, |s| &value[..s])
    }

    /// The leftmost, then longest, match at or after `from`.
    fn find(&self, value: &str, from: usize) -> Option<(usize, usize)> {
        Self::boundaries(value)
            .filter(|&s| s >= from)
            .find_map(|s| {
                Self::boundaries(value)
                    .rev()
                    .filter(|&e| e >= s)
                    .find(|&e| self.matches(&value[s..e]))
                    .map(|e| (s, e))
            })
    }

    /// Go's `regexp` replacement (`ReplaceAllString` with `all`): non-overlapping matches, and
    /// no replacement for an empty match right after another match.
    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        if !all {
            return match self.find(value, 0) {
                Some((s, e)) => format!("{}{replacement}{}", &value[..s], &value[e..]),
                None => value.to_string(),
            };
        }
        let mut out = String::new();
        let (mut search, mut last_end) = (0, 0);
        while search <= value.len() {
            let Some((start, end)) = self.find(value, search) else {
                break;
            };
            out.push_str(&value[last_end..start]);
            if end > last_end || start == 0 {
                out.push_str(replacement);
            }
            last_end = end;
            let width = value[search..].chars().next().map_or(1, char::len_utf8);
            search = if search + width > end {
                search + width
            } else {
                end
            };
        }
        out.push_str(&value[last_end..]);
        out
    }
}

#[cfg(test)]
mod tests;
