//! # codepipeline-local
//!
//! A local emulator of AWS CodePipeline: one small server that speaks the real AWS JSON 1.1 wire protocol, so AWS
//! SDKs, the aws CLI, Terraform and CDK can be pointed at it.
//!
//! ## Layout
//!
//! ```text
//! main.rs        thin binary: flags, logging, signals
//! config         flags and their CODEPIPELINE_LOCAL_* environment variables
//! server         HTTP: router, request ids, the AWS JSON endpoint, start-up
//! transport      connections: the accept loop, header, body and idle time bounds, a bounded graceful shutdown
//! protocol/      AWS JSON 1.1, knowing nothing of pipelines
//!   router         X-Amz-Target -> Operation (one enum, 44 variants)
//!   body           bounded body reads, content type, JSON parsing
//!   model          the embedded service model (fixtures/model/), parsed once
//!   validate       model-driven input validation in AWS's message format
//!   identity       account and region from SigV4 credentials
//!   error          error codes and the one place errors become responses
//!   pagination     sealed nextToken values and page cutting
//! operations/    one function per CodePipeline operation, behind one exhaustive dispatch match; shared lookups and
//!                errors in mod; operations that change a running pipeline go through Engine::apply
//!   pipelines      CreatePipeline ... ListPipelines        structure       pipeline structural validation
//!   action_types   action and rule types                  tags            tags by ARN
//!   webhooks       webhook definitions                    jobs            custom and partner job workers
//!   executions     start, stop, get, list executions      pipeline_state  GetPipelineState
//!   action_history ListActionExecutions, history paging   approvals       PutApprovalResult
//!   stages         transitions, retry, rollback           revisions       PutActionRevision, deploy targets
//!   conditions     OverrideStageCondition, ListRuleExecutions, condition states
//!   urls           console links from action type URL templates (never a secret)
//! state/         the in-memory model, partitioned by (account, region), and the emulator clock; a pipeline version
//!                is a shared Definition (declaration, where its secrets are, compiled patterns)
//!   declaration    typed PipelineDeclaration and friends  catalogue   built-in action/rule types (fixtures/)
//!   execution      executions, stage, action, condition and rule runs, transitions (runtime state of each pipeline)
//!   sources        the emulated world source actions read: S3 object versions, ECR tags, git heads and commits
//!   tracked        containers that record what was changed in them, so a save writes exactly the touched rows
//!   document       the state as data: the export/import document, whose pieces are also the database's rows
//!   commit         group commit: writes queue a ticket, one thread saves the rows many writes marked at once,
//!                  answers wait for their commit; a failed commit fails its writes and reloads their partitions
//! storage        the data directory (--data-dir): SQLite, opened and checked at start, written by `commit`
//! engine/        the one writer of running pipelines: Engine::apply takes a Command (command), the scheduler task and
//!                timers (mod), the pure step function (step), stage conditions (conditions), action and rule
//!                providers (providers, rules; DeploymentWindow time zones in time_zone), behaviour rules, variable
//!                resolution, jobs and their data (jobs), Lambda actions and rules as state (lambda), the id
//!                source (ids), the EventBridge events of every state change and their hub (events); and the IO
//!                at its edge, in tasks the engine never waits for: the Lambda invoker (invoker), event delivery
//!                to EventBridge (delivery), approval notifications to SNS (notifications), sharing one signed,
//!                retried HTTP call (outbound)
//! control/       the emulator's own endpoints (/health, /_localstack/health, /_emulator/...)
//!   guard          what keeps /_emulator/* from web pages: JSON content type, Origin and Host checks, bounded bodies
//!   ui             the dashboard: assets/dashboard/ embedded and served at /_emulator/ui/ with a same-origin CSP
//! triggers/      what starts pipelines from outside the API, each start a Command::Start through Engine::apply
//!   webhooks       deliveries to V1 webhook URLs: HMAC or IP authentication, JSONPath filters
//!   git            pushes and pull requests (neutral, or GitHub/GitLab/Bitbucket deliveries) against V2 triggers
//!   glob           AWS's trigger glob syntax         source_changes  S3, ECR and CodeCommit changes
//! ```
//!
//! A request flows `transport` (time bounds) -> `server` -> `protocol::router` -> `protocol::body` ->
//! `protocol::identity` -> `operations::dispatch` (model validation, typed input) -> an operation over `state` -> a
//! reply (whose empty form, `{}` or no body, dispatch takes from the model) or an `ApiError`, which
//! `protocol::error` renders. An operation that changes a running pipeline goes on -> `Engine::apply` (a `Command`,
//! under the partition lock) -> the pure step -> advance -> the state changes become events (history, live stream,
//! EventBridge, SNS) -> timers and the Lambda invoker; a refusal comes back typed and the operation words it. Every
//! write ends, still under the partition lock, by queueing a ticket for `store::commit` (with a data directory),
//! which saves the rows it marked; `server` holds the answer until that commit (and any still-pending one the
//! request read) is done.

#![forbid(unsafe_code)]
// Nothing a client sends may panic the server: no unwrap, expect or panic outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod config;
pub mod control;
pub mod engine;
pub mod operations;
pub mod protocol;
pub mod server;
pub mod state;
pub mod store;
pub mod transport;
pub mod triggers;

pub use app::AppState;
pub use config::Config;
pub use server::{RunningServer, app, run};
