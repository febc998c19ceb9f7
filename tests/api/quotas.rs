//! Quotas per caller (SECURITY.md 35): a caller over their quota gets
//! `RATE_LIMITED` with `Retry-After` while others are served; every answer
//! carries the `RateLimit` headers; operations are charged by their cost;
//! the operations an attacker repeats have stricter buckets; websocket
//! operations count against the same quota.

use serde_json::{Value, json};

use crate::support::helpers::{PASSWORD, TestApp, error_code, spawn_app_with};
use crate::websockets::{init, next, send};

const ME: &str = "{ me { id } }";

fn small(settings: &mut alawael::config::Settings) {
    let tight = alawael::config::LimitSettings {
        per_minute: 60,
        burst: 20,
    };
    settings.quotas.user = tight;
    settings.quotas.anonymous = tight;
    settings.quotas.login = alawael::config::LimitSettings {
        per_minute: 60,
        burst: 3,
    };
}

async fn send_as(app: &TestApp, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_caller_over_their_quota_is_refused_with_retry_after_while_others_are_served() {
    let app = spawn_app_with(small).await;
    let user = app.login("user").await;
    let manager = app.login("manager").await;
    // `{ me { id } }` costs 2 units: ten fit in a burst of 20.
    let mut refused = None;
    for i in 0..15 {
        let answer = send_as(&app, Some(&user), json!({ "query": ME })).await;
        let headers = answer.headers().clone();
        assert!(
            headers.contains_key("ratelimit-policy"),
            "answer {i}: {headers:?}"
        );
        assert!(headers.contains_key("ratelimit"));
        if answer.status() == 429 {
            refused = Some((headers, answer.json::<Value>().await.unwrap(), i));
            break;
        }
    }
    let (headers, body, at) = refused.expect("the burst is refused");
    assert_eq!(at, 10, "ten operations of 2 units fit a burst of 20");
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(body["errors"][0]["extensions"]["retryAfterSeconds"], retry);
    assert_eq!(headers["ratelimit-policy"], "\"default\";q=20;w=60");
    // Another caller, in another bucket, is served meanwhile.
    let other = send_as(&app, Some(&manager), json!({ "query": ME })).await;
    assert_eq!(other.status(), 200);
    assert!(other.json::<Value>().await.unwrap()["data"]["me"]["id"].is_string());
}

#[tokio::test]
async fn an_operation_is_charged_by_its_cost_and_says_it_when_asked() {
    let app = spawn_app_with(small).await;
    let user = app.login("user").await;
    let answer = send_as(
        &app,
        Some(&user),
        json!({ "query": ME, "extensions": { "cost": true } }),
    )
    .await;
    let remaining_after_one: String = answer.headers()["ratelimit"].to_str().unwrap().to_string();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["extensions"]["cost"], 2, "{body}");
    assert!(
        remaining_after_one.contains("r=18"),
        "{remaining_after_one}"
    );
    // A list of 10 rows costs more than the whole burst: refused at once.
    let costly = send_as(
        &app,
        Some(&user),
        json!({ "query": "{ disabilityPrograms(first: 10) { nodes { id name status } } }" }),
    )
    .await;
    assert_eq!(costly.status(), 429);
}

#[tokio::test]
async fn sign_ins_from_one_address_have_a_stricter_bucket() {
    let app = spawn_app_with(small).await;
    let login = json!({
        "query": "mutation($p: String!) { login(email: \"user@alawael.local\", password: $p) { accessToken } }",
        "variables": { "p": PASSWORD },
    });
    for _ in 0..3 {
        let answer = send_as(&app, None, login.clone()).await;
        assert_eq!(answer.status(), 200);
    }
    let refused = send_as(&app, None, login).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["ratelimit-policy"], "\"login\";q=3;w=60");
    assert_eq!(
        error_code(&refused.json::<Value>().await.unwrap()),
        "RATE_LIMITED"
    );
}

#[tokio::test]
async fn websocket_operations_count_against_the_same_quota() {
    let app = spawn_app_with(small).await;
    let user = app.login("user").await;
    // Half the burst over HTTP...
    for _ in 0..5 {
        assert_eq!(
            send_as(&app, Some(&user), json!({ "query": ME }))
                .await
                .status(),
            200
        );
    }
    // ...and the rest over a websocket, until it is refused there too.
    let mut socket = init(&app, &user).await;
    let mut codes = Vec::new();
    for i in 0..7 {
        send(
            &mut socket,
            json!({ "id": format!("q{i}"), "type": "subscribe", "payload": { "query": ME } }),
        )
        .await;
        let reply = next(&mut socket).await.unwrap();
        if reply["type"] == "error" {
            codes.push(
                reply["payload"][0]["extensions"]["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            );
        } else {
            codes.push("OK".into());
            assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
        }
    }
    assert_eq!(codes[..5], ["OK"; 5], "{codes:?}");
    assert_eq!(codes[5..], ["RATE_LIMITED"; 2], "{codes:?}");
    // And HTTP is refused as well now.
    assert_eq!(
        send_as(&app, Some(&user), json!({ "query": ME }))
            .await
            .status(),
        429
    );
}
