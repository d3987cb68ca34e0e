//! Who may sign requests (`--verify-signatures`) and what they may do (`--enforce-iam`): the principals of the
//! credentials file and, with an IAM neighbour, the neighbour's users.
//!
//! A key the file does not list is looked up on the IAM neighbour: its secret from moto's state endpoint
//! (`/moto-api/data.json`: IAM's own API never shows a secret again), its user's ARN (which gives the account) from
//! `GetUser`, and with `--enforce-iam` the user's inline and attached policies and those of its groups. A principal
//! the file lists without a `policies` member takes its policies from the neighbour the same way (the user named at
//! the end of its ARN), so keys of any IAM neighbour can be used by listing them. What the neighbour says is kept
//! for a second ([`FRESH`]), as IAM's own changes take a moment to apply.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::outbound::{HttpClient, Trust};
use crate::engine::providers::Credentials;
use crate::engine::providers::neighbour::{answer, sdk_config_with};
use crate::protocol::identity::percent_decode;
use crate::protocol::sigv4::{Principal, Verifier, unrecognized};
use crate::protocol::{ApiError, ErrorCode};

/// How long what the IAM neighbour said about a key is used before it is asked again.
pub const FRESH: Duration = Duration::from_secs(1);

/// The principals requests may be signed by.
pub struct Principals {
    file: Verifier,
    iam: Option<IamNeighbour>,
    /// `--enforce-iam`: policies are read and checked.
    enforce: bool,
    /// What the IAM neighbour said of each key lately (`None`: no such key).
    looked_up: Mutex<HashMap<String, LookedUp>>,
}

/// When the IAM neighbour was asked about a key, and what it said (`None`: no such key).
type LookedUp = (Instant, Option<Arc<Principal>>);

impl std::fmt::Debug for Principals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principals")
            .field("file", &self.file)
            .field("iam", &self.iam.as_ref().map(|n| &n.endpoint))
            .field("enforce", &self.enforce)
            .finish_non_exhaustive()
    }
}

impl Principals {
    /// The principals of `file` and, when there is one, of the IAM neighbour.
    pub fn new(file: Verifier, iam: Option<IamNeighbour>, enforce: bool) -> Principals {
        Principals { file, iam, enforce, looked_up: Mutex::new(HashMap::new()) }
    }

    /// Whether policies decide what a verified caller may do.
    pub fn enforce(&self) -> bool {
        self.enforce
    }

    /// Checks a request's signature, at the wall clock's time: its principal and the region it was signed for.
    pub async fn verify(
        &self,
        method: &str,
        uri: &axum::http::Uri,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<(Arc<Principal>, String), ApiError> {
        let signature = crate::protocol::sigv4::Signature::read(uri, headers)?;
        let principal = self.find(signature.access_key()).await?;
        let region = signature.check(&principal, method, uri, headers, body, std::time::SystemTime::now())?;
        Ok((principal, region))
    }

    /// The principal whose access key is `key`: `UnrecognizedClientException` when nobody has it.
    pub async fn find(&self, key: &str) -> Result<Arc<Principal>, ApiError> {
        let listed = self.file.principal(key);
        let from_neighbour = match (listed, &self.iam) {
            (Some(principal), _) if !self.enforce || principal.policies.is_some() || self.iam.is_none() => {
                return Ok(Arc::clone(principal));
            }
            (_, None) => return Err(unrecognized()),
            (_, Some(iam)) => iam,
        };
        if let Some((at, known)) = self.looked_up.lock().map_err(|_| poisoned())?.get(key)
            && at.elapsed() < FRESH
        {
            return known.clone().ok_or_else(unrecognized);
        }
        let found = from_neighbour.principal(key, listed.map(Arc::as_ref), self.enforce).await?.map(Arc::new);
        let mut looked_up = self.looked_up.lock().map_err(|_| poisoned())?;
        looked_up.retain(|_, (at, _)| at.elapsed() < FRESH);
        looked_up.insert(key.to_string(), (Instant::now(), found.clone()));
        found.ok_or_else(unrecognized)
    }
}

fn poisoned() -> ApiError {
    ApiError::new(ErrorCode::InternalFailure, "The principals' cache is unusable after an earlier failure")
}

/// The IAM neighbour: an IAM API, and (on moto) its state endpoint for secrets.
pub struct IamNeighbour {
    endpoint: String,
    client: aws_sdk_iam::Client,
    http: HttpClient,
}

impl IamNeighbour {
    /// The neighbour at `endpoint`, called with `credentials`.
    pub fn new(endpoint: &str, credentials: &Credentials, trust: &Trust, timeout: Duration) -> IamNeighbour {
        let config = sdk_config_with(credentials, trust, timeout, endpoint, "us-east-1");
        IamNeighbour {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            client: aws_sdk_iam::Client::new(&config),
            http: crate::engine::outbound::client(trust),
        }
    }

