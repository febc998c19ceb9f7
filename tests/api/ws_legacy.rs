//! `/graphql/ws` in the legacy graphql-ws protocol of
//! subscriptions-transport-ws: `start`/`data`/`stop`/`complete`, `ka`
//! keep-alives, `connection_error`, and the same limits and closes as
//! graphql-transport-ws.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::websockets::{SUBSCRIBE, Socket, connect_with, send};

const PROTOCOL: &str = "graphql-ws";

/// The next message that is not a keep-alive, or the close code.
async fn next(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let message = crate::websockets::next(socket).await?;
        if message["type"] != "ka" {
            return Ok(message);
        }
    }
}

async fn init(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect_with(app, PROTOCOL).await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    socket
}

fn start(id: &str, query: &str) -> Value {
    json!({ "id": id, "type": "start", "payload": { "query": query, "variables": {}, "operationName": null } })
}

/// Starts the asset subscription and waits until the server has it listening.
async fn subscribe(app: &TestApp, socket: &mut Socket, id: &str) {
    let before = app.state.bus.receivers();
    send(socket, start(id, SUBSCRIBE)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.bus.receivers() <= before {
        assert!(Instant::now() < deadline, "the subscription starts");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_legacy_subscriber_gets_data_and_stop_completes() {
    let app = spawn_app().await;
    let token = app.login("manager").await;
    let mut socket = init(&app, &token).await;
    subscribe(&app, &mut socket, "1").await;
    app.create_asset(&token, "Standing frame", None).await;
    let event = next(&mut socket).await.unwrap();
    assert_eq!(event["type"], "data", "{event}");
    assert_eq!(event["id"], "1");
    assert_eq!(event["payload"]["data"]["assetUpdated"]["kind"], "CREATED");
    assert_eq!(
        event["payload"]["data"]["assetUpdated"]["asset"]["name"],
        "Standing frame"
    );
    send(&mut socket, json!({ "id": "1", "type": "stop" })).await;
    let done = next(&mut socket).await.unwrap();
    assert_eq!(done, json!({ "type": "complete", "id": "1" }));
    // Stopped: the next change reaches nobody on this socket.
    app.create_asset(&token, "Second frame", None).await;
    send(&mut socket, json!({ "type": "connection_terminate" })).await;
    assert_eq!(next(&mut socket).await, Err(1000));
}

#[tokio::test]
async fn a_query_over_start_answers_one_data_then_complete() {
    let app = spawn_app().await;
    let token = app.login("therapist").await;
    let mut socket = init(&app, &token).await;
    send(&mut socket, start("q", "query Me { me { email } }")).await;
    let data = next(&mut socket).await.unwrap();
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["id"], "q");
    assert_eq!(
        data["payload"]["data"]["me"]["email"],
        "therapist@alawael.local"
    );
    assert_eq!(
        next(&mut socket).await.unwrap(),
        json!({ "type": "complete", "id": "q" })
    );
}

#[tokio::test]
async fn the_server_sends_keep_alives_after_the_ack() {
    let app = spawn_app_with(|s| s.websocket.keepalive_secs = 1).await;
    let token = app.login("admin").await;
    let mut socket = connect_with(&app, PROTOCOL).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "token": token } }),
    )
    .await;
    let started = Instant::now();
    let mut received = Vec::new();
    for _ in 0..3 {
        received.push(crate::websockets::next(&mut socket).await.unwrap()["type"].clone());
    }
    assert_eq!(received, ["connection_ack", "ka", "ka"]);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_bad_token_gets_connection_error_then_4403() {
    let app = spawn_app().await;
    let mut socket = connect_with(&app, PROTOCOL).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } }),
    )
    .await;
    let refused = next(&mut socket).await.unwrap();
    assert_eq!(refused["type"], "connection_error", "{refused}");
    assert!(refused["payload"]["message"].is_string());
    assert_eq!(next(&mut socket).await, Err(4403));
}

