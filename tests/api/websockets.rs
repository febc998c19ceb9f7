//! `/graphql/ws` (graphql-transport-ws): authentication, subscriptions fed
//! by mutations, and the protocol's refusals.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::helpers::{TestApp, spawn_app, spawn_app_with};

pub type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(app: &TestApp) -> Socket {
    connect_with(app, "graphql-transport-ws").await
}

/// Opens `/graphql/ws` offering `protocol`; the server must choose it.
pub async fn connect_with(app: &TestApp, protocol: &str) -> Socket {
    let mut request = format!("ws://127.0.0.1:{}/graphql/ws", app.port)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket connects");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

pub async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next text message as JSON, or the close code.
pub async fn next(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                return Ok(serde_json::from_str(text.as_str()).unwrap());
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(1006),
        }
    }
}

/// Publishes `count` asset events of about 12 KB each.
pub async fn flood(app: &TestApp, count: usize) {
    let record = app
        .state
        .db
        .assets()
        .create(alawael::models::asset::record::AssetForCreate {
            name: "Flood ".repeat(2000),
            category: alawael::models::asset::record::AssetCategory::It,
            serial_number: None,
            value: alawael::domain::Money::parse(1, "SAR").unwrap(),
            status: alawael::models::asset::record::AssetStatus::Available,
            location: None,
            purchase_date: None,
            warranty_until: None,
            assigned_to: None,
        })
        .await
        .unwrap();
    let record = std::sync::Arc::new(record);
    for _ in 0..count {
        app.state.bus.publish(alawael::events::Event::record(
            "Asset",
            alawael::events::ChangeKind::Updated,
            record.id,
            alawael::events::Snapshot::of(record.clone(), &[]).unwrap(),
        ));
        tokio::task::yield_now().await;
    }
}

pub async fn init(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app).await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    socket
}

/// Subscribes and waits until the server has the subscription listening.
async fn subscribe(app: &TestApp, socket: &mut Socket, id: &str) {
    let before = app.state.bus.receivers();
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": SUBSCRIBE } }),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.state.bus.receivers() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription starts"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub const SUBSCRIBE: &str = "subscription { assetUpdated { kind asset { name } } }";

#[tokio::test]
async fn a_subscriber_receives_the_change_a_mutation_makes() {
    let app = spawn_app().await;
    let token = app.login("manager").await;
    let mut socket = init(&app, &token).await;
    subscribe(&app, &mut socket, "1").await;
    app.create_asset(&token, "Tablet for AAC", None).await;
    let event = next(&mut socket).await.unwrap();
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(event["id"], "1");
    assert_eq!(event["payload"]["data"]["assetUpdated"]["kind"], "CREATED");
    assert_eq!(
        event["payload"]["data"]["assetUpdated"]["asset"]["name"],
        "Tablet for AAC"
    );
    send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "pong");
}

#[tokio::test]
async fn a_user_may_not_subscribe_to_asset_changes() {
    let app = spawn_app().await;
    let token = app.login("user").await;
    let mut socket = init(&app, &token).await;
    send(
        &mut socket,
        json!({ "id": "a", "type": "subscribe", "payload": { "query": SUBSCRIBE } }),
    )
    .await;
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["payload"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn a_connection_without_init_is_closed_with_4408() {
    let app = spawn_app_with(|s| s.websocket.init_timeout_secs = 1).await;
    let mut socket = connect(&app).await;
    assert_eq!(next(&mut socket).await, Err(4408));
}

#[tokio::test]
async fn a_bad_token_at_init_is_closed_with_4403() {
    let app = spawn_app().await;
    let mut socket = connect(&app).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } }),
    )
    .await;
    assert_eq!(next(&mut socket).await, Err(4403));
}

#[tokio::test]
async fn a_duplicate_subscription_id_is_closed_with_4409() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    for _ in 0..2 {
        send(
            &mut socket,
            json!({ "id": "same", "type": "subscribe", "payload": { "query": SUBSCRIBE } }),
        )
        .await;
    }
    assert_eq!(next(&mut socket).await, Err(4409));
}

#[tokio::test]
async fn subscriptions_per_connection_are_capped() {
    let app = spawn_app_with(|s| s.websocket.max_subscriptions = 2).await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    for id in ["1", "2", "3"] {
        send(
            &mut socket,
            json!({ "id": id, "type": "subscribe", "payload": { "query": SUBSCRIBE } }),
        )
        .await;
    }
    let reply = next(&mut socket).await.unwrap();
    assert_eq!(reply["id"], "3");
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["payload"][0]["extensions"]["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn an_oversized_message_closes_the_connection() {
    let app = spawn_app_with(|s| s.websocket.max_message_bytes = 4096).await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    let _ = socket.send(Message::Text("x".repeat(10_000).into())).await;
    assert!(next(&mut socket).await.is_err());
    let health = app.get("/health/live").await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_hold_up_others() {
    let app = spawn_app_with(|s| s.websocket.send_buffer_messages = 4).await;
    let token = app.login("admin").await;
    let mut stalled = init(&app, &token).await;
    subscribe(&app, &mut stalled, "s").await;
    let mut reader = init(&app, &token).await;
    subscribe(&app, &mut reader, "r").await;
    // 3,000 events of 12 KB each: far more than the stalled client's buffers hold.
    flood(&app, 3000).await;
    let mut received = 0;
    while let Ok(Some(Ok(Message::Text(_)))) =
        tokio::time::timeout(Duration::from_millis(500), reader.next()).await
    {
        received += 1;
    }
    assert!(received > 0, "the reading subscriber got events");
    let health = app.get("/health/live").await;
    assert_eq!(health.status(), 200);
    drop(stalled);
}

#[tokio::test]
async fn a_deactivated_accounts_websocket_is_closed_with_4403() {
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
async fn a_websocket_ends_when_its_access_token_expires() {
    let app = spawn_app_with(|s| s.auth.access_token_ttl_secs = 2).await;
    let token = app.login("admin").await;
    let mut socket = init(&app, &token).await;
    let started = std::time::Instant::now();
    assert_eq!(next(&mut socket).await, Err(4401));
    assert!(started.elapsed() < Duration::from_secs(9));
}

#[tokio::test]
async fn a_subscriber_that_never_reads_is_let_go_at_shutdown() {
    let app = spawn_app_with(|s| s.websocket.send_buffer_messages = 4).await;
    let token = app.login("admin").await;
    let idle = app.state.bus.receivers();
    let mut stalled = init(&app, &token).await;
    subscribe(&app, &mut stalled, "s").await;
    let record = std::sync::Arc::new(
        app.state
            .db
            .assets()
            .create(alawael::models::asset::record::AssetForCreate {
                name: "Flood ".repeat(2000),
                category: alawael::models::asset::record::AssetCategory::It,
                serial_number: None,
                value: alawael::domain::Money::parse(1, "SAR").unwrap(),
                status: alawael::models::asset::record::AssetStatus::Available,
                location: None,
                purchase_date: None,
                warranty_until: None,
                assigned_to: None,
            })
            .await
            .unwrap(),
    );
    // Enough to fill the queue and the socket buffers of a client that never reads.
    for _ in 0..1000 {
        app.state.bus.publish(alawael::events::Event::record(
            "Asset",
            alawael::events::ChangeKind::Updated,
            record.id,
            alawael::events::Snapshot::of(record.clone(), &[]).unwrap(),
        ));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.state.lifecycle.begin_shutdown();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.state.bus.receivers() > idle {
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled connection ends at shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(stalled);
}
