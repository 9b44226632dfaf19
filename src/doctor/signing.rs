//! `[signing]`: the key is readable and opens with `COSIGN_PASSWORD`.

use crate::Plan;
use crate::sign::KeySource;

use super::Check;

/// The check of the plan's signing key, if it signs.
pub(super) fn check(plan: &Plan) -> Option<Check> {
    let signing = plan.signing.as_ref()?;
    let named = match &signing.key {
        KeySource::File(p) => p.display().to_string(),
        KeySource::Env(var) => format!("${var}"),
    };
    Some(match signing.open_with_env() {
        Ok(_) => Check::pass(format!("signing key {named} opens")),
        Err(e) => Check::fail(
            format!("signing key {named}: {}", e.message()),
            "set COSIGN_PASSWORD to the key's password, or make a pair with `mab keygen`",
        ),
    })
}
