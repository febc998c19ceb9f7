//! HTTP rules: content types, GET, GraphiQL, headers, health and metrics.

use serde_json::{Value, json};

use crate::support::helpers::{error_code, spawn_app, spawn_with_settings, test_settings};

#[tokio::test]
async fn simple_requests_that_could_be_csrf_are_refused_with_415() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ] {
        let response = app
            .http
            .post(&url)
            .header("content-type", content_type)
            .body(r#"{"query":"mutation { logout(refreshToken: \"x\") }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(error_code(&body), "BAD_USER_INPUT");
    }
    let ok = app
        .http
        .post(&url)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations_with_405() {
    let app = spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let query = app
        .http
        .get(&url)
        .query(&[("query", "{ __typename }")])
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    assert_eq!(
        query.json::<Value>().await.unwrap()["data"]["__typename"],
        "Query"
    );
    let mutation = app
        .http
        .get(&url)
        .query(&[("query", "mutation { logout(refreshToken: \"x\") }")])
        .send()
        .await
        .unwrap();
    assert_eq!(mutation.status(), 405);
    let body: Value = mutation.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn graphiql_is_served_to_browsers_in_development_with_a_tight_csp() {
    let app = spawn_app().await;
    let page = app
        .http
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
    assert!(!csp.contains("unpkg") && !csp.contains("https:"), "{csp}");
    assert!(
        !csp.contains("'unsafe-eval'") && !csp.contains("script-src *"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("graphiql"));

    let production =
        spawn_with_settings(test_settings(alawael::config::Environment::Production)).await;
    let page = production
        .http
        .get(format!("{}/graphql", production.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400, "no GraphiQL in production");
}

#[tokio::test]
async fn responses_carry_a_request_id_and_security_headers() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert!(!headers["x-request-id"].is_empty());
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let accept = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        accept.headers()["content-type"],
        "application/graphql-response+json"
    );
}

#[tokio::test]
async fn health_reports_the_database_and_redis() {
    let app = spawn_app().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["mongodb"]["status"], "ok");
    assert!(body["checks"]["mongodb"]["latencyMs"].is_u64());
    let redis_expected = if std::env::var("REDIS_URL").is_ok() {
        "ok"
    } else {
        "degraded"
    };
    assert_eq!(body["checks"]["redis"]["status"], redis_expected, "{body}");
}

#[tokio::test]
async fn metrics_count_requests_and_database_commands() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    app.gql(
        Some(&token),
        "query ListAssets { assets(first: 1) { totalCount } }",
        json!({}),
    )
    .await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(r#"alawael_graphql_requests_total{operation="ListAssets",outcome="ok"}"#),
        "{text}"
    );
    assert!(text.contains(r#"alawael_db_commands_total{command="find",collection="assets"}"#));
    assert!(text.contains("alawael_graphql_request_duration_seconds_bucket"));
    assert!(
        !text.contains(r#"command="hello""#),
        "handshakes are not commands"
    );
}

#[tokio::test]
async fn cors_admits_only_the_configured_origins() {
    let app = crate::support::helpers::spawn_app_with(|s| {
        s.server.cors_origins = vec!["https://staff.alawael.example".into()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://staff.alawael.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://staff.alawael.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn hostile_bodies_get_client_errors_and_the_server_stays_up() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let url = format!("{}/graphql", app.address);
    let nested_json = format!(
        "{{\"query\":\"{{ me {{ id }} }}\",\"variables\":{{\"x\":{}1{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"query\": 5}".to_vec(),
        b"{\"query\": \"{ me { id } }\", \"variables\": \"not an object\"}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        nested_json.into_bytes(),
        b"{\"query\": \"query($f: Int) { assets(first: $f) { totalCount } }\", \"variables\": {\"f\": 1e308}}".to_vec(),
        b"{\"query\": \"query($s: String) { assets(filter: { search: $s }) { totalCount } }\", \"variables\": {\"s\": \"a\\u0000b\"}}".to_vec(),
        b"{\"query\": \"query($id: ID!) { asset(id: $id) { id } }\", \"variables\": {\"id\": \"\\u0000\"}}".to_vec(),
        b"{\"query\": \"mutation { createAsset(input: { name: \\\"x\\\", category: IT, value: { amountMinor: 99999999999999999999999, currency: \\\"SAR\\\" } }) { id } }\"}".to_vec(),
        format!("{{\"query\": \"{{ {} }}\"}}", "__typename ".repeat(3000)).into_bytes(),
    ];
    for body in bodies {
        let response = app
            .http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(
            status < 500,
            "{status} for {}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        );
        let json: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 && json["errors"].is_array() {
            assert_ne!(error_code(&json), "INTERNAL", "{json}");
        }
    }
    let count = app
        .gql(Some(&token), "{ assets { totalCount } }", json!({}))
        .await;
    assert_eq!(
        count["data"]["assets"]["totalCount"], 0,
        "nothing was written"
    );
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn a_callers_request_id_is_kept_only_when_it_is_a_plain_token() {
    let app = spawn_app().await;
    let send = |id: &'static str| {
        app.http
            .get(format!("{}/health/live", app.address))
            .header("x-request-id", id)
            .send()
    };
    let kept = send("trace-42.a_b").await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42.a_b");
    let replaced = send("<script>alert(1)</script>").await.unwrap();
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}

#[tokio::test]
async fn large_responses_are_gzipped_for_clients_that_accept_it_and_small_ones_are_not() {
    let app = spawn_app().await;
    let send = |query: &'static str| {
        app.http
            .post(format!("{}/graphql", app.address))
            .header("accept-encoding", "gzip")
            .json(&json!({ "query": query }))
            .send()
    };
    let large = send("{ __schema { types { name description } } }")
        .await
        .unwrap();
    assert_eq!(large.headers()["content-encoding"], "gzip");
    let body = large.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");
    let small = send("{ __typename }").await.unwrap();
    assert!(small.headers().get("content-encoding").is_none());
    let body: Value = small.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query");
}

/// Whether a thread of this process has the name `name`.
fn thread_named(name: &str) -> bool {
    std::fs::read_dir("/proc/self/task")
        .expect("the process's threads are listed")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .any(|comm| comm.trim() == name)
}

/// Sends `body` through a client of its own: a new connection, accepted by
/// whichever serving thread takes it.
async fn on_a_new_connection(
    app: &crate::support::helpers::TestApp,
    token: &str,
    body: Value,
) -> Value {
    reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

/// `server.threads = 2`: a second serving thread, with its own database and
/// Redis connections, takes connections from the same listener. The threads
/// act as one instance: a write through one connection is read back on
/// fresh connections, whichever thread accepts them; a shutdown stops both.
#[tokio::test]
async fn two_serving_threads_answer_as_one_instance_and_stop_together() {
    let mut settings = test_settings(alawael::config::Environment::Test);
    settings.server.threads = 2;
    let app = spawn_with_settings(settings).await;
    let admin = app.login("admin").await;
    assert!(
        thread_named("alawael-serve-1"),
        "the second serving thread runs"
    );
    let id = app.create_asset(&admin, "Hoist", None).await;
    let read = "query($id: ID!) { asset(id: $id) { name } }";
    for round in 0..6 {
        let name = format!("Hoist {round}");
        let written = on_a_new_connection(
            &app,
            &admin,
            json!({
                "query": "mutation($id: ID!, $i: UpdateAssetInput!) { updateAsset(id: $id, input: $i) { id } }",
                "variables": { "id": id, "i": { "name": name } },
            }),
        )
        .await;
        assert!(written["errors"].is_null(), "updateAsset failed: {written}");
        for _ in 0..4 {
            let body = on_a_new_connection(
                &app,
                &admin,
                json!({ "query": read, "variables": { "id": id } }),
            )
            .await;
            assert_eq!(body["data"]["asset"]["name"], name.as_str(), "{body}");
        }
    }
    app.state.lifecycle.begin_shutdown();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(15), app.server)
        .await
        .expect("the server stops within the grace period")
        .expect("the server task ends");
    assert!(stopped.is_ok(), "the server stopped cleanly: {stopped:?}");
    assert!(
        !thread_named("alawael-serve-1"),
        "the second serving thread ends with the server"
    );
}
