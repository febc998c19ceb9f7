//! `GET /health/live` (the process runs) and `GET /health/ready` (the
//! database answers and shutdown has not begun; Redis down is "degraded").

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::cache::RedisHealth;
use crate::state::AppState;

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let started = Instant::now();
    let budget = Duration::from_millis(state.settings.database.max_time_ms.min(2_000));
    let mongodb = match tokio::time::timeout(budget, state.db.ping()).await {
        Ok(Ok(())) => json!({ "status": "ok", "latencyMs": started.elapsed().as_millis() as u64 }),
        _ => json!({ "status": "down", "latencyMs": started.elapsed().as_millis() as u64 }),
    };
    let redis = match state.cache.health().await {
        RedisHealth::NotConfigured => {
            json!({ "status": "degraded", "detail": "not configured; using the in-process cache" })
        }
        RedisHealth::Up { latency_ms } => json!({ "status": "ok", "latencyMs": latency_ms }),
        RedisHealth::Down => {
            json!({ "status": "degraded", "detail": "unreachable; using the in-process cache" })
        }
    };
    let shutting_down = state.lifecycle.is_shutting_down();
    let db_up = mongodb["status"] == "ok";
    let status = if shutting_down || !db_up {
        "down"
    } else if redis["status"] == "ok" {
        "ok"
    } else {
        "degraded"
    };
    let mut body = json!({ "status": status, "checks": { "mongodb": mongodb, "redis": redis } });
    if shutting_down {
        body["detail"] = json!("shutting down");
    }
    let code = if status == "down" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body))
}
