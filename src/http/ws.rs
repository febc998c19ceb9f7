//! `/graphql/ws`: the graphql-transport-ws protocol, written here so the
//! server controls what the library does not: authentication in
//! `connection_init` (4401/4403), the init timeout (4408), duplicate ids
//! (4409), a cap on subscriptions per connection, message size, a bounded
//! send buffer (a client that never reads loses events, the server does not
//! grow), and a 1001 close when the server shuts down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use async_graphql::{Request, Variables};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Api;
use super::{client_address, request_id};
use crate::error::code;
use crate::events::Event;
use crate::graphql::context::RequestContext;
use crate::graphql::{errors, limits};
use crate::http::graphql::{operation_type, with_request_data};
use async_graphql::parser::types::OperationType;

pub const PROTOCOL: &str = "graphql-transport-ws";

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Value>,
}

pub async fn upgrade(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let state = api.app.clone();
    let settings = &state.settings.websocket;
    let context_id = request_id(&headers);
    let address = client_address(&headers, peer, state.settings.server.trust_forwarded_for);
    ws.protocols([PROTOCOL])
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        .on_upgrade(move |socket| serve(socket, api, context_id, address))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string().into())
}

async fn serve(socket: WebSocket, api: Api, request_id: String, address: String) {
    let state = api.app.clone();
    let settings = state.settings.websocket.clone();
    let (mut sink, mut incoming) = socket.split();
    let (out, mut outbox) = mpsc::channel::<Message>(settings.send_buffer_messages.max(1));
    let writer = tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut closing = state.lifecycle.closing();
    // Phase 1: connection_init, within the time limit.
    let init = tokio::time::timeout(
        Duration::from_secs(settings.init_timeout_secs),
        incoming.next(),
    );
    let caller = tokio::select! {
        _ = closed(&mut closing) => { let _ = out.send(close(1001, "server shutting down")).await; None }
        first = init => match first {
            Err(_) => { let _ = out.send(close(4408, "Connection initialisation timeout")).await; None }
            Ok(Some(Ok(Message::Text(raw)))) => match serde_json::from_str::<ClientMessage>(raw.as_str()) {
                Ok(ClientMessage::ConnectionInit { payload }) => {
                    let token = payload.as_ref().and_then(bearer);
                    match state.authenticate_session(token.as_deref()).await {
                        Ok(session) => {
                            let _ = out.send(text(json!({ "type": "connection_ack" }))).await;
                            Some(session)
                        }
                        Err(_) => { let _ = out.send(close(4403, "Forbidden")).await; None }
                    }
                }
                Ok(_) => { let _ = out.send(close(4401, "Unauthorized")).await; None }
                Err(_) => { let _ = out.send(close(4400, "Invalid message")).await; None }
            },
            Ok(_) => None,
        }
    };
    let Some((caller, expires_at)) = caller else {
        drop(out);
        let _ = writer.await;
        return;
    };
    let account = match &caller {
        crate::auth::Caller::User(p) => Some(p.id),
        crate::auth::Caller::Anonymous => None,
    };
    // The connection lives no longer than its access token.
    let expiry = token_expiry(expires_at);
    tokio::pin!(expiry);
    let mut events = state.bus.subscribe();
    let context = RequestContext {
        caller,
        request_id,
        client_address: address,
    };

    // Phase 2: operations until either side closes.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
    let mut active: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            _ = closed(&mut closing) => {
                let _ = out.send(close(1001, "server shutting down")).await;
                break;
            }
            Some(id) = done_rx.recv() => { active.remove(&id); }
            _ = &mut expiry => {
                let _ = out.send(close(4401, "the access token has expired; reconnect with a new one")).await;
                break;
            }
            event = events.recv() => match event {
                Ok(Event::AccountChanged { user }) if Some(user) == account => {
                    let _ = out.send(close(4403, "the account changed; sign in again")).await;
                    break;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                _ => {}
            },
            message = incoming.next() => {
                let raw = match message {
                    Some(Ok(Message::Text(raw))) => raw,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => { let _ = out.send(close(4400, "Binary messages are not supported")).await; break; }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(error)) => {
                        tracing::debug!(%error, "websocket read failed");
                        let _ = out.send(close(1009, "Message too big or malformed")).await;
                        break;
                    }
                };
                match serde_json::from_str::<ClientMessage>(raw.as_str()) {
                    Ok(ClientMessage::Ping {}) => { let _ = out.send(text(json!({ "type": "pong" }))).await; }
                    Ok(ClientMessage::Pong {}) => {}
                    Ok(ClientMessage::ConnectionInit { .. }) => {
                        let _ = out.send(close(4429, "Too many initialisation requests")).await;
                        break;
                    }
                    Ok(ClientMessage::Complete { id }) => {
                        if let Some(task) = active.remove(&id) { task.abort(); }
                    }
                    Ok(ClientMessage::Subscribe { id, payload }) => {
                        active.retain(|_, task| !task.is_finished());
                        if active.contains_key(&id) {
                            let _ = out.send(close(4409, &format!("Subscriber for {id} already exists"))).await;
                            break;
                        }
                        if active.len() >= settings.max_subscriptions {
                            let message = format!("at most {} operations may run on one connection", settings.max_subscriptions);
                            let _ = out.send(operation_error(&id, code::RATE_LIMITED, &message)).await;
                            continue;
                        }
                        let task = tokio::spawn(run_operation(api.clone(), context.clone(), id.clone(), payload, out.clone(), done_tx.clone()));
                        active.insert(id, task);
                    }
                    Err(_) => { let _ = out.send(close(4400, "Invalid message")).await; break; }
                }
            }
        }
    }
    for (_, task) in active {
        task.abort();
    }
    drop(out);
    let _ = writer.await;
}

