//! Idempotent mutations (SECURITY.md 38): a mutation retried with the same
//! `Idempotency-Key` runs once, even when the retries arrive together; the
//! same key with another request is `CONFLICT`; keys are the caller's own.

use bson::doc;
use serde_json::{Value, json};

use crate::support::helpers::{TestApp, error_code, spawn_app};

fn create(name: &str) -> Value {
    json!({
        "query": "mutation($n: String!) { createAsset(input: { name: $n, category: EQUIPMENT, value: { amountMinor: 100, currency: \"SAR\" }, status: AVAILABLE }) { id name } }",
        "variables": { "n": name },
    })
}

async fn send(app: &TestApp, token: &str, key: &str, body: &Value) -> (u16, Option<String>, Value) {
    let answer = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let replayed = answer
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, replayed, answer.json().await.unwrap())
}

async fn assets_named(app: &TestApp, name: &str) -> u64 {
    app.state
        .db
        .collection("assets")
        .count_documents(doc! { "name": name })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_mutation_retried_with_the_same_key_runs_once_even_when_the_retries_race() {
    let app = spawn_app().await;
    let token = app.login("manager").await;
    let body = create("Idempotent Walker");
    // Two retries at once, then a third later.
    let (first, second) = futures::future::join(
        send(&app, &token, "retry-1", &body),
        send(&app, &token, "retry-1", &body),
    )
    .await;
    let third = send(&app, &token, "retry-1", &body).await;
    assert_eq!(
        assets_named(&app, "Idempotent Walker").await,
        1,
        "it ran once"
    );
    for (status, _, answer) in [&first, &second, &third] {
        assert_eq!(*status, 200);
        assert_eq!(answer, &first.2, "every retry gets the first answer");
    }
    let replays = [&first, &second, &third]
        .iter()
        .filter(|(_, replayed, _)| replayed.as_deref() == Some("true"))
        .count();
    assert_eq!(replays, 2, "the first ran, the others were replayed");
    // The same key with another request is refused, and changes nothing.
    let (status, _, other) = send(&app, &token, "retry-1", &create("Another Walker")).await;
    assert_eq!(status, 409);
    assert_eq!(error_code(&other), "CONFLICT", "{other}");
    assert_eq!(assets_named(&app, "Another Walker").await, 0);
    // Another key runs again; another caller's same key is theirs alone.
    send(&app, &token, "retry-2", &body).await;
    assert_eq!(assets_named(&app, "Idempotent Walker").await, 2);
    let admin = app.login("admin").await;
    let (_, replayed, _) = send(&app, &admin, "retry-1", &body).await;
    assert_eq!(replayed, None, "a key is the caller's own");
    assert_eq!(assets_named(&app, "Idempotent Walker").await, 3);
    // A query ignores the header; a malformed key is refused.
    let (status, replayed, _) = send(
        &app,
        &token,
        "retry-1",
        &json!({ "query": "{ me { id } }" }),
    )
    .await;
    assert_eq!((status, replayed), (200, None));
    let (status, _, refused) = send(&app, &token, &"k".repeat(201), &body).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&refused), "BAD_USER_INPUT");
}
