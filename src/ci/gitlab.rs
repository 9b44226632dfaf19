//! GitLab CI's words for a run: a collapsible log section per build. Pure: the report and
//! each build's log text in, the job log's text out.

use crate::exec::{BuildReport, Status};

/// A section name: GitLab takes `[a-zA-Z0-9_.-]`.
fn name(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '-' => c,
            _ => '_',
        })
        .collect()
}

/// One build's section, `start`/`end` in seconds since the epoch; collapsed unless it failed.
pub fn section(build: &BuildReport, log: &str, start: u64, end: u64) -> String {
    let id = format!("mab_{}", name(&build.id));
    let collapsed = !matches!(build.status, Status::Failed { .. });
    let title = format!(
        "{} {} ({:.1}s)",
        build.id,
        build.status.word(),
        build.duration_ms as f64 / 1000.0
    );
    let mut body = log.to_string();
    if !body.is_empty() && !body.ends_with('\n') {
        body.push('\n');
    }
    format!(
        "\x1b[0Ksection_start:{start}:{id}[collapsed={collapsed}]\r\x1b[0K{title}\n{body}\x1b[0Ksection_end:{end}:{id}\r\x1b[0K\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_has_gitlabs_markers() {
        let b = BuildReport {
            id: "app@linux-arm/v7".into(),
            image: "app".into(),
            platform: "linux/arm/v7".parse().unwrap(),
            status: Status::Built,
            duration_ms: 1500,
            image_id: None,
            inputs: None,
            published: None,
            log: "x.log".into(),
            log_tail: None,
            jobs: Vec::new(),
            content: None,
        };
        let s = section(&b, "STEP 1/2", 10, 12);
        assert_eq!(
            s,
            "\x1b[0Ksection_start:10:mab_app_linux-arm_v7[collapsed=true]\r\x1b[0Kapp@linux-arm/v7 built (1.5s)\nSTEP 1/2\n\x1b[0Ksection_end:12:mab_app_linux-arm_v7\r\x1b[0K\n"
        );
    }
}
