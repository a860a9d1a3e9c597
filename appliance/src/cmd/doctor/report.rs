//! One finding per check, and how it prints.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not run: left out with `--skip`, or a check it needs failed.
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn skip(check: &'static str, why: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Skip,
            detail: why.into(),
            fix: None,
        }
    }
}

/// `[ ok ] check       detail` lines, the fix indented under a warning or failure, and a
/// summary line.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let tag = match f.status {
            Status::Ok => " ok ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        out.push_str(&format!("[{tag}] {:<11} {}\n", f.check, f.detail));
        if let Some(fix) = &f.fix {
            out.push_str(&format!("{:18}fix: {fix}\n", ""));
        }
    }
    let count = |s| findings.iter().filter(|f| f.status == s).count();
    out.push_str(&format!(
        "{} ok, {} warnings, {} failed, {} skipped\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Skip)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_print_their_fix_under_them_and_the_summary_counts() {
        let out = render(&[
            Finding::ok("config", "parses"),
            Finding::fail("clock", "not synchronized", "timedatectl set-ntp true"),
            Finding::skip("peers", "--skip peers"),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "[ ok ] config      parses");
        assert_eq!(lines[1], "[FAIL] clock       not synchronized");
        assert_eq!(lines[2].trim(), "fix: timedatectl set-ntp true");
        assert_eq!(lines[4], "1 ok, 0 warnings, 1 failed, 1 skipped");
    }
}
