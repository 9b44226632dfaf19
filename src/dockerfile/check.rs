//! What BuildKit refuses in a Dockerfile before it builds anything, checked when mab plans, so
//! that the mistake gets a location and nothing is built: an instruction BuildKit does not know,
//! an instruction other than `ARG` before the first `FROM`, no `FROM` at all, and `${...}`
//! nested deeper than mab's lexer goes ([`shell::MAX_NESTING`]).

use std::ops::Range;

use super::parse::{Error, Instruction, Parsed};
use super::shell;
use crate::error::suggest;

/// BuildKit's instructions (`frontend/dockerfile/command`), as the parser uppercases them.
pub const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The first word of an instruction as a message names it (`ONBUILD` for a trigger).
fn keyword(ins: &Instruction) -> &str {
    if ins.onbuild { "ONBUILD" } else { &ins.keyword }
}

/// The first word of an instruction, where it is written.
fn keyword_span(ins: &Instruction) -> Range<usize> {
    ins.span.start..ins.span.start + keyword(ins).len()
}

/// Every instruction is one BuildKit knows, only `ARG`s come before the first `FROM`, and there
/// is a `FROM`. The trigger of an `ONBUILD` is not checked: BuildKit runs it only in the builds
/// of images based on this one, and does not check it either.
pub(super) fn instructions(parsed: &Parsed) -> Result<(), Error> {
    for ins in parsed.instructions.iter().filter(|i| !i.onbuild) {
        if !INSTRUCTIONS.contains(&ins.keyword.as_str()) {
            let error = Error::at(
                keyword_span(ins),
                format!("unknown instruction `{}`", ins.keyword),
            );
            return Err(match suggest(&ins.keyword, INSTRUCTIONS) {
                Some(did_you_mean) => error.with_help(did_you_mean),
                None => error.with_help(format!(
                    "the instructions are {}",
                    crate::error::join(INSTRUCTIONS)
                )),
            });
        }
    }
    let first_from = parsed
        .instructions
        .iter()
        .position(|i| i.keyword == "FROM" && !i.onbuild);
    let before = &parsed.instructions[..first_from.unwrap_or(parsed.instructions.len())];
    match (first_from, before.iter().find(|i| keyword(i) != "ARG")) {
        (None, first) => {
            let span = first.or(parsed.instructions.first()).map_or(0..0, keyword_span);
            Err(Error::at(span, "it has no `FROM`")
                .with_help("a build starts from an image: begin the first stage with `FROM IMAGE` (or `FROM scratch`)"))
        }
        (Some(_), Some(ins)) => Err(Error::at(
            keyword_span(ins),
            format!("`{}` comes before the first `FROM`", keyword(ins)),
        )
        .with_help("only `ARG` (and comments and parser directives) may come before the first `FROM`: move it into a stage")),
        (Some(_), None) => Ok(()),
    }
}

/// `word` (of `ins`), which mab expands, nests `${...}` no deeper than its lexer goes.
pub(super) fn nesting(word: &str, escape: char, ins: &Instruction) -> Result<(), Error> {
    if !shell::too_deep(word, escape) {
        return Ok(());
    }
    Err(Error::at(
        keyword_span(ins),
        format!(
            "`{}` nests `${{...}}` more than {} levels deep",
            keyword(ins),
            shell::MAX_NESTING
        ),
    )
    .with_help("split it over several ARGs, each using the one before"))
}
