//! The one check of a shared token on driftline's HTTP endpoints (the
//! alert API, the AWS Config inbox).

use subtle::ConstantTimeEq;

/// Whether a request carries `want`: in its `Authorization: Bearer …`
/// header value (`authorization`) or, for senders that cannot set headers
/// (SNS subscriptions), as `also` (a `?token=` query value). Compared in
/// constant time.
pub fn has_token(authorization: Option<&str>, also: Option<&str>, want: &str) -> bool {
    let bearer = authorization.and_then(|v| v.strip_prefix("Bearer "));
    [bearer, also]
        .into_iter()
        .flatten()
        .any(|given| bool::from(given.as_bytes().ct_eq(want.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_or_query_and_nothing_else() {
        assert!(!has_token(None, None, "s3cret"));
        assert!(has_token(None, Some("s3cret"), "s3cret"));
        assert!(
            !has_token(None, Some("s3cre"), "s3cret"),
            "a prefix is not the token"
        );
        assert!(has_token(Some("Bearer s3cret"), None, "s3cret"));
        assert!(!has_token(Some("Basic s3cret"), None, "s3cret"));
    }
}
