//! Who is calling, and where: the account and region of a request.
//!
//! Signatures are never verified. The region is the one in the SigV4 credential scope
//! (`Credential=<AKID>/<date>/<region>/<service>/aws4_request`, from the `Authorization` header or the
//! `X-Amz-Credential` query parameter of a presigned request); the account is the access key id when that is
//! 12 digits (LocalStack's convention), else the configured default. Unsigned requests get both defaults.

use axum::http::HeaderMap;

/// The (account, region) pair that partitions all state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

impl Scope {
    /// The ARN partition of the region: `aws`, `aws-cn` or `aws-us-gov`.
    pub fn partition(&self) -> &'static str {
        partition_of(&self.region)
    }

    /// An ARN of this service in this scope: `arn:<partition>:codepipeline:<region>:<account>:<resource>`.
    pub fn arn(&self, resource: &str) -> String {
        format!("arn:{}:codepipeline:{}:{}:{resource}", self.partition(), self.region, self.account)
    }

    /// An ARN of another service in this scope: `arn:<partition>:<service>:<region>:<account>:<resource>`.
    pub fn arn_in(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.partition(), self.region, self.account)
    }

    /// The ARN recorded as the caller of a request (trigger details, `lastChangedBy`, approvers, ...). Requests
    /// are not authenticated, so the caller is the account's root principal.
    pub fn caller_arn(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition(), self.account)
    }
}

/// The ARN partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// Defaults for requests that do not say.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub account: String,
    pub region: String,
}

/// Derives the scope of a request from its headers and query string.
pub fn scope_of(headers: &HeaderMap, query: Option<&str>, defaults: &Defaults) -> Scope {
    let credential = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credential_from_authorization)
        .or_else(|| query.and_then(credential_from_query));
    let (access_key, region) = match &credential {
        Some(c) => parse_credential(c),
        None => (None, None),
    };
    Scope {
        account: access_key
            .filter(|k| k.len() == 12 && k.bytes().all(|b| b.is_ascii_digit()))
            .map_or_else(|| defaults.account.clone(), str::to_string),
        region: region.filter(|r| is_plausible_region(r)).map_or_else(|| defaults.region.clone(), str::to_string),
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/codepipeline/aws4_request, SignedHeaders=..., ...`
fn credential_from_authorization(value: &str) -> Option<String> {
    let rest = value.trim().strip_prefix("AWS4-HMAC-SHA256")?;
    rest.split(',').map(str::trim).find_map(|part| part.strip_prefix("Credential=")).map(str::to_string)
}

/// `...&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fcodepipeline%2Faws4_request&...`
fn credential_from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| pair.strip_prefix("X-Amz-Credential=")).map(percent_decode)
}

/// Splits `AKID/date/region/service/aws4_request` into the access key id and the region.
fn parse_credential(credential: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = credential.split('/');
    let access_key = parts.next().filter(|k| !k.is_empty());
    let region = parts.nth(1).filter(|r| !r.is_empty());
    (access_key, region)
}

/// Region names are lowercase letters, digits and dashes (`us-east-1`, `eu-central-2`, `local`); anything else in
/// a credential scope is ignored in favour of the default rather than written into ARNs.
pub fn is_plausible_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// A query parameter's value as it was before percent-encoding (invalid escapes are kept as they are).
pub(crate) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_decoded_to_their_last_escape() {
        assert_eq!(percent_decode("a%2Fb%2F"), "a/b/");
        assert_eq!(percent_decode("%ZZ%2"), "%ZZ%2", "invalid escapes are kept");
    }

    use super::*;
    use axum::http::HeaderValue;

    fn defaults() -> Defaults {
        Defaults { account: "000000000000".into(), region: "us-east-1".into() }
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_str(value).expect("valid header"));
        headers
    }

    #[test]
    fn unsigned_requests_get_the_defaults() {
        let scope = scope_of(&HeaderMap::new(), None, &defaults());
        assert_eq!(scope.account, "000000000000");
        assert_eq!(scope.region, "us-east-1");
    }

    #[test]
    fn region_comes_from_the_credential_scope() {
        let headers = with_auth(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/eu-west-3/codepipeline/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc",
        );
        let scope = scope_of(&headers, None, &defaults());
        assert_eq!(scope.region, "eu-west-3");
        assert_eq!(scope.account, "000000000000", "a non-numeric key maps to the default account");
    }

    #[test]
    fn twelve_digit_access_key_is_the_account() {
        let headers =
            with_auth("AWS4-HMAC-SHA256 Credential=111122223333/20240101/ap-south-1/codepipeline/aws4_request");
        let scope = scope_of(&headers, None, &defaults());
        assert_eq!(scope.account, "111122223333");
        assert_eq!(scope.region, "ap-south-1");
        for key in ["11112222333", "1111222233334", "11112222333x"] {
            let headers =
                with_auth(&format!("AWS4-HMAC-SHA256 Credential={key}/20240101/us-west-2/codepipeline/aws4_request"));
            assert_eq!(scope_of(&headers, None, &defaults()).account, "000000000000", "{key}");
        }
    }

    #[test]
    fn presigned_query_credential_is_read() {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=123456789012%2F20240101%2Fus-west-2%2Fcodepipeline%2Faws4_request&X-Amz-Date=20240101T000000Z";
        let scope = scope_of(&HeaderMap::new(), Some(query), &defaults());
        assert_eq!(scope.account, "123456789012");
        assert_eq!(scope.region, "us-west-2");
    }

    #[test]
    fn garbage_is_ignored() {
        for value in [
            "Basic dXNlcjpwYXNz",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=",
            "AWS4-HMAC-SHA256 Credential=AKID",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/US EAST/codepipeline/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKID/20240101/../codepipeline/aws4_request",
        ] {
            let scope = scope_of(&with_auth(value), None, &defaults());
            assert_eq!(scope.region, "us-east-1", "{value}");
        }
        let scope = scope_of(&HeaderMap::new(), Some("X-Amz-Credential=%ZZ%2"), &defaults());
        assert_eq!(scope.region, "us-east-1");
    }

    #[test]
    fn arns_use_partition_region_and_account() {
        let scope = Scope { account: "123456789012".into(), region: "cn-north-1".into() };
        assert_eq!(scope.arn("my-pipe"), "arn:aws-cn:codepipeline:cn-north-1:123456789012:my-pipe");
        assert_eq!(scope.caller_arn(), "arn:aws-cn:iam::123456789012:root");
    }
}
