//! The AWS services the emulator calls ("neighbours"): where each one is, and the credentials calls are signed with.
//!
//! An endpoint comes, for each service, from the first of: the service's own flag (`--lambda-endpoint`,
//! `--eventbridge-endpoint`, `--sns-endpoint`), the SDK-standard `AWS_ENDPOINT_URL_<SERVICE>` variable, `--aws-endpoint`,
//! and the SDK-standard `AWS_ENDPOINT_URL` (the two variables are ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`
//! is `true`, as the SDKs do). Users often export `AWS_ENDPOINT_URL=http://localhost:4566` for their own clients, which
//! is this server: an endpoint that is this server is no neighbour, and that service stays simulated.
//!
//! Credentials: `--aws-access-key-id` and `--aws-secret-access-key`, else the standard `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, else `test`/`test` (what LocalStack and moto accept). The
//! Lambda-specific flags still set Lambda's own.

use std::collections::BTreeMap;

use crate::config::Config;
#[cfg(test)]
use crate::config::SdkEnvironment;
pub use crate::engine::providers::Credentials;

/// A service the emulator may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    Lambda,
    EventBridge,
    Sns,
    S3,
    CloudFormation,
    Ecs,
    Ecr,
    CodeBuild,
    Logs,
    Ssm,
    SecretsManager,
    /// Access keys and policies, for `--verify-signatures` and `--enforce-iam`.
    Iam,
}

impl Service {
    /// Every service, in the order the start-up log lists them.
    pub const ALL: [Service; 12] = [
        Service::Lambda,
        Service::EventBridge,
        Service::Sns,
        Service::S3,
        Service::CloudFormation,
        Service::Ecs,
        Service::Ecr,
        Service::CodeBuild,
        Service::Logs,
        Service::Ssm,
        Service::SecretsManager,
        Service::Iam,
    ];

    /// The `serviceId` of the service's model, which names its endpoint variable.
    pub fn service_id(self) -> &'static str {
        match self {
            Service::Lambda => "Lambda",
            Service::EventBridge => "EventBridge",
            Service::Sns => "SNS",
            Service::S3 => "S3",
            Service::CloudFormation => "CloudFormation",
            Service::Ecs => "ECS",
            Service::Ecr => "ECR",
            Service::CodeBuild => "CodeBuild",
            Service::Logs => "CloudWatch Logs",
            Service::Ssm => "SSM",
            Service::SecretsManager => "Secrets Manager",
            Service::Iam => "IAM",
        }
    }

    /// `AWS_ENDPOINT_URL_<SERVICE>`: the service id upper-cased, spaces as `_`.
    pub fn variable(self) -> String {
        format!("AWS_ENDPOINT_URL_{}", self.service_id().to_ascii_uppercase().replace(' ', "_"))
    }

    /// Whether its actions read or write artifacts, and so act for real only with an S3 neighbour too (CloudWatch
    /// Logs, SSM and Secrets Manager serve builds, which run with `--run-builds` and an S3 neighbour).
    pub fn needs_artifacts(self) -> bool {
        matches!(
            self,
            Service::CloudFormation
                | Service::Ecs
                | Service::Ecr
                | Service::Logs
                | Service::Ssm
                | Service::SecretsManager
                | Service::CodeBuild
        )
    }
}

/// Where a service's endpoint came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    /// The flag or variable that named it.
    pub from: String,
}

