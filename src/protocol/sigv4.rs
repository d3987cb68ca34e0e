//! Opt-in request signing (`--verify-signatures`): every AWS API request must carry a SigV4 signature (in the
//! `Authorization` header, or in the query string) made with a known access key, as AWS checks it. The expected
//! signature is computed with the `aws-sigv4` crate over exactly the headers the client signed, and compared in
//! constant time. Known keys come from a credentials file:
//! `{"principals": [{"accessKeyId", "secretAccessKey", "account", "arn", "sessionToken"?, "policies"?, "admin"?}]}`
//! (extra members are allowed). With `--enforce-iam`, a principal's `policies` are read when the file is
//! ([`Principal::compile`]); a principal without a `policies` member takes its policies from the IAM neighbour.
//!
//! AWS's errors: `MissingAuthenticationTokenException` (no signature), `IncompleteSignatureException` (a malformed
//! one), `UnrecognizedClientException` (an unknown key or token), `InvalidSignatureException` (a wrong secret, a
//! tampered request, a scope that is not the request's, a time outside the 15-minute window). UNCONFIRMED for
//! CodePipeline and chosen from other AWS JSON services: the HTTP status (400 for all four) and the missing token's
//! wording.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Uri};
use serde::Deserialize;

use super::identity::{is_plausible_region, percent_decode};
use super::policy::Policy;
use super::{ApiError, ErrorCode};

/// How far a request's time may be from the server's, either way (AWS's window).
pub const SKEW: Duration = Duration::from_secs(15 * 60);

/// Someone the credentials file knows.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub session_token: Option<String>,
    pub account: String,
    pub arn: String,
    /// Identity-based policies as written (absent: from the IAM neighbour, with `--enforce-iam`).
    #[serde(default)]
    pub policies: Option<Vec<serde_json::Value>>,
    /// May act on every account through the control endpoints.
    #[serde(default)]
    pub admin: bool,
    /// Its tags (`aws:PrincipalTag/<key>` in policies).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// The policies, read ([`Principal::compile`]).
    #[serde(skip)]
    pub compiled: Vec<Policy>,
}

impl Principal {
    /// Reads its policies, or says which one uses what IAM enforcement does not evaluate.
    pub fn compile(&mut self) -> Result<(), String> {
        let policies = self.policies.as_deref().unwrap_or_default();
        self.compiled = policies
            .iter()
            .enumerate()
            .map(|(i, document)| Policy::parse(&format!("#{} of {}", i + 1, self.arn), document))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Whether it is an account's root user, which identity-based policies do not restrict.
    pub fn is_root(&self) -> bool {
        self.arn.starts_with("arn:") && self.arn.ends_with(":root")
    }

    /// `aws:PrincipalType` as IAM gives it: `Account`, `User`, `AssumedRole` or `FederatedUser`.
    pub fn principal_type(&self) -> &'static str {
        let resource = self.arn.splitn(6, ':').nth(5).unwrap_or_default();
        match resource.split('/').next().unwrap_or_default() {
            "root" => "Account",
            "assumed-role" => "AssumedRole",
            "federated-user" => "FederatedUser",
            _ => "User",
        }
    }

    /// `aws:username`: an IAM user's name (the last part of its ARN); other principals have none.
    pub fn user_name(&self) -> Option<&str> {
        let resource = self.arn.splitn(6, ':').nth(5)?;
        resource.strip_prefix("user/").map(|path| path.rsplit('/').next().unwrap_or(path))
    }
}

