//! The one check of a shared token on the service's HTTP endpoints.

use axum::http::{HeaderMap, header};

/// Whether a request carries `want`: as `Authorization: Bearer …` or, for
/// senders that cannot set headers (SNS subscriptions), as `also` (a
/// `?token=` query value). Compared in constant time.
pub fn has_token(headers: &HeaderMap, also: Option<&str>, want: &str) -> bool {
    use subtle::ConstantTimeEq;
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
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
        let mut h = HeaderMap::new();
        assert!(!has_token(&h, None, "s3cret"));
        assert!(has_token(&h, Some("s3cret"), "s3cret"));
        assert!(
            !has_token(&h, Some("s3cre"), "s3cret"),
            "a prefix is not the token"
        );
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(has_token(&h, None, "s3cret"));
        h.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(!has_token(&h, None, "s3cret"));
    }
}