/// The neighbours of this server.
#[derive(Debug, Clone)]
pub struct Neighbours {
    endpoints: BTreeMap<Service, Endpoint>,
    /// Services whose configured endpoint is this server itself, or one it cannot call: they stay simulated.
    skipped: Vec<(Service, Endpoint, &'static str)>,
    /// For every neighbour.
    pub credentials: Credentials,
    /// For Lambda, when its own flags say so.
    pub lambda_credentials: Credentials,
}

impl Neighbours {
    /// The neighbours `config` (and the environment it read at start) names.
    pub fn resolve(config: &Config) -> Neighbours {
        let environment = &config.sdk_environment;
        let variable = |name: &str| (!environment.ignore_endpoints).then(|| environment.endpoints.get(name)).flatten();
        let mut endpoints = BTreeMap::new();
        let mut skipped = Vec::new();
        for service in Service::ALL {
            let own_flag = match service {
                Service::Lambda => config.lambda_endpoint.as_ref().map(|u| (u, "--lambda-endpoint")),
                Service::EventBridge => config.eventbridge_endpoint.as_ref().map(|u| (u, "--eventbridge-endpoint")),
                Service::Sns => config.sns_endpoint.as_ref().map(|u| (u, "--sns-endpoint")),
                _ => None,
            };
            let own_variable = service.variable();
            let found = own_flag
                .map(|(url, from)| (url.clone(), from.to_string()))
                .or_else(|| variable(&own_variable).map(|url| (url.clone(), own_variable.clone())))
                .or_else(|| config.aws_endpoint.as_ref().map(|url| (url.clone(), "--aws-endpoint".to_string())))
                .or_else(|| variable("AWS_ENDPOINT_URL").map(|url| (url.clone(), "AWS_ENDPOINT_URL".to_string())));
            let Some((url, from)) = found else { continue };
            let endpoint = Endpoint { url: url.trim_end_matches('/').to_string(), from };
            if is_this_server(&endpoint.url, config) {
                skipped.push((service, endpoint, "it is this server"));
            } else if !endpoint.url.starts_with("http://") && !endpoint.url.starts_with("https://") {
                skipped.push((service, endpoint, "it is not an http:// or https:// URL"));
            } else {
                endpoints.insert(service, endpoint);
            }
        }
        let access_key_id = config.aws_access_key_id.clone().or_else(|| environment.access_key_id.clone());
        let secret_access_key = config.aws_secret_access_key.clone().or_else(|| environment.secret_access_key.clone());
        // A session token belongs to the key pair it was issued with: only with the environment's own keys.
        let session_token = match (&config.aws_access_key_id, &environment.access_key_id) {
            (None, Some(_)) => environment.session_token.clone(),
            _ => None,
        };
        let credentials = Credentials {
            access_key_id: access_key_id.unwrap_or_else(|| "test".to_string()),
            secret_access_key: secret_access_key.unwrap_or_else(|| "test".to_string()),
            session_token,
        };
        let lambda_credentials = match (&config.lambda_access_key_id, &config.lambda_secret_access_key) {
            (None, None) => credentials.clone(),
            (key, secret) => Credentials {
                access_key_id: key.clone().unwrap_or_else(|| credentials.access_key_id.clone()),
                secret_access_key: secret.clone().unwrap_or_else(|| credentials.secret_access_key.clone()),
                session_token: None,
            },
        };
        Neighbours { endpoints, skipped, credentials, lambda_credentials }
    }

    /// Whether some neighbour is called over TLS.
    pub fn tls(&self) -> bool {
        self.endpoints.values().any(|e| e.url.starts_with("https://"))
    }

    /// The endpoint of `service`, if the emulator calls it.
    pub fn endpoint(&self, service: Service) -> Option<&str> {
        self.endpoints.get(&service).map(|e| e.url.as_str())
    }