impl std::fmt::Debug for Principal {
    /// Never the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("access_key_id", &self.access_key_id)
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct CredentialsFile {
    principals: Vec<Principal>,
}

/// The principals of a credentials file, by access key id.
#[derive(Debug, Default)]
pub struct Verifier {
    principals: HashMap<String, Arc<Principal>>,
}

/// The parts of a request's signature, from the header or the query string ([`Signature::read`]).
pub struct Signature {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    time: String,
    query: bool,
    expires: Option<u64>,
}

impl Verifier {
    /// Reads a credentials file's text; with `enforce`, each principal's policies too.
    pub fn from_json(text: &str, enforce: bool) -> Result<Verifier, String> {
        let file: CredentialsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut principals = HashMap::new();
        for mut principal in file.principals {
            if principal.access_key_id.is_empty() || principal.secret_access_key.is_empty() {
                return Err("every principal needs an accessKeyId and a secretAccessKey".into());
            }
            if enforce {
                principal.compile()?;
            }
            let key = principal.access_key_id.clone();
            if principals.insert(key.clone(), Arc::new(principal)).is_some() {
                return Err(format!("the access key {key} is listed twice"));
            }
        }
        Ok(Verifier { principals })
    }

    /// How many principals it knows.
    pub fn len(&self) -> usize {
        self.principals.len()
    }

    /// Whether it knows none.
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }

    /// The principal whose access key is `key`.
    pub fn principal(&self, key: &str) -> Option<&Arc<Principal>> {
        self.principals.get(key)
    }

    /// Every principal.
    pub fn principals(&self) -> impl Iterator<Item = &Arc<Principal>> {
        self.principals.values()
    }
}

impl Signature {
    /// The signature of a request: `MissingAuthenticationTokenException` without one, `IncompleteSignatureException`
    /// for a malformed one.
    pub fn read(uri: &Uri, headers: &HeaderMap) -> Result<Signature, ApiError> {
        parse(uri, headers)
    }

    /// The access key it names.
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// Checks that `principal` (the owner of its access key) made it for this request, at `now`; the region it was
    /// scoped to.
    pub fn check(
        &self,
        principal: &Principal,
        method: &str,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<String, ApiError> {
        let signed = self;
        let token = if signed.query {
            query_param(uri, "X-Amz-Security-Token")
        } else {
            header(headers, "x-amz-security-token")
        };
        if token.as_deref() != principal.session_token.as_deref()
            && (token.is_some() || principal.session_token.is_some())
        {
            return Err(unrecognized());
        }
        check_scope(signed)?;
        let time = parse_time(&signed.time)
            .ok_or_else(|| incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{}'.", signed.time)))?;
        check_window(signed, time, now)?;
        let expected = expected_signature(signed, principal, method, uri, headers, body, time)?;
        if !constant_time_eq(expected.as_bytes(), signed.signature.as_bytes()) {
            return Err(mismatch());
        }
        Ok(signed.region.clone())
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn missing() -> ApiError {
    ApiError::new(ErrorCode::MissingAuthenticationTokenException, "Request is missing Authentication Token")
}

fn incomplete(message: String) -> ApiError {
    ApiError::new(ErrorCode::IncompleteSignatureException, message)
}

/// `UnrecognizedClientException`: a key (or token) nobody has.
pub fn unrecognized() -> ApiError {
    ApiError::new(ErrorCode::UnrecognizedClientException, "The security token included in the request is invalid.")
}

fn mismatch() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidSignatureException,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access \
         Key and signing method. Consult the service documentation for details.",
    )
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidSignatureException, message)
}

/// The signature's parts, from the `Authorization` header or the query string.
fn parse(uri: &Uri, headers: &HeaderMap) -> Result<Signature, ApiError> {
    if let Some(authorization) = header(headers, "authorization") {
        let Some(rest) = authorization.trim().strip_prefix("AWS4-HMAC-SHA256") else {
            return Err(incomplete(format!(
                "Authorization header requires 'AWS4-HMAC-SHA256' as its algorithm. Authorization={}",
                authorization
            )));
        };
        let part = |name: &str| {
            rest.split(',').map(str::trim).find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        let time = header(headers, "x-amz-date");
        let mut wanting = Vec::new();
        for (name, present) in [
            ("Credential", part("Credential").is_some()),
            ("Signature", part("Signature").is_some()),
            ("SignedHeaders", part("SignedHeaders").is_some()),
        ] {
            if !present {
                wanting.push(format!("Authorization header requires '{name}' parameter."));
            }
        }
        if time.is_none() {
            wanting.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into());
        }
        if !wanting.is_empty() {
            return Err(incomplete(format!("{} Authorization={authorization}", wanting.join(" "))));
        }
        let credential = part("Credential").unwrap_or_default();
        let (access_key, date, region, service) = split_credential(credential)
            .ok_or_else(|| incomplete(format!("Credential should have the form <key>/<date>/<region>/<service>/aws4_request. Authorization={authorization}")))?;
        return Ok(Signature {
            access_key,
            date,
            region,
            service,
            signed_headers: part("SignedHeaders").unwrap_or_default().split(';').map(str::to_string).collect(),
            signature: part("Signature").unwrap_or_default().to_string(),
            time: time.unwrap_or_default(),
            query: false,
            expires: None,
        });
    }
    let Some(credential) = query_param(uri, "X-Amz-Credential") else { return Err(missing()) };
    let param = |name: &str| query_param(uri, name);
    let mut wanting = Vec::new();
    for name in ["X-Amz-Algorithm", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"] {
        if param(name).is_none() {
            wanting.push(format!("AWS query-string parameters must include '{name}'."));
        }
    }
    if !wanting.is_empty() {
        return Err(incomplete(format!("{} Re-examine the query-string parameters.", wanting.join(" "))));
    }
    let (access_key, date, region, service) = split_credential(&credential).ok_or_else(|| {
        incomplete("X-Amz-Credential should have the form <key>/<date>/<region>/<service>/aws4_request.".into())
    })?;
    Ok(Signature {
        access_key,
        date,
        region,
        service,
        signed_headers: param("X-Amz-SignedHeaders").unwrap_or_default().split(';').map(str::to_string).collect(),
        signature: param("X-Amz-Signature").unwrap_or_default(),
        time: param("X-Amz-Date").unwrap_or_default(),
        query: true,
        expires: param("X-Amz-Expires").and_then(|e| e.parse().ok()),
    })
}

/// `AKID/20261207/us-east-1/codepipeline/aws4_request`.
fn split_credential(credential: &str) -> Option<(String, String, String, String)> {
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, date, region, service, "aws4_request"] if !key.is_empty() => {
            Some(((*key).to_string(), (*date).to_string(), (*region).to_string(), (*service).to_string()))
        }
        _ => None,
    }
}

