//! The `LABEL` instruction mab adds to a build's copy of its Dockerfile.

use std::collections::BTreeMap;

/// One `LABEL` instruction that sets all of `labels`, quoted and escaped with `escape` so the
/// builder reads every key and value literally (no variable expansion); none when a value holds
/// a line break, which a Dockerfile line cannot carry.
pub fn label_instruction(labels: &BTreeMap<String, String>, escape: char) -> Option<String> {
    let quote = |s: &str| {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '$' || c == escape {
                out.push(escape);
            }
            out.push(c);
        }
        out.push('"');
        out
    };
    let mut line = String::from("LABEL");
    for (k, v) in labels {
        if [k, v].iter().any(|s| s.contains(['\n', '\r'])) {
            return None;
        }
        line.push(' ');
        line.push_str(&quote(k));
        line.push('=');
        line.push_str(&quote(v));
    }
    Some(line)
}