    /// What the start-up log says of the neighbours: one line each for the services that act for real, those that
    /// wait for an S3 neighbour, and those whose endpoint is skipped (and why).
    ///
    /// `own_store`: artifacts live in the emulator's own store (builds run without an S3 neighbour), so the
    /// services builds use act without S3. `verifying`: requests are verified, which is all IAM serves.
    pub fn describe(&self, own_store: bool, verifying: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let list = |services: &mut dyn Iterator<Item = (&Service, &Endpoint)>| {
            services
                .map(|(s, e)| format!("{} at {} ({})", s.service_id(), e.url, e.from))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let artifacts = self.endpoints.contains_key(&Service::S3);
        let serves_builds =
            |s: &Service| matches!(s, Service::CodeBuild | Service::Logs | Service::Ssm | Service::SecretsManager);
        let acts = |s: &Service| artifacts || !s.needs_artifacts() || (own_store && serves_builds(s));
        let used = |s: &Service| *s != Service::Iam || verifying;
        let acting = list(&mut self.endpoints.iter().filter(|(s, _)| acts(s) && used(s)));
        if !acting.is_empty() {
            lines.push(format!("acting for real on neighbours: {acting}"));
        }
        let orphans = list(&mut self.endpoints.iter().filter(|(s, _)| !acts(s)));
        if !orphans.is_empty() {
            lines.push(format!(
                "neighbours whose actions stay simulated until an S3 neighbour holds the artifacts: {orphans}"
            ));
        }
        // One line per skipped endpoint, naming every service it would have served.
        let mut skipped: Vec<(&Endpoint, &str, Vec<&str>)> = Vec::new();
        for (service, endpoint, why) in &self.skipped {
            match skipped.iter_mut().find(|(e, w, _)| *e == endpoint && w == why) {
                Some((_, _, services)) => services.push(service.service_id()),
                None => skipped.push((endpoint, why, vec![service.service_id()])),
            }
        }
        for (endpoint, why, services) in skipped {
            lines.push(format!(
                "{} from {} is not called, since {why}: {} stay simulated",
                endpoint.url,
                endpoint.from,
                services.join(", ")
            ));
        }
        lines
    }
}

/// Whether `url` is this server: a loopback or wildcard host (or `--host`) on the port it listens on.
fn is_this_server(url: &str, config: &Config) -> bool {
    let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse::<u16>().ok()),
        _ => (authority, Some(if url.starts_with("https://") { 443 } else { 80 })),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let local = matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1" | "0.0.0.0" | "::")
        || host.ends_with(".localhost")
        || host == config.host.to_ascii_lowercase();
    local && port == Some(config.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(pairs: &[(&str, &str)]) -> SdkEnvironment {
        SdkEnvironment::from_variables(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn variables_are_named_from_the_service_id() {
        assert_eq!(Service::S3.variable(), "AWS_ENDPOINT_URL_S3");
        assert_eq!(Service::Logs.variable(), "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS");
        assert_eq!(Service::SecretsManager.variable(), "AWS_ENDPOINT_URL_SECRETS_MANAGER");
    }

    #[test]
    fn a_service_flag_wins_then_its_variable_then_the_common_flag_then_the_common_variable() {
        let config = Config {
            sns_endpoint: Some("http://sns:1".into()),
            aws_endpoint: Some("http://edge:2".into()),
            sdk_environment: environment(&[
                ("AWS_ENDPOINT_URL", "http://global:3"),
                ("AWS_ENDPOINT_URL_SNS", "http://sns-variable:4"),
                ("AWS_ENDPOINT_URL_S3", "http://s3:5/"),
            ]),
            ..Config::default()
        };
        let neighbours = Neighbours::resolve(&config);
        assert_eq!(neighbours.endpoint(Service::Sns), Some("http://sns:1"));
        assert_eq!(neighbours.endpoint(Service::S3), Some("http://s3:5"));
        assert_eq!(neighbours.endpoint(Service::Lambda), Some("http://edge:2"));
        let without_flag = Config { aws_endpoint: None, ..config.clone() };
        assert_eq!(Neighbours::resolve(&without_flag).endpoint(Service::Ecs), Some("http://global:3"));
        let ignored = Config {
            sdk_environment: SdkEnvironment { ignore_endpoints: true, ..without_flag.sdk_environment.clone() },
            ..without_flag
        };
        let neighbours = Neighbours::resolve(&ignored);
        assert_eq!(neighbours.endpoint(Service::S3), None);
        assert_eq!(neighbours.endpoint(Service::Sns), Some("http://sns:1"), "flags are never ignored");
    }

    #[test]
    fn this_server_is_no_neighbour() {
        let config = Config {
            port: 4566,
            sdk_environment: environment(&[
                ("AWS_ENDPOINT_URL", "http://localhost:4566"),
                ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000"),
            ]),
            ..Config::default()
        };
        let neighbours = Neighbours::resolve(&config);
        assert_eq!(neighbours.endpoint(Service::Lambda), None);
        assert_eq!(neighbours.endpoint(Service::S3), Some("http://127.0.0.1:5000"));
        let described = neighbours.describe(false, false).join("\n");
        assert!(
            described.contains(
                "http://localhost:4566 from AWS_ENDPOINT_URL is not called, since it is this server: Lambda, \
                 EventBridge, SNS, CloudFormation"
            ),
            "{described}"
        );
        for url in ["http://[::1]:4566/", "http://0.0.0.0:4566", "http://app.localhost:4566"] {
            assert!(is_this_server(url, &config), "{url}");
        }
        for url in ["http://localhost:4567", "http://localstack:4566", "http://localhost"] {
            assert!(!is_this_server(url, &config), "{url}");
        }
    }

    #[test]
    fn credentials_come_from_the_flags_else_the_standard_variables_else_test() {
        let from_environment = Config {
            sdk_environment: environment(&[
                ("AWS_ACCESS_KEY_ID", "AKIAENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
                ("AWS_SESSION_TOKEN", "token"),
            ]),
            ..Config::default()
        };
        let neighbours = Neighbours::resolve(&from_environment);
        assert_eq!(neighbours.credentials.access_key_id, "AKIAENV");
        assert_eq!(neighbours.credentials.session_token.as_deref(), Some("token"));
        assert_eq!(neighbours.lambda_credentials, neighbours.credentials);
        let flagged = Config {
            aws_access_key_id: Some("AKIAFLAG".into()),
            aws_secret_access_key: Some("flag-secret".into()),
            lambda_access_key_id: Some("AKIALAMBDA".into()),
            ..from_environment
        };
        let neighbours = Neighbours::resolve(&flagged);
        assert_eq!(neighbours.credentials.access_key_id, "AKIAFLAG");
        assert_eq!(neighbours.credentials.session_token, None, "a token goes only with its own keys");
        assert_eq!(neighbours.lambda_credentials.access_key_id, "AKIALAMBDA");
        assert_eq!(neighbours.lambda_credentials.secret_access_key, "flag-secret");
        let debug = format!("{:?}", neighbours.credentials);
        assert!(!debug.contains("flag-secret"), "{debug}");
        let plain = Neighbours::resolve(&Config::default());
        assert_eq!(
            (plain.credentials.access_key_id.as_str(), plain.credentials.secret_access_key.as_str()),
            ("test", "test")
        );
    }
}