#[tokio::test]
async fn a_legacy_connection_without_init_is_closed_with_4408() {
    let app = spawn_app_with(|s| s.websocket.init_timeout_secs = 1).await;
    let mut socket = connect_with(&app, PROTOCOL).await;
    assert_eq!(next(&mut socket).await, Err(4408));
}

#[tokio::test]
async fn a_duplicate_start_id_is_closed_with_4409() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    for _ in 0..2 {
        send(&mut socket, start("same", SUBSCRIBE)).await;
    }
    assert_eq!(next(&mut socket).await, Err(4409));
}

#[tokio::test]
async fn legacy_operations_per_connection_are_capped() {
    let app = spawn_app_with(|s| s.websocket.max_subscriptions = 2).await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    for id in ["1", "2", "3"] {
        send(&mut socket, start(id, SUBSCRIBE)).await;
    }
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["id"], "3");
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["payload"]["extensions"]["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn a_document_over_the_limits_is_refused_with_error() {
    let app = spawn_app_with(|s| s.graphql.max_aliases = 1).await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    let aliased = "{ a: me { email } b: me { email } }";
    send(&mut socket, start("aliases", aliased)).await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["id"], "aliases");
    assert_eq!(reply["payload"]["extensions"]["code"], "TOO_MANY_ALIASES");
}

#[tokio::test]
async fn a_refused_subscription_is_data_with_errors_then_complete() {
    let app = spawn_app().await;
    let token = app.login("user").await;
    let mut socket = init(&app, &token).await;
    send(&mut socket, start("a", SUBSCRIBE)).await;
    let data = next(&mut socket).await.unwrap();
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(
        data["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
    assert_eq!(
        next(&mut socket).await.unwrap(),
        json!({ "type": "complete", "id": "a" })
    );
}

#[tokio::test]
async fn a_legacy_subscriber_that_never_reads_does_not_hold_up_others() {
    let app = spawn_app_with(|s| s.websocket.send_buffer_messages = 4).await;
    let token = app.login("admin").await;
    let mut stalled = init(&app, &token).await;
    subscribe(&app, &mut stalled, "s").await;
    let mut reader = init(&app, &token).await;
    subscribe(&app, &mut reader, "r").await;
    // 3,000 events of 12 KB each: far more than the stalled client's buffers hold.
    crate::websockets::flood(&app, 3000).await;
    let mut received = 0;
    while let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout(Duration::from_millis(500), reader.next()).await
    {
        if text.contains("\"data\"") {
            received += 1;
        }
    }
    assert!(received > 0, "the reading subscriber got events");
    let health = app.get("/health/live").await;
    assert_eq!(health.status(), 200);
    drop(stalled);
}

#[tokio::test]
async fn a_deactivated_accounts_legacy_websocket_is_closed_with_4403() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let mut socket = init(&app, &manager).await;
    let id = app.user_id("manager").await;
    let body = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { deactivateUser(id: $id) { active } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(body["data"]["deactivateUser"]["active"], false, "{body}");
    assert_eq!(next(&mut socket).await, Err(4403));
}

#[tokio::test]
async fn a_legacy_websocket_ends_when_its_access_token_expires() {
    let app = spawn_app_with(|s| s.auth.access_token_ttl_secs = 2).await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    let started = Instant::now();
    assert_eq!(next(&mut socket).await, Err(4401));
    assert!(started.elapsed() < Duration::from_secs(9));
}

#[tokio::test]
async fn a_legacy_websocket_is_closed_with_1001_at_shutdown() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    app.state.lifecycle.begin_shutdown();
    assert_eq!(next(&mut socket).await, Err(1001));
}

#[tokio::test]
async fn an_id_is_free_again_once_its_operation_completed() {
    let app = spawn_app().await;
    let token = app.login("therapist").await;
    let mut socket = init(&app, &token).await;
    for _ in 0..3 {
        send(&mut socket, start("again", "{ me { email } }")).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "data");
        assert_eq!(
            next(&mut socket).await.unwrap(),
            json!({ "type": "complete", "id": "again" })
        );
    }
}
