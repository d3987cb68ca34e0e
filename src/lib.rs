//! # codepipeline-local
//!
//! A local emulator of AWS CodePipeline: one small server that speaks the real AWS JSON 1.1 wire protocol, so AWS
//! SDKs, the aws CLI, Terraform and CDK can be pointed at it.
//!
//! ## Layout
//!
//! From the top floor down; a module imports only from the floors below it (the one exception: `state`'s runtime
//! can only be written with the engine's zero-sized `Writer` token).
//!
//! ```text
//! main.rs        thin binary: flags, logging, signals
//! server         HTTP: the front door (POST / straight to the AWS JSON handler; the rest through the router), request
//!                ids, the durability wait, start-up (init hooks, the local git watcher) and graceful shutdown
//! triggers/      what starts pipelines from outside the API, each delivery decided and carried out in one write
//!   webhooks       deliveries to V1 webhook URLs: HMAC or IP authentication, JSONPath filters
//!   git/           pushes and pull requests against V2 triggers (mod); GitHub/GitLab/Bitbucket payloads (payloads);
//!                  new commits in watched local repositories as pushes (watch)
//!   source_changes S3, ECR and CodeCommit changes
//! control/       the emulator's own endpoints (/health, /_localstack/health, /_emulator/...)
//!   guard          what keeps /_emulator/* from web pages: JSON content type, Origin and Host checks, bounded bodies;
//!                  with --verify-signatures, the signature and the Caller it verifies (its own account, or any if admin)
//!   artifacts      artifact downloads (from the S3 neighbour or the emulator's own store), for the dashboard
//!   builds         a build's log, read or followed live
//!   ui             the dashboard: assets/dashboard/ embedded and served at /_emulator/ui/ with a same-origin CSP
//! app/           the composition root: AppState, start-up (store, engine, partner types from the start-up file in
//!                partners), the scheduler's lifetime; server, control and triggers build on it; a state document
//!                held to what the API accepts and to what the store can read back before it is imported (import);
//!                where each AWS service the emulator calls is, and its credentials (neighbours); LocalStack-style
//!                init hooks run at the lifecycle stages (init); who may sign requests and what their policies are,
//!                from the credentials file and the IAM neighbour (principals)
//! operations/    one function per CodePipeline operation, behind one exhaustive dispatch match; shared lookups and
//!                errors in mod; an operation that changes a running pipeline hands the engine a command and words
//!                every refusal the command can produce
//!   pipelines      CreatePipeline ... ListPipelines        structure       pipeline structural validation
//!   action_types   action and rule types                  tags            tags by ARN
//!   webhooks       webhook definitions                    jobs            custom and partner job workers
//!   executions     start, stop, get, list executions      pipeline_state  GetPipelineState
//!   action_history ListActionExecutions, history paging   approvals       PutApprovalResult
//!   stages         transitions, retry, rollback           revisions       PutActionRevision, deploy targets
//!   conditions     OverrideStageCondition, ListRuleExecutions, condition states
//!   urls           console links from action type URL templates (never a secret)
//!   authorize      --enforce-iam: each operation's IAM action, resources and context keys, asked of the caller's
//!                  policies before it runs
//! engine/        the one writer of running pipelines; it owns its store handle
//!   commands/      one file per caller-driven command (start, stop, retry, rollback, approval, condition override,
//!                  transition, revision push, job acknowledgement and report, completion, Lambda invocation
//!                  result, real work's report, a polling source's look, a pipeline update), each with its own
//!                  output and refusal types; Engine::apply carries one out
//!   step/          the pure step: advance an execution through stages, groups and actions (mod); resumed stages and
//!                  rollback executions (recovery); artifact locations (outputs); variables in configurations
//!                  (resolve)
//!   providers/     what happens when an action starts (mod: the seam, the Worker trait and Handoff effect);
//!                  simulated results (simulated); Lambda as state and its worker, the invoker (lambda/); with an
//!                  S3 neighbour, the artifact writer, which does all real work (artifacts: outputs, the S3
//!                  source), the S3 deploy (s3_deploy), CloudFormation deploys (cloudformation), ECS deploys and
//!                  ECR sources (ecs), local git repositories as sources (git), builds that run here or on a
//!                  CodeBuild neighbour (builds/: buildspec, shell, select, log, neighbours, delegate), what they
//!                  share: SDK clients, zips, waits (neighbour); the S3 source poller (polling)
//!   conditions, rules, time_zone   stage conditions and their rules
//!   jobs, variables, ids           job data and results, #{...} resolution (the one reference scanner and
//!                                  lookup), ids
//!   events         EventBridge events of state changes, rendered under the lock, released after the commit
//!   delivery, notifications, outbound   EventBridge and SNS delivery tasks, one signed and retried HTTP call, the
//!                                       TLS trust of every neighbour
//! store/         keeping the state: the Store of every partition (gate, epochs, import, export, reset) (mod); group
//!                commit, which also releases each write's effects once saved (commit); the state document and its
//!                rows (document); SQLite (sqlite)
//! state/         the data model of one account and region: PartitionData, pipeline versions (Definition: the
//!                declaration, its secrets, compiled patterns and globs, GetPipeline's JSON made once), runtime
//!                (execution/, one file per concept), action and rule types (catalogue), the emulated sources,
//!                behaviour rules, the one glob matcher (glob), containers that record changes (tracked), the
//!                outbox of a write's effects (outbox), the emulator clock; a pipeline's executions by stable
//!                position, with retention (execution/executions)
//! config         flags and their CODEPIPELINE_LOCAL_* environment variables
//! protocol/      AWS JSON 1.1, knowing nothing of pipelines
//!   router         X-Amz-Target -> Operation (one enum, 44 variants)
//!   body           bounded body reads, content type, JSON parsing
//!   model          the embedded service model (fixtures/model/), parsed once
//!   precheck       one pass over a body's bytes: is it valid? (then it is read straight into the typed input)
//!   validate       model-driven input validation in AWS's message format (for every other body: the exact error)
//!   identity       account and region from SigV4 credentials
//!   sigv4          opt-in signature verification against a credentials file (--verify-signatures)
//!   policy         IAM identity-based policies: a documented subset read and checked at start, and evaluated
//!   error          error codes and the one place errors become responses
//!   pagination     sealed nextToken values and page cutting
//! transport      connections: the accept loop, header, body, idle and write time bounds, a bounded graceful shutdown
//! ```
//!
//! A request flows `transport` (time bounds) -> `server` (front door) -> `protocol::router` -> `protocol::body` ->
//! `protocol::identity` -> `operations::dispatch` (`protocol::precheck`, or parse and `protocol::validate`; typed
//! input) -> an operation over the `store`
//! -> a reply (whose empty form, `{}` or no body, dispatch takes from the model) or an `ApiError`, which
//! `protocol::error` renders. An operation that changes a running pipeline goes on: operation -> command
//! (`engine::commands`, under the partition lock) -> step (the pure step, then advance) -> the change's effects
//! (events, notifications, work for providers) left in the write's outbox -> commit (`store::commit`: with a data
//! directory, the rows the write marked are saved in a group commit; in memory, at once) -> outbox released in
//! commit order -> events (history, live stream, EventBridge, SNS), neighbours and providers' workers, whose
//! results come back as commands. `server` holds the answer until the commit of what it wrote (and of any
//! still-pending change it read) is done; a failed commit releases nothing and answers 503.

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
