//! Charging an operation to its caller's quota (`auth::quota`): which
//! bucket is the caller's (account by role, API key, or client address),
//! the stricter buckets of the operations an attacker repeats, and the
//! headers every answer carries.

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection};
use axum::http::{HeaderMap, HeaderValue};

use crate::auth::Caller;
use crate::auth::quota::{Charge, Limit};
use crate::config::{LimitSettings, QuotaSettings};
use crate::domain::Role;
use crate::graphql::context::RequestContext;
use crate::state::AppState;

fn limit(settings: LimitSettings) -> Limit {
    Limit {
        per_minute: settings.per_minute,
        burst: settings.burst,
    }
}

/// The caller's own bucket: its key, limit and kind (a metrics label).
fn bucket(
    quotas: &QuotaSettings,
    context: &RequestContext,
    namespace: &str,
) -> (String, Limit, &'static str) {
    match &context.caller {
        Caller::User(p) if p.key.is_some() => {
            let own = quotas
                .keys
                .get(&p.id.to_hex())
                .copied()
                .unwrap_or(quotas.api_key);
            (
                format!("{namespace}:quota:key:{}", p.id.to_hex()),
                limit(own),
                "api_key",
            )
        }
        Caller::User(p) => {
            let by_role = match p.role {
                Role::Admin => quotas.admin,
                Role::Manager => quotas.manager,
                Role::Therapist => quotas.therapist,
                Role::User => quotas.user,
            };
            (
                format!("{namespace}:quota:account:{}", p.id.to_hex()),
                limit(by_role),
                "account",
            )
        }
        Caller::Anonymous => (
            format!("{namespace}:quota:address:{}", context.client_address),
            limit(quotas.anonymous),
            "address",
        ),
    }
}

/// The root fields of the operation that would run, as written (aliases
/// count once each).
fn root_fields<'a>(document: &'a ExecutableDocument, name: Option<&str>) -> Vec<&'a str> {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) => ops.values().next(),
    };
    operation
        .map(|op| {
            op.node
                .selection_set
                .node
                .items
                .iter()
                .filter_map(|item| match &item.node {
                    Selection::Field(f) => Some(f.node.name.node.as_str()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Charges the operation: first the strict bucket of each guarded root
/// field it holds, then `cost` units to the caller's bucket. The charge to
/// report in the headers; `Err` with it when refused.
pub async fn charge(
    state: &AppState,
    context: &RequestContext,
    document: &ExecutableDocument,
    name: Option<&str>,
    cost: u64,
) -> Option<Result<Charge, Charge>> {
    let quotas = &state.settings.quotas;
    if !quotas.enabled {
        return None;
    }
    let namespace = state.db.name();
    let (key, own, kind) = bucket(quotas, context, namespace);
    for field in root_fields(document, name) {
        let (policy, strict, by_address) = match field {
            "login" => ("login", quotas.login, true),
            "refreshToken" => ("refresh_token", quotas.refresh_token, true),
            "exportBeneficiaryData" | "eraseBeneficiary" => {
                ("personal_data", quotas.personal_data, false)
            }
            "requestReport" => ("request_report", quotas.request_report, false),
            _ => continue,
        };
        let who = if by_address {
            format!("address:{}", context.client_address)
        } else {
            key.clone()
        };
        let charged = state
            .quotas
            .charge(
                &state.cache,
                &format!("{namespace}:quota:{policy}:{who}"),
                1,
                limit(strict),
                policy,
            )
            .await;
        if !charged.allowed {
            metrics::counter!("alawael_quota_refused_total", "principal" => kind, "policy" => policy).increment(1);
            return Some(Err(charged));
        }
    }
    let charged = state
        .quotas
        .charge(&state.cache, &key, cost, own, "default")
        .await;
    metrics::counter!("alawael_quota_units_total", "principal" => kind).increment(cost);
    if charged.allowed {
        Some(Ok(charged))
    } else {
        metrics::counter!("alawael_quota_refused_total", "principal" => kind, "policy" => "default").increment(1);
        Some(Err(charged))
    }
}

/// Adds `RateLimit-Policy` and `RateLimit` (and `Retry-After` when refused).
pub fn headers(headers: &mut HeaderMap, charge: &Charge) {
    if let Ok(value) = HeaderValue::from_str(&charge.policy_header()) {
        headers.insert("ratelimit-policy", value);
    }
    if let Ok(value) = HeaderValue::from_str(&charge.state_header()) {
        headers.insert("ratelimit", value);
    }
    if !charge.allowed {
        headers.insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from(charge.retry_after_secs),
        );
    }
}