fn check_scope(signed: &Signature) -> Result<(), ApiError> {
    if signed.service != "codepipeline" {
        return Err(invalid("Credential should be scoped to correct service: 'codepipeline'.".into()));
    }
    if !is_plausible_region(&signed.region) {
        return Err(invalid(format!("Credential should be scoped to a valid region, not '{}'.", signed.region)));
    }
    let day = signed.time.get(..8).unwrap_or_default();
    if signed.date != day {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', \
             from '{}'.",
            signed.date, signed.time
        )));
    }
    Ok(())
}

/// Within 15 minutes of `now` (a query-string signature: until it expires, at most 7 days).
fn check_window(signed: &Signature, time: SystemTime, now: SystemTime) -> Result<(), ApiError> {
    if signed.query {
        let expires = Duration::from_secs(signed.expires.unwrap_or(900).min(604_800));
        if now > time + expires {
            return Err(ApiError::new(ErrorCode::InvalidSignatureException, "Signature expired"));
        }
        return Ok(());
    }
    if time + SKEW < now {
        return Err(invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            signed.time,
            format_time(now - SKEW),
            format_time(now)
        )));
    }
    if time > now + SKEW {
        return Err(invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            signed.time,
            format_time(now + SKEW),
            format_time(now)
        )));
    }
    Ok(())
}