/// Resolves when the token expires; never for an anonymous connection.
async fn token_expiry(expires_at: Option<i64>) {
    match expires_at {
        Some(exp) => {
            let left = exp.saturating_sub(chrono::Utc::now().timestamp());
            tokio::time::sleep(Duration::from_secs(u64::try_from(left).unwrap_or(0))).await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Resolves once shutdown has begun.
async fn closed(closing: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}

fn bearer(payload: &Value) -> Option<String> {
    ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .or_else(|| {
            payload
                .get("token")
                .and_then(Value::as_str)
                .map(|t| format!("Bearer {t}"))
        })
}

fn operation_error(id: &str, code: &str, message: &str) -> Message {
    text(
        json!({ "id": id, "type": "error", "payload": [{ "message": message, "extensions": { "code": code } }] }),
    )
}

async fn run_operation(
    api: Api,
    context: RequestContext,
    id: String,
    payload: SubscribePayload,
    out: mpsc::Sender<Message>,
    done: mpsc::UnboundedSender<String>,
) {
    let state = api.app.clone();
    let document = match limits::check(&payload.query, &state.settings.graphql) {
        Ok(document) => document,
        Err(refused) => {
            let _ = out
                .send(operation_error(&id, refused.code, &refused.message))
                .await;
            let _ = done.send(id);
            return;
        }
    };
    let single = operation_type(&document, payload.operation_name.as_deref())
        != Some(OperationType::Subscription);
    let mut request = Request::new(payload.query);
    if let Some(name) = payload.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = payload.variables {
        request = request.variables(Variables::from_json(variables));
    }
    request.set_parsed_query(document);
    let request = with_request_data(request, &state, &context);
    if single {
        let response = errors::finalize(api.schema.execute(request).await, &context.request_id);
        let _ = out
            .send(text(
                json!({ "id": id, "type": "next", "payload": response }),
            ))
            .await;
    } else {
        let mut stream = api.schema.execute_stream(request);
        while let Some(response) = stream.next().await {
            let response = errors::finalize(response, &context.request_id);
            let failed = response.data == async_graphql::Value::Null && !response.errors.is_empty();
            let message = if failed {
                json!({ "id": id, "type": "error", "payload": response.errors })
            } else {
                json!({ "id": id, "type": "next", "payload": response })
            };
            // Waits while the client is slow to read: the bus drops what it cannot hold.
            if out.send(text(message)).await.is_err() || failed {
                let _ = done.send(id);
                return;
            }
        }
    }
    let _ = out
        .send(text(json!({ "id": id, "type": "complete" })))
        .await;
    let _ = done.send(id);
}
