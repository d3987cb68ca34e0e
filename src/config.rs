//! Command-line flags, each with an environment variable of the same meaning.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::protocol::identity::is_plausible_region;

/// codepipeline-local: a local emulator of AWS CodePipeline.
///
/// Point AWS SDKs, the aws CLI, Terraform or CDK at it (for example `AWS_ENDPOINT_URL_CODEPIPELINE=http://localhost:4566`).
/// Every flag can also be set with the environment variable shown.
#[derive(Debug, Clone, Parser)]
#[command(name = "codepipeline-local", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on. Use 0.0.0.0 to accept connections from other hosts or containers.
    #[arg(long, env = "CODEPIPELINE_LOCAL_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on; 0 picks a free port (the chosen address is logged).
    #[arg(long, env = "CODEPIPELINE_LOCAL_PORT", default_value_t = 4566)]
    pub port: u16,

    /// Region of requests that carry no SigV4 credential scope.
    #[arg(long, env = "CODEPIPELINE_LOCAL_DEFAULT_REGION", default_value = "us-east-1", value_parser = parse_region)]
    pub default_region: String,

    /// Account of requests whose access key id is not a 12-digit account id.
    #[arg(long, env = "CODEPIPELINE_LOCAL_DEFAULT_ACCOUNT", default_value = "000000000000", value_parser = parse_account)]
    pub default_account: String,

    /// Log filter: error, warn, info, debug or trace, or tracing directives such as `codepipeline_local=debug,hyper=warn`.
    /// The `Ready.` line is written at every level.
    #[arg(long, env = "CODEPIPELINE_LOCAL_LOG_LEVEL", default_value = "info", value_parser = parse_log_level)]
    pub log_level: String,

    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, env = "CODEPIPELINE_LOCAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Base URL of webhook URLs this server hands out (e.g. `http://codepipeline.test:4566`). When unset, the Host
    /// header of the request that creates the webhook is used.
    #[arg(long, env = "CODEPIPELINE_LOCAL_PUBLIC_URL", value_parser = parse_url)]
    pub public_url: Option<String>,

    /// How long a simulated action takes, in milliseconds (behaviour rules may set their own delay).
    #[arg(long, env = "CODEPIPELINE_LOCAL_ACTION_DURATION_MS", default_value_t = 200)]
    pub action_duration_ms: u64,

    /// A JSON file of behaviour rules to start with, in the format of PUT /_emulator/behaviors.
    #[arg(long, env = "CODEPIPELINE_LOCAL_BEHAVIORS")]
    pub behaviors: Option<std::path::PathBuf>,

    /// A JSON file of partner (ThirdParty) action types to register at start, in the format
    /// {"actionTypes": [...]} of POST /_emulator/third-party-action-types bodies.
    #[arg(long, env = "CODEPIPELINE_LOCAL_THIRD_PARTY_ACTION_TYPES")]
    pub third_party_action_types: Option<std::path::PathBuf>,

    /// A Lambda endpoint (e.g. LocalStack's http://localhost:4566). When set, Lambda invoke actions call the
    /// function named in their configuration there, asynchronously, and the function answers with
    /// PutJobSuccessResult or PutJobFailureResult as on AWS; LambdaInvoke rules of stage conditions call theirs
    /// synchronously. When unset, Lambda actions and rules are simulated.
    #[arg(long, env = "CODEPIPELINE_LOCAL_LAMBDA_ENDPOINT", value_parser = parse_http_url)]
    pub lambda_endpoint: Option<String>,

    /// The access key id Lambda invocations are signed with, when not the one of every neighbour
    /// (--aws-access-key-id).
    #[arg(long, env = "CODEPIPELINE_LOCAL_LAMBDA_ACCESS_KEY_ID")]
    pub lambda_access_key_id: Option<String>,

    /// Its secret access key, when not the one of every neighbour.
    #[arg(long, env = "CODEPIPELINE_LOCAL_LAMBDA_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub lambda_secret_access_key: Option<String>,

    /// Extra origins (e.g. `http://dashboard.example.test:8080`) whose web pages may call the control endpoints; the
    /// server's own origin and loopback origins always may. Comma-separated; `*` allows every origin.
    #[arg(long, env = "CODEPIPELINE_LOCAL_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Extra host names the control endpoints answer to (e.g. a docker-compose service name); loopback names, IP
    /// addresses, --host and the --public-url host always work. Comma-separated; `*` allows every name.
    #[arg(long, env = "CODEPIPELINE_LOCAL_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// An `http://` EventBridge API (LocalStack, moto's server, ...): every event is also sent there with PutEvents.
    #[arg(long, env = "CODEPIPELINE_LOCAL_EVENTBRIDGE_ENDPOINT", value_parser = parse_http_url)]
    pub eventbridge_endpoint: Option<String>,

    /// An `http://` SNS API: approvals with a NotificationArn publish AWS's approval-needed message there.
    #[arg(long, env = "CODEPIPELINE_LOCAL_SNS_ENDPOINT", value_parser = parse_http_url)]
    pub sns_endpoint: Option<String>,

    /// The event bus events are sent to.
    #[arg(long, env = "CODEPIPELINE_LOCAL_EVENT_BUS_NAME", default_value = "default")]
    pub event_bus_name: String,

    /// One LocalStack-style edge URL for every AWS service the emulator calls; a service's own flag, and its
    /// `AWS_ENDPOINT_URL_<SERVICE>` variable, win over it; the standard `AWS_ENDPOINT_URL` is used when this is unset.
    #[arg(long, env = "CODEPIPELINE_LOCAL_AWS_ENDPOINT", value_parser = parse_url)]
    pub aws_endpoint: Option<String>,

    /// The access key id calls to every neighbour are signed with (else AWS_ACCESS_KEY_ID, else `test`).
    #[arg(long, env = "CODEPIPELINE_LOCAL_AWS_ACCESS_KEY_ID")]
    pub aws_access_key_id: Option<String>,

    /// Its secret key (else AWS_SECRET_ACCESS_KEY, else `test`).
    #[arg(long, env = "CODEPIPELINE_LOCAL_AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,

    /// A PEM bundle of the certificates an `https://` neighbour with its own certificate is signed with (AWS's
    /// emulator serves HTTPS only); the SDK-standard `AWS_CA_BUNDLE` when not given. The system's roots are trusted
    /// too.
    #[arg(long, env = "CODEPIPELINE_LOCAL_AWS_CA_BUNDLE")]
    pub aws_ca_bundle: Option<std::path::PathBuf>,

    /// How long one call to a neighbour (S3 for artifacts) may take before it is given up and tried again (three
    /// attempts in all, with backoff); then the action fails, naming the neighbour.
    #[arg(long, env = "CODEPIPELINE_LOCAL_NEIGHBOUR_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub neighbour_timeout: Duration,

    /// How often S3 source actions with `PollForSourceChanges` poll their object in the S3 neighbour, on the emulator
    /// clock (AWS does not document its cadence; about a minute). A new version id starts the pipeline.
    #[arg(long, env = "CODEPIPELINE_LOCAL_POLL_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// Run CodeBuild actions' buildspecs and `Commands` actions' commands as processes on this host (with an S3
    /// neighbour for their artifacts). Off by default: it runs commands taken from pipeline definitions.
    #[arg(long, env = "CODEPIPELINE_LOCAL_RUN_BUILDS")]
    pub run_builds: bool,

    /// Local git repositories that source actions read: `NAME=PATH`, where NAME is a CodeStarSourceConnection
    /// action's `FullRepositoryId`, a CodeCommit action's `RepositoryName` or a GitHub action's `Owner/Repo`
    /// (repeatable; the variable takes a comma-separated list).
    #[arg(long = "git-repo", env = "CODEPIPELINE_LOCAL_GIT_REPOS", value_delimiter = ',')]
    pub git_repos: Vec<String>,

    /// Watch the `--git-repo` repositories: a new commit on a branch is a push (triggers and filters apply).
    #[arg(long, env = "CODEPIPELINE_LOCAL_WATCH_GIT_REPOS")]
    pub watch_git_repos: bool,

    /// Start CodeBuild actions on the CodeBuild neighbour, which runs them (LocalStack's paid tier, floci), with the
    /// pipeline's artifacts in the S3 neighbour, instead of running them here.
    #[arg(long, env = "CODEPIPELINE_LOCAL_DELEGATE_BUILDS")]
    pub delegate_builds: bool,

    /// A directory of init hooks: executable scripts (and `.sh` files) in its `boot.d`, `start.d`, `ready.d` and
    /// `shutdown.d` run in name order at those moments, with `AWS_ENDPOINT_URL` pointing here, as LocalStack's
    /// `/etc/localstack/init` (which is read too).
    #[arg(long, env = "CODEPIPELINE_LOCAL_INIT_DIR")]
    pub init_dir: Option<std::path::PathBuf>,

    /// Check every AWS API request's SigV4 signature against the keys of `--credentials` (and of the IAM neighbour),
    /// as AWS does (off by default: any credentials work). A verified request acts in its key's account.
    #[arg(long, env = "CODEPIPELINE_LOCAL_VERIFY_SIGNATURES")]
    pub verify_signatures: bool,

    /// Allow a verified request only as its principal's identity-based policies allow it, as IAM does (implies
    /// `--verify-signatures`; policies from `--credentials` or the IAM neighbour).
    #[arg(long, env = "CODEPIPELINE_LOCAL_ENFORCE_IAM")]
    pub enforce_iam: bool,

    /// The principals whose keys `--verify-signatures` knows: a JSON file
    /// `{"principals": [{"accessKeyId", "secretAccessKey", "account", "arn", "sessionToken"?, "policies"?, "admin"?}]}`.
    #[arg(long, env = "CODEPIPELINE_LOCAL_CREDENTIALS")]
    pub credentials: Option<std::path::PathBuf>,

    /// LocalStack's init directory, read after `--init-dir` when it exists (`None`: not read, as by an embedded
    /// emulator, which should not run a machine's scripts).
    #[arg(skip = Some(std::path::PathBuf::from("/etc/localstack/init")))]
    pub localstack_init_dir: Option<std::path::PathBuf>,

    /// Keep each build's working directory after it ends (under the system's temporary directory), for debugging.
    #[arg(long, env = "CODEPIPELINE_LOCAL_KEEP_BUILD_DIRS")]
    pub keep_build_dirs: bool,

    /// The SDK-standard variables of the process (endpoints, credentials), read at start by the binary.
    #[arg(skip)]
    pub sdk_environment: SdkEnvironment,

    /// How many events `GET /_emulator/events` keeps (the newest); 0 keeps none (the live stream still works).
    #[arg(long, env = "CODEPIPELINE_LOCAL_EVENT_HISTORY", default_value_t = 10_000)]
    pub event_history: usize,

    /// Keep the state in an SQLite database in this directory (created if missing), so that it survives restarts and
    /// crashes; running executions resume. Without it, state lives in memory only.
    #[arg(long, env = "CODEPIPELINE_LOCAL_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,

    /// With --data-dir: wait for the disk at every commit, so that even a power loss loses no answered change
    /// (slower writes). Without it a killed server loses nothing, a power loss can lose the last moments.
    #[arg(long, env = "CODEPIPELINE_LOCAL_FULL_SYNC")]
    pub full_sync: bool,

    /// With --data-dir: the most the database may grow to, in bytes; changes beyond it fail with a retryable 503
    /// ServiceUnavailableException, as on a full disk.
    #[arg(long, env = "CODEPIPELINE_LOCAL_MAX_DATA_BYTES")]
    pub max_data_bytes: Option<u64>,

    /// A state document (as `GET /_emulator/state` returns) to start from. With --data-dir it seeds only a new,
    /// empty database; a database that holds state keeps it.
    #[arg(long, env = "CODEPIPELINE_LOCAL_STATE_FILE")]
    pub state_file: Option<std::path::PathBuf>,

    /// Take a webhook delivery's client address from its `X-Forwarded-For` header (the first address) when checking
    /// a webhook's `AllowedIPRange`. Only behind a proxy you trust: anyone can send the header.
    #[arg(long, env = "CODEPIPELINE_LOCAL_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// How long a client may take to send a complete request head, from its first byte (e.g. 30s, 500ms).
    #[arg(long, env = "CODEPIPELINE_LOCAL_HEADER_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// How long a request body may stall (no data arriving) before the request is refused and its connection closed.
    #[arg(long, env = "CODEPIPELINE_LOCAL_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// How long an open connection may wait for its next request before it is closed.
    #[arg(long, env = "CODEPIPELINE_LOCAL_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// The largest state document `PUT /_emulator/state` accepts, in bytes (it is read whole before it is
    /// checked; 64 MiB by default).
    #[arg(long, env = "CODEPIPELINE_LOCAL_MAX_IMPORT_BYTES", default_value_t = 64 << 20, value_parser = parse_count)]
    pub max_import_bytes: usize,

    /// How many executions each pipeline keeps: beyond it the oldest finished ones are let go, from memory and
    /// from the data directory (never a running one, nor one GetPipelineState still shows as a stage's latest).
    #[arg(long, env = "CODEPIPELINE_LOCAL_MAX_EXECUTIONS_PER_PIPELINE", default_value_t = 1000, value_parser = parse_count)]
    pub max_executions_per_pipeline: usize,

    /// How long a response may wait for a client that stopped reading (a stalled event stream reader) before its
    /// connection is closed.
    #[arg(long, env = "CODEPIPELINE_LOCAL_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// On SIGTERM or SIGINT, how long requests being answered may take to finish before every connection is closed.
    #[arg(long, env = "CODEPIPELINE_LOCAL_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Instead of serving, check that a server on --host/--port answers GET /health, and exit 0 if it does
    /// (for container health checks in images without curl). An action, not a setting: it has no variable.
    #[arg(long)]
    pub check_health: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    /// The defaults of every flag, ignoring the environment (for tests and embedding).
    fn default() -> Config {
        Config {
            host: "127.0.0.1".to_string(),
            port: 4566,
            default_region: "us-east-1".to_string(),
            default_account: "000000000000".to_string(),
            log_level: "info".to_string(),
            log_format: LogFormat::Text,
            public_url: None,
            action_duration_ms: 200,
            behaviors: None,
            third_party_action_types: None,
            lambda_endpoint: None,
            lambda_access_key_id: None,
            lambda_secret_access_key: None,
            check_health: false,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            trust_forwarded_for: false,
            event_history: 10_000,
            data_dir: None,
            full_sync: false,
            max_data_bytes: None,
            state_file: None,
            eventbridge_endpoint: None,
            sns_endpoint: None,
            event_bus_name: "default".to_string(),
            aws_endpoint: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_ca_bundle: None,
            sdk_environment: SdkEnvironment::default(),
            neighbour_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(60),
            run_builds: false,
            keep_build_dirs: false,
            git_repos: Vec::new(),
            watch_git_repos: false,
            delegate_builds: false,
            init_dir: None,
            verify_signatures: false,
            enforce_iam: false,
            credentials: None,
            localstack_init_dir: Some(std::path::PathBuf::from("/etc/localstack/init")),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_executions_per_pipeline: 1000,
            max_import_bytes: 64 << 20,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

fn parse_region(value: &str) -> Result<String, String> {
    if is_plausible_region(value) {
        Ok(value.to_string())
    } else {
        Err(format!("'{value}' is not a region name (lowercase letters, digits and dashes, e.g. us-east-1)"))
    }
}

fn parse_url(value: &str) -> Result<String, String> {
    let trimmed = value.trim_end_matches('/');
    let rest = trimmed.strip_prefix("http://").or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(trimmed.to_string()),
        _ => Err(format!("'{value}' is not an http:// or https:// URL")),
    }
}

/// A plain-HTTP URL: the emulator's outgoing client speaks no TLS (a local Lambda endpoint needs none).
fn parse_http_url(value: &str) -> Result<String, String> {
    match parse_url(value) {
        Ok(url) if url.starts_with("http://") => Ok(url),
        _ => Err(format!("'{value}' is not an http:// URL (https is not supported for the Lambda endpoint)")),
    }
}

/// The level names a log filter may be, alone or after `target=`.
const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// A level name, or comma-separated tracing directives each naming its level (`target=level`). A bare word that is
/// no level would be read by tracing as a target name and silence every other line, so it is refused.
fn parse_log_level(value: &str) -> Result<String, String> {
    let refuse = || {
        format!(
            "'{value}' is not a log level: use one of error, warn, info, debug, trace (or off), or directives such as \
             codepipeline_local=debug,hyper=warn"
        )
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(refuse());
    }
    for directive in trimmed.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            Some(_) => return Err(refuse()),
            None => directive,
        };
        if !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(level.trim())) {
            return Err(refuse());
        }
        directive.parse::<tracing_subscriber::filter::Directive>().map_err(|e| format!("{}: {e}", refuse()))?;
    }
    Ok(trimmed.to_string())
}