    /// The principal of `key`: `listed` (from the file) with the neighbour's policies, else the neighbour's user
    /// with that key. `None`: the neighbour knows no such active key.
    async fn principal(
        &self,
        key: &str,
        listed: Option<&Principal>,
        enforce: bool,
    ) -> Result<Option<Principal>, ApiError> {
        let mut principal = match listed {
            Some(principal) => principal.clone(),
            None => {
                let Some((secret, user)) = self.secret(key).await? else { return Ok(None) };
                let arn = self
                    .client
                    .get_user()
                    .user_name(&user)
                    .send()
                    .await
                    .map_err(|e| self.unavailable(&answer(&e)))?
                    .user
                    .map(|u| u.arn)
                    .unwrap_or_default();
                let account = arn.split(':').nth(4).unwrap_or_default().to_string();
                Principal {
                    access_key_id: key.to_string(),
                    secret_access_key: secret,
                    session_token: None,
                    account,
                    arn,
                    policies: None,
                    admin: false,
                    tags: Default::default(),
                    compiled: Vec::new(),
                }
            }
        };
        if enforce {
            let user = principal.arn.rsplit('/').next().unwrap_or_default().to_string();
            principal.policies = Some(self.policies(&user).await?);
            let tags = self.client.list_user_tags().user_name(&user).send().await;
            for tag in tags.map_err(|e| self.unavailable(&answer(&e)))?.tags {
                principal.tags.entry(tag.key).or_insert(tag.value);
            }
            principal.compile().map_err(|e| {
                tracing::warn!("the IAM neighbour's policies cannot be used: {e}");
                ApiError::new(
                    ErrorCode::AccessDeniedException,
                    format!("User: {} cannot be authorized: {e}", principal.arn),
                )
            })?;
        }
        Ok(Some(principal))
    }

    /// The secret of an active key and its user's name, from moto's state endpoint.
    async fn secret(&self, key: &str) -> Result<Option<(String, String)>, ApiError> {
        use http_body_util::BodyExt as _;
        let url = format!("{}/moto-api/data.json", self.endpoint);
        let request = axum::http::Request::get(&url)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .map_err(|e| self.unavailable(&e.to_string()))?;
        let response = self.http.request(request).await.map_err(|e| self.unavailable(&e.to_string()))?;
        if !response.status().is_success() {
            return Err(self.unavailable(&format!(
                "{url} answered {} (only moto's server shows the secrets of its keys: list the key in --credentials)",
                response.status()
            )));
        }
        let body = response.into_body().collect().await.map_err(|e| self.unavailable(&e.to_string()))?.to_bytes();
        let state: Value = serde_json::from_slice(&body).map_err(|e| self.unavailable(&e.to_string()))?;
        let keys = state["iam"]["AccessKey"].as_array().cloned().unwrap_or_default();
        Ok(keys
            .iter()
            .find(|k| k["access_key_id"] == key && k["status"] == "Active")
            .and_then(|k| Some((k["secret_access_key"].as_str()?.to_string(), k["user_name"].as_str()?.to_string()))))
    }

    /// The user's inline and attached policies, and its groups'.
    async fn policies(&self, user: &str) -> Result<Vec<Value>, ApiError> {
        let fail = |e: String| self.unavailable(&e);
        let mut documents = Vec::new();
        let inline = self.client.list_user_policies().user_name(user).send().await.map_err(|e| fail(answer(&e)))?;
        for name in inline.policy_names {
            let policy = self.client.get_user_policy().user_name(user).policy_name(&name).send().await;
            documents.push(document(&policy.map_err(|e| fail(answer(&e)))?.policy_document)?);
        }
        let attached =
            self.client.list_attached_user_policies().user_name(user).send().await.map_err(|e| fail(answer(&e)))?;
        for policy in attached.attached_policies.unwrap_or_default() {
            documents.push(self.managed(policy.policy_arn.as_deref().unwrap_or_default()).await?);
        }
        let groups = self.client.list_groups_for_user().user_name(user).send().await.map_err(|e| fail(answer(&e)))?;
        for group in groups.groups {
            let name = group.group_name;
            let inline = self.client.list_group_policies().group_name(&name).send().await;
            for policy_name in inline.map_err(|e| fail(answer(&e)))?.policy_names {
                let policy = self.client.get_group_policy().group_name(&name).policy_name(&policy_name).send().await;
                documents.push(document(&policy.map_err(|e| fail(answer(&e)))?.policy_document)?);
            }
            let attached = self.client.list_attached_group_policies().group_name(&name).send().await;
            for policy in attached.map_err(|e| fail(answer(&e)))?.attached_policies.unwrap_or_default() {
                documents.push(self.managed(policy.policy_arn.as_deref().unwrap_or_default()).await?);
            }
        }
        Ok(documents)
    }

    /// The default version of a managed policy.
    async fn managed(&self, arn: &str) -> Result<Value, ApiError> {
        let fail = |e: String| self.unavailable(&e);
        let policy = self.client.get_policy().policy_arn(arn).send().await.map_err(|e| fail(answer(&e)))?;
        let version = policy.policy.and_then(|p| p.default_version_id).unwrap_or_else(|| "v1".into());
        let version = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| fail(answer(&e)))?;
        document(&version.policy_version.and_then(|v| v.document).unwrap_or_default())
    }

    fn unavailable(&self, why: &str) -> ApiError {
        tracing::warn!("the IAM neighbour at {} could not be read: {why}", self.endpoint);
        ApiError::new(
            ErrorCode::ServiceUnavailableException,
            format!("The IAM neighbour at {} could not be read: {why}", self.endpoint),
        )
    }
}

/// A policy document as IAM returns it: URL-encoded JSON (some emulators send it plain).
fn document(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).or_else(|_| serde_json::from_str(&percent_decode(text))).map_err(|e| {
        ApiError::new(ErrorCode::AccessDeniedException, format!("A policy of the IAM neighbour is not JSON: {e}"))
    })
}
