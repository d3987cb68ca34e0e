//! 200 executions across 20 pipelines in all three modes: each ends as its mode implies, and the stage-lock
//! invariants hold at every moment sampled while they run.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use codepipeline_local::state::Scope;
use codepipeline_local::state::declaration::ExecutionMode;
use codepipeline_local::state::execution::Place;
use codepipeline_local::store::Store;
use serde_json::json;

use crate::common::{TestServer, eventually};
use crate::sdk_json;

fn three_stages(name: &str, mode: &str) -> serde_json::Value {
    let at = |c: &str, p: &str| json!({"category": c, "owner": "AWS", "provider": p, "version": "1"});
    json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/r", "pipelineType": "V2", "executionMode": mode,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [
                {"name": "A", "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "a"}, "inputArtifacts": [{"name": "Code"}]},
                {"name": "B", "runOrder": 2, "actionTypeId": at("Test", "CodeBuild"), "configuration": {"ProjectName": "b"}, "inputArtifacts": [{"name": "Code"}]}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Code"}]}]}
        ]
    })
}

/// Checks the lock invariants of every pipeline once; returns a description of the first violation.
fn violation(store: &Store, scope: &Scope) -> Option<String> {
    store.read(scope, |data| {
        for (name, record) in &data.pipelines {
            let runtime = &record.runtime;
            let mut inside: HashMap<(String, ExecutionMode), usize> = HashMap::new();
            let mut waiting: HashMap<String, usize> = HashMap::new();
            for &i in &runtime.active {
                let e = &runtime.executions[i];
                match e.place {
                    Place::InStage { stage } => {
                        let holds = e.stages[stage].as_ref().is_some_and(|r| r.status.holds_lock());
                        if holds && e.mode != ExecutionMode::Parallel {
                            *inside.entry((e.declaration.stages[stage].name.clone(), e.mode)).or_default() += 1;
                        }
                    }
                    Place::Waiting { stage, .. } if e.mode == ExecutionMode::Superseded => {
                        *waiting.entry(e.declaration.stages[stage].name.clone()).or_default() += 1;
                    }
                    _ => {}
                }
            }
            if let Some(((stage, mode), n)) = inside.iter().find(|(_, n)| **n > 1) {
                return Some(format!("{name}: {n} executions inside {stage} in {mode:?} mode"));
            }
            if let Some((stage, n)) = waiting.iter().find(|(_, n)| **n > 1) {
                return Some(format!("{name}: {n} executions waiting at {stage} in SUPERSEDED mode"));
            }
        }
        None
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_executions_across_twenty_pipelines_keep_the_lock_invariants() {
    let server = TestServer::fast().await;
    let client = server.client();
    // Vary action durations so executions overtake and queue behind each other.
    server.set_behaviors(json!([{"action": "A", "delayMs": 12}, {"action": "Ship", "delayMs": 7}])).await;

    let modes = ["SUPERSEDED", "QUEUED", "PARALLEL"];
    let pipelines: Vec<(String, &str)> = (0..20).map(|i| (format!("load-{i:02}"), modes[i % 3])).collect();
    for (name, mode) in &pipelines {
        client.create_pipeline().pipeline(sdk_json::pipeline(&three_stages(name, mode))).send().await.expect("created");
    }

    // Sample the invariants from inside the server while everything runs.
    let store = Arc::clone(server.server.state().store());
    let scope = Scope { account: "000000000000".into(), region: "us-east-1".into() };
    let done = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (store, scope, done, samples) =
            (Arc::clone(&store), scope.clone(), Arc::clone(&done), Arc::clone(&samples));
        tokio::spawn(async move {
            while !done.load(Ordering::Acquire) {
                if let Some(v) = violation(&store, &scope) {
                    return Some(v);
                }
                samples.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_micros(300)).await;
            }
            None
        })
    };

    // 10 executions per pipeline (the one CreatePipeline started, and 9 more), started concurrently.
    let mut starts = Vec::new();
    for (name, _) in &pipelines {
        for _ in 0..9 {
            let client = client.clone();
            let name = name.clone();
            starts.push(tokio::spawn(async move {
                client.start_pipeline_execution().name(&name).send().await.expect("started");
            }));
        }
    }
    for start in starts {
        start.await.expect("start task");
    }

    let mut totals: HashMap<&str, HashMap<String, usize>> = HashMap::new();
    for (name, mode) in &pipelines {
        let summaries = eventually(&format!("{name} to finish"), || async {
            let listed = client.list_pipeline_executions().pipeline_name(name).send().await.ok()?;
            let all = listed.pipeline_execution_summaries().to_vec();
            let running = all.iter().any(|s| {
                matches!(s.status(), Some(PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping))
            });
            (!running && all.len() == 10).then_some(all)
        })
        .await;
        for summary in &summaries {
            let status = summary.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            *totals.entry(mode).or_default().entry(status).or_default() += 1;
        }
        match *mode {
            "SUPERSEDED" => {
                assert!(
                    summaries.iter().all(|s| matches!(
                        s.status(),
                        Some(PipelineExecutionStatus::Succeeded | PipelineExecutionStatus::Superseded)
                    )),
                    "{name}"
                );
                assert_eq!(
                    summaries[0].status(),
                    Some(&PipelineExecutionStatus::Succeeded),
                    "{name}: the newest always completes"
                );
            }
            _ => assert!(
                summaries.iter().all(|s| s.status() == Some(&PipelineExecutionStatus::Succeeded)),
                "{name}: nothing is superseded in {mode}"
            ),
        }
    }
    done.store(true, Ordering::Release);
    let problem = sampler.await.expect("sampler");
    assert_eq!(problem, None, "a stage-lock invariant was broken");
    assert!(samples.load(Ordering::Relaxed) > 10, "the invariants were actually sampled");
    let total: usize = totals.values().flat_map(|m| m.values()).sum();
    assert_eq!(total, 200);
}
