//! `.driftignore` in driftctl's syntax: one rule per line,
//! `TYPE.ID` ignores a resource, `TYPE.ID.path.to.attr` ignores drift on
//! an attribute (and everything below it), `*` matches within one segment,
//! `\.` is a literal dot, `!rule` un-ignores, `#` starts a comment, and the
//! last matching rule wins. A line may also be a Terraform address.

#[derive(Debug, Clone)]
struct Rule {
    negate: bool,
    segments: Vec<String>,
    raw: String,
}

#[derive(Debug, Clone, Default)]
pub struct DriftIgnore {
    rules: Vec<Rule>,
}

fn split_unescaped(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                cur.push('.');
            }
            '.' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Glob with `*` only.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl DriftIgnore {
    pub fn parse(text: &str) -> Self {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (negate, body) = match l.strip_prefix('!') {
                    Some(b) => (true, b),
                    None => (false, l),
                };
                Rule {
                    negate,
                    segments: split_unescaped(body),
                    raw: body.to_string(),
                }
            })
            .collect();
        DriftIgnore { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Is the whole resource ignored? `id` is the Terraform id.
    pub fn ignores_resource(&self, tf_type: &str, id: &str, address: Option<&str>) -> bool {
        let mut ignored = false;
        for r in &self.rules {
            let by_id =
                r.segments.len() == 2 && glob(&r.segments[0], tf_type) && glob(&r.segments[1], id);
            let by_all = r.segments.len() == 1 && r.segments[0] == "*";
            let by_address = address.is_some_and(|a| glob(&r.raw, a));
            if by_id || by_all || by_address {
                ignored = !r.negate;
            }
        }
        ignored
    }

    /// Is drift on this attribute path (`tags.Owner`) ignored?
    pub fn ignores_attribute(&self, tf_type: &str, id: &str, path: &str) -> bool {
        let path_segs: Vec<&str> = path.split('.').collect();
        let mut ignored = false;
        for r in &self.rules {
            if r.segments.len() < 3 || !glob(&r.segments[0], tf_type) || !glob(&r.segments[1], id) {
                continue;
            }
            let want = &r.segments[2..];
            // A rule names an attribute and everything below it. A tag key
            // with dots may be written escaped or not: compare the joined rest too.
            let prefix_match = want.len() <= path_segs.len()
                && want.iter().zip(&path_segs).all(|(w, p)| glob(w, p));
            let joined = want.join(".");
            let whole_match = glob(&joined, path) || path.starts_with(&format!("{joined}."));
            if prefix_match || whole_match {
                ignored = !r.negate;
            }
        }
        ignored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driftctl_syntax() {
        let ig = DriftIgnore::parse(
            "# comment\naws_s3_bucket.*\n!aws_s3_bucket.keep-me\naws_iam_user.bob.tags.Owner\n\
             aws_instance.i-1.ingress\naws_s3_bucket.my\\.dotted\\.bucket\nmodule.legacy.*\n",
        );
        assert!(ig.ignores_resource("aws_s3_bucket", "anything", None));
        assert!(!ig.ignores_resource("aws_s3_bucket", "keep-me", None));
        assert!(!ig.ignores_resource("aws_iam_user", "bob", None));
        assert!(ig.ignores_resource("aws_vpc", "vpc-1", Some("module.legacy.aws_vpc.main")));
        assert!(ig.ignores_attribute("aws_iam_user", "bob", "tags.Owner"));
        assert!(!ig.ignores_attribute("aws_iam_user", "bob", "tags.Team"));
        assert!(ig.ignores_attribute("aws_instance", "i-1", "ingress"));
        let dotted = DriftIgnore::parse("aws_s3_bucket.my\\.dotted\\.bucket\n");
        assert!(dotted.ignores_resource("aws_s3_bucket", "my.dotted.bucket", None));
        assert!(!dotted.ignores_resource("aws_s3_bucket", "my", None));
        assert!(DriftIgnore::parse("*").ignores_resource("x", "y", None));
    }
}