/// Whether log lines get ANSI colours: only on a terminal, and never when `NO_COLOR` is set to anything but the
/// empty string (no-color.org).
pub fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// A duration: a number of seconds (`30`, `0.5`) or a number with units (`30s`, `500ms`, `2m`).
/// A count of at least 1.
fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) | Err(_) => Err(format!("'{text}' is not a whole number of at least 1")),
        Ok(n) => Ok(n),
    }
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let trimmed = value.trim();
    let parsed = match trimmed.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string()),
        Err(_) => humantime::parse_duration(trimmed).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err(format!("'{value}' is not a positive duration")),
        Err(e) => Err(format!("'{value}' is not a duration such as 30s, 500ms or 2m: {e}")),
    }
}

fn parse_account(value: &str) -> Result<String, String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        Err(format!("'{value}' is not an AWS account id (12 digits)"))
    }
}

/// What the process environment says, as the AWS SDKs read it. Read once at start ([`SdkEnvironment::from_process`]);
/// empty in a [`Config`] made in code (`Config::default()`), so that tests are not steered by the environment they run in.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SdkEnvironment {
    /// `AWS_ENDPOINT_URL` and every `AWS_ENDPOINT_URL_<SERVICE>`, by variable name.
    pub endpoints: BTreeMap<String, String>,
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`.
    pub ignore_endpoints: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// `AWS_CA_BUNDLE`.
    pub ca_bundle: Option<String>,
}

impl std::fmt::Debug for SdkEnvironment {
    /// Never the secret key or the session token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdkEnvironment")
            .field("endpoints", &self.endpoints)
            .field("ignore_endpoints", &self.ignore_endpoints)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl SdkEnvironment {
    /// The variables of this process.
    pub fn from_process() -> SdkEnvironment {
        SdkEnvironment::from_variables(std::env::vars())
    }

    /// The variables among `variables` (name, value).
    pub fn from_variables(variables: impl IntoIterator<Item = (String, String)>) -> SdkEnvironment {
        let mut environment = SdkEnvironment::default();
        for (name, value) in variables {
            let value = value.trim().to_string();
            if value.is_empty() {
                continue;
            }
            match name.as_str() {
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS" => {
                    environment.ignore_endpoints = value.eq_ignore_ascii_case("true")
                }
                "AWS_ACCESS_KEY_ID" => environment.access_key_id = Some(value),
                "AWS_SECRET_ACCESS_KEY" => environment.secret_access_key = Some(value),
                "AWS_SESSION_TOKEN" => environment.session_token = Some(value),
                "AWS_CA_BUNDLE" => environment.ca_bundle = Some(value),
                _ if name == "AWS_ENDPOINT_URL" || name.starts_with("AWS_ENDPOINT_URL_") => {
                    environment.endpoints.insert(name, value);
                }
                _ => {}
            }
        }
        environment
    }
}

/// Splits a `host[:port]` authority (a `Host` header, or the authority of an origin) into its lowercase host and its
/// port. Anything else (a path, user information, a query, spaces) is refused.
pub fn split_authority(text: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        };
        let valid_name = (1..=253).contains(&host.len())
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid_name {
            return None;
        }
        (host, port)
    };
    let port = match port {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The host name an `--allowed-hosts` entry allows: the entry itself, or, for `host:port`, its host (a `Host` header
/// names a host whatever the port).
pub fn allowed_name(entry: &str) -> Option<String> {
    split_authority(entry.trim()).map(|(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_parse_and_default() {
        Config::command().debug_assert();
        let config = Config::try_parse_from(["codepipeline-local"]).expect("defaults parse");
        assert_eq!(config.port, Config::default().port);
        let config = Config::try_parse_from([
            "codepipeline-local",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--default-region",
            "eu-west-1",
            "--default-account",
            "123456789012",
            "--log-format",
            "json",
        ])
        .expect("flags parse");
        assert_eq!(config.host, "0.0.0.0");
        assert_eq!(config.port, 0);
        assert_eq!(config.default_region, "eu-west-1");
        assert_eq!(config.default_account, "123456789012");
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Config::try_parse_from(["x", "--default-account", "12345"]).is_err());
        assert!(Config::try_parse_from(["x", "--default-region", "US East"]).is_err());
        assert!(Config::try_parse_from(["x", "--log-format", "xml"]).is_err());
        assert!(Config::try_parse_from(["x", "--port", "70000"]).is_err());
        assert!(Config::try_parse_from(["x", "--public-url", "ftp://x"]).is_err());
        let config = Config::try_parse_from(["x", "--public-url", "https://hooks.example.test/"]).expect("valid");
        assert_eq!(config.public_url.as_deref(), Some("https://hooks.example.test"));
    }

    #[test]
    fn log_levels_are_levels_or_directives_with_levels() {
        for ok in ["info", "DEBUG", "warn", "off", "codepipeline_local=debug", "codepipeline_local=debug,hyper=warn"] {
            assert!(Config::try_parse_from(["x", "--log-level", ok]).is_ok(), "{ok}");
        }
        for bad in ["verbose", "", "infoo", "codepipeline_local", "=debug", "a=loud", "info,chatty"] {
            assert!(Config::try_parse_from(["x", "--log-level", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_take_units_or_seconds() {
        let config =
            Config::try_parse_from(["x", "--header-timeout", "500ms", "--idle-timeout", "2m", "--body-timeout", "1.5"])
                .expect("durations parse");
        assert_eq!(config.header_timeout, Duration::from_millis(500));
        assert_eq!(config.idle_timeout, Duration::from_secs(120));
        assert_eq!(config.body_timeout, Duration::from_millis(1500));
        assert_eq!(config.shutdown_timeout, Config::default().shutdown_timeout);
        for bad in ["0", "-1", "soon", "10 parsecs", "NaN"] {
            assert!(Config::try_parse_from(["x", "--shutdown-timeout", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))), "an empty NO_COLOR does not count");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None), "files and pipes get no colour codes");
    }

    #[test]
    fn help_documents_every_flag_and_variable() {
        let help = Config::command().render_long_help().to_string();
        for needle in [
            "--host",
            "--port",
            "--default-region",
            "--default-account",
            "--log-level",
            "--log-format",
            "CODEPIPELINE_LOCAL_HOST",
            "CODEPIPELINE_LOCAL_PORT",
            "CODEPIPELINE_LOCAL_DEFAULT_REGION",
            "CODEPIPELINE_LOCAL_DEFAULT_ACCOUNT",
            "CODEPIPELINE_LOCAL_LOG_LEVEL",
            "CODEPIPELINE_LOCAL_LOG_FORMAT",
            "--public-url",
            "CODEPIPELINE_LOCAL_PUBLIC_URL",
            "--action-duration-ms",
            "CODEPIPELINE_LOCAL_ACTION_DURATION_MS",
            "--behaviors",
            "CODEPIPELINE_LOCAL_BEHAVIORS",
            "--allowed-origins",
            "CODEPIPELINE_LOCAL_ALLOWED_ORIGINS",
            "--allowed-hosts",
            "CODEPIPELINE_LOCAL_ALLOWED_HOSTS",
            "--header-timeout",
            "CODEPIPELINE_LOCAL_HEADER_TIMEOUT",
            "--body-timeout",
            "CODEPIPELINE_LOCAL_BODY_TIMEOUT",
            "--idle-timeout",
            "CODEPIPELINE_LOCAL_IDLE_TIMEOUT",
            "--shutdown-timeout",
            "CODEPIPELINE_LOCAL_SHUTDOWN_TIMEOUT",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}");
        }
    }
}
