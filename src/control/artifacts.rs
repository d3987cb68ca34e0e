//! `GET /_emulator/artifacts?bucket=…&key=…`: an artifact's zip, read from the S3 neighbour, for the dashboard's
//! download links (a browser cannot sign a request to the neighbour itself). Only objects in a bucket that is the
//! artifact store of a pipeline of the caller's account and region are served.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::protocol::ApiError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactQuery {
    bucket: String,
    key: String,
    /// The scope, as the other control endpoints take it.
    account: Option<String>,
    region: Option<String>,
}

/// The artifact's bytes as a download named after its key.
pub async fn download(
    State(app): State<AppState>,
    caller: crate::control::guard::Caller,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<ArtifactQuery>,
) -> Result<Response, ApiError> {
    let scope = super::control_scope(&app, &caller, &headers, &uri, query.account.clone(), query.region.clone())?;
    let is_store = app.store().read(&scope, |data| {
        data.pipelines.iter().any(|(_, record)| {
            let declaration = record.current();
            let single = declaration.artifact_store.iter().map(|s| &s.location);
            let per_region = declaration.artifact_stores.iter().flat_map(|m| m.values()).map(|s| &s.location);
            single.chain(per_region).any(|location| *location == query.bucket)
        })
    });
    if !is_store {
        return Err(ApiError::validation(format!(
            "{} is not the artifact store of a pipeline in account {} and region {}",
            query.bucket, scope.account, scope.region
        )));
    }
    let Some(read) = app.engine().download(&query.bucket, &query.key).await else {
        return Err(ApiError::validation(
            "Artifacts are simulated: no S3 neighbour is configured (AWS_ENDPOINT_URL_S3 or --aws-endpoint).",
        ));
    };
    match read {
        Ok(bytes) => {
            let name = query.key.rsplit('/').next().unwrap_or("artifact").replace(['"', '\\'], "_");
            let name = if name.ends_with(".zip") { name } else { format!("{name}.zip") };
            let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
            let kind = HeaderValue::from_static("application/zip");
            Ok(([(header::CONTENT_TYPE, kind), (header::CONTENT_DISPOSITION, disposition)], bytes).into_response())
        }
        // An object the neighbour does not have is the caller's mistake; a neighbour that fails is not.
        Err(why) if why.contains("NoSuchKey") || why.contains("NoSuchBucket") => {
            Ok((StatusCode::NOT_FOUND, why).into_response())
        }
        Err(why) => Ok((StatusCode::BAD_GATEWAY, why).into_response()),
    }
}