/// The signature the principal's secret makes of this request, over the headers the client signed.
fn expected_signature(
    signed: &Signature,
    principal: &Principal,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    time: SystemTime,
) -> Result<String, ApiError> {
    let identity = aws_credential_types::Credentials::new(
        &principal.access_key_id,
        &principal.secret_access_key,
        principal.session_token.clone(),
        None,
        "credentials-file",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    if signed.signed_headers.iter().any(|h| h == "x-amz-content-sha256") {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if signed.query {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(signed.expires.unwrap_or(900)));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&signed.region)
        .name(&signed.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| mismatch())?
        .into();
    // Exactly the headers the client signed, as it sent them.
    let chosen: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| signed.signed_headers.iter().any(|h| h.eq_ignore_ascii_case(name.as_str())))
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    // A query-string signature's own parameters are added back by the signer.
    let path = if signed.query {
        without_signature(uri)
    } else {
        uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string())
    };
    let body = if signed.query { SignableBody::UnsignedPayload } else { SignableBody::Bytes(body) };
    let signable = SignableRequest::new(method, path, chosen.into_iter(), body).map_err(|_| mismatch())?;
    let output = sign(signable, &params).map_err(|_| mismatch())?;
    Ok(output.signature().to_string())
}

/// The path and query of `uri` without a query-string signature's own `X-Amz-*` parameters.
pub fn without_signature(uri: &Uri) -> String {
    let kept: Vec<&str> =
        uri.query().unwrap_or_default().split('&').filter(|p| !p.starts_with("X-Amz-") && !p.is_empty()).collect();
    if kept.is_empty() { uri.path().to_string() } else { format!("{}?{}", uri.path(), kept.join("&")) }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The basic ISO-8601 format of SigV4 times: `20261207T231500Z`.
const BASIC: &str = "%Y%m%dT%H%M%SZ";

/// `20261207T231500Z` as a time.
fn parse_time(text: &str) -> Option<SystemTime> {
    let civil = jiff::civil::DateTime::strptime(BASIC, text).ok()?;
    let stamp = jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()?;
    SystemTime::try_from(stamp).ok()
}

/// A time as `20261207T231500Z`.
fn format_time(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time).map(|t| t.strftime(BASIC).to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_and_write_aws_basic_format() {
        for text in ["20261207T231500Z", "20000229T000000Z", "19700101T000000Z", "20991231T235959Z"] {
            assert_eq!(parse_time(text).map(format_time).as_deref(), Some(text));
        }
        for bad in ["2026-12-07T23:15:00Z", "20261307T000000Z", "20261207T231500", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn principals_are_typed_and_users_named_from_their_arn() {
        let of = |arn: &str| {
            let text = format!(
                r#"{{"principals": [{{"accessKeyId": "A", "secretAccessKey": "s", "account": "1", "arn": "{arn}"}}]}}"#
            );
            let verifier = Verifier::from_json(&text, false).expect("reads");
            let principal = verifier.principal("A").cloned().expect("listed");
            (principal.principal_type(), principal.user_name().map(str::to_string), principal.is_root())
        };
        assert_eq!(of("arn:aws:iam::1:user/deployer"), ("User", Some("deployer".into()), false));
        assert_eq!(of("arn:aws:iam::1:user/teams/web/alice"), ("User", Some("alice".into()), false));
        assert_eq!(of("arn:aws:sts::1:assumed-role/ci/session"), ("AssumedRole", None, false));
        assert_eq!(of("arn:aws:iam::1:root"), ("Account", None, true));
        assert_eq!(of("arn:aws:sts::1:federated-user/bob"), ("FederatedUser", None, false));
    }

    #[test]
    fn credential_files_allow_extra_members_and_refuse_duplicates() {
        let file = r#"{"principals": [{"accessKeyId": "AKIA1", "secretAccessKey": "s", "account": "111111111111",
            "arn": "arn:aws:iam::111111111111:user/deployer", "policies": [], "admin": true, "note": "extra"}],
            "comment": "extra"}"#;
        let verifier = Verifier::from_json(file, true).expect("reads");
        assert_eq!(verifier.len(), 1);
        let twice = r#"{"principals": [{"accessKeyId": "A", "secretAccessKey": "s", "account": "1", "arn": "a"},
            {"accessKeyId": "A", "secretAccessKey": "t", "account": "1", "arn": "b"}]}"#;
        assert!(Verifier::from_json(twice, false).is_err_and(|e| e.contains("listed twice")));
        assert!(!format!("{:?}", verifier.principals.values().next()).contains("\"s\""), "no secret in Debug");
    }
}
