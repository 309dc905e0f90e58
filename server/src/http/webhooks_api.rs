//! Admin REST: webhook endpoints. Each gets every event it asks for (all when `events`
//! is empty), signed with its secret; see `webhooks` for delivery and the README for the
//! signature and a verification snippet.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use convene_protocol::{ErrorCode, ErrorEnvelope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{Admin, JsonBody};
use crate::model::event::{Webhook, WebhookSource};
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: an http(s) URL.
    pub url: String,
    /// Event types (`room.created`) or prefixes (`room.*`); every event when absent or
    /// empty.
    #[serde(default)]
    pub events: Vec<String>,
    /// The HMAC-SHA256 key of the signatures, 16 to 256 characters; generated
    /// (`whsec_...`) when absent and shown once, in this answer.
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// `api` (this API) or `config` (the config file; change it there).
    pub source: String,
    pub created_at: DateTime<Utc>,
    /// Only in the answer to the create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub value: Vec<WebhookView>,
}

fn view(w: Webhook, with_secret: bool) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url,
        events: w.events,
        source: w.source.as_str().to_string(),
        created_at: w.created_at,
        secret: with_secret.then_some(w.secret),
    }
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, body = WebhookView, description = "Created: events from now on are delivered to it"),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn create_webhook(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(req): JsonBody<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<WebhookView>)> {
    crate::config::check_webhook(&req.url, req.secret.as_deref(), &req.events)
        .map_err(|(target, why)| ApiError::invalid(target, why))?;
    let hook = Webhook {
        id: format!("wh_{}", crate::ids::random_token(20)),
        url: req.url,
        secret: req
            .secret
            .unwrap_or_else(|| format!("whsec_{}", crate::ids::random_token(32))),
        events: req.events,
        source: WebhookSource::Api,
        created_at: state.clock.now(),
        cursor: 0,
    };
    let stored = state.store.put_webhook(hook).await?;
    state.cluster.webhooks_changed().await;
    Ok((StatusCode::CREATED, Json(view(stored, true))))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, body = WebhookList),
        (status = 401, body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    _: Admin,
) -> ApiResult<Json<WebhookList>> {
    let value = state
        .store
        .webhooks()
        .await?
        .into_iter()
        .map(|w| view(w, false))
        .collect();
    Ok(Json(WebhookList { value }))
}

#[utoipa::path(delete, path = "/v1/webhooks/{webhookId}", tag = "webhooks",
    params(("webhookId" = String, Path)),
    responses(
        (status = 204, description = "Deleted: nothing more is sent to it"),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "PermissionDenied: it comes from the config file", body = ErrorEnvelope),
        (status = 404, description = "WebhookNotFound", body = ErrorEnvelope),
    ),
    security(("adminKey" = [])))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let hooks = state.store.webhooks().await?;
    let Some(hook) = hooks.iter().find(|w| w.id == id) else {
        return Err(
            ApiError::new(ErrorCode::WebhookNotFound, format!("no webhook '{id}'"))
                .with_target("webhookId"),
        );
    };
    if hook.source == WebhookSource::Config {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "this webhook comes from the config file; remove it there and restart",
        )
        .with_target("webhookId"));
    }
    state.store.delete_webhook(&id).await?;
    state.cluster.webhooks_changed().await;
    Ok(StatusCode::NO_CONTENT)
}
