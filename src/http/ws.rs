//! `/graphql/ws`: GraphQL over websockets in the two protocols clients
//! speak, chosen by `Sec-WebSocket-Protocol`: graphql-transport-ws, and the
//! legacy graphql-ws of subscriptions-transport-ws (`start`/`data`/`stop`,
//! `ka` keep-alives, `connection_error`). Both share one connection loop:
//! authentication in `connection_init` (4401/4403), the init timeout (4408),
//! duplicate ids (4409), a cap on operations per connection, trusted
//! documents, the document limits, message size, a bounded send queue (a
//! client that never reads loses events, the server does not grow), and
//! closes at shutdown (1001), token expiry (4401) and account change
//! (4403). A connection is two tasks (this loop, which also polls its
//! operations, and the writer) and a 4 KiB read buffer by default, so an
//! idle subscriber costs little memory.
//!
//! async-graphql's `http::WebSocket` has no send bound, replaces a running id
//! instead of refusing it, and has no operation cap, limits check or
//! server-side closes, so the loop is ours; its protocol names and its
//! `ClientMessage` (which parses both protocols) are reused.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, ClientMessage, WebSocketProtocols as Protocol};
use async_graphql::parser::types::OperationType;
use async_graphql::{Request, Response, ServerError};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response as HttpResponse;
use futures::{SinkExt, Stream, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::StreamMap;

use super::Api;
use super::{client_address, request_id};
use crate::auth::Caller;
use crate::error::code;
use crate::events::Event;
use crate::graphql::context::RequestContext;
use crate::graphql::errors;
use crate::http::graphql::{operation_type, with_request_data};

/// How long a closing connection may take to hand over its close frame
/// before the socket is dropped (a client that never reads).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub async fn upgrade(
    State(api): State<Api>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> HttpResponse {
    let state = api.app.clone();
    let settings = &state.settings.websocket;
    let context_id = request_id(&headers);
    let address = client_address(&headers, peer, &state.settings.server);
    let agent = super::user_agent(&headers);
    let ws = ws.protocols(ALL_WEBSOCKET_PROTOCOLS);
    // A client that names no protocol gets graphql-transport-ws.
    let protocol = ws
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(Protocol::GraphQLWS);
    ws.max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        .read_buffer_size(settings.read_buffer_bytes)
        // Each message goes out as it is sent: the queue is the buffer.
        .write_buffer_size(0)
        .on_upgrade(move |socket| serve(socket, protocol, api, context_id, (address, agent)))
}

/// `{"type", "id"?, "payload"?}`, the envelope of every server message.
#[derive(Serialize)]
struct Envelope<'a, P> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

fn message<P: Serialize>(kind: &'static str, id: Option<&str>, payload: Option<P>) -> Message {
    match serde_json::to_string(&Envelope { kind, id, payload }) {
        Ok(text) => Message::Text(text.into()),
        Err(error) => {
            tracing::error!(%error, kind, "websocket message did not serialise");
            let payload = json!([{ "message": "internal server error", "extensions": { "code": code::INTERNAL } }]);
            Message::Text(
                json!({ "type": "error", "id": id, "payload": payload })
                    .to_string()
                    .into(),
            )
        }
    }
}

fn bare(kind: &'static str, id: Option<&str>) -> Message {
    message::<()>(kind, id, None)
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

/// The one GraphQL error of a refusal: `{message, extensions: {code}}`.
fn refusal(code: &str, message: &str) -> Value {
    json!({ "message": message, "extensions": { "code": code } })
}

/// What the server says in each protocol; what clients say parses into
/// async-graphql's `ClientMessage` for both.
trait ServerMessages: Copy {
    /// A result of an operation: `next`, or `data` in graphql-ws.
    fn result(self, id: &str, response: &Response) -> Message;
    /// A subscription that failed without data: an `error` that ends it in
    /// graphql-transport-ws; `None` in graphql-ws, which sends the failure as
    /// `data` followed by `complete`.
    fn failure(self, id: &str, errors: &[ServerError]) -> Option<Message>;
    /// An operation refused before it runs: `error` (a list of errors, or one
    /// error in graphql-ws).
    fn refused(self, id: &str, code: &str, message: &str) -> Message;
    /// The answer to the client stopping an operation (`complete` in graphql-ws).
    fn stopped(self, id: &str) -> Option<Message>;
    /// Sent before the close frame when `connection_init` is refused.
    fn init_refused(self, reason: &str) -> Option<Message>;
    /// The periodic keep-alive (`ka` in graphql-ws).
    fn keepalive(self) -> Option<Message>;
}

impl ServerMessages for Protocol {
    fn result(self, id: &str, response: &Response) -> Message {
        let kind = match self {
            Protocol::GraphQLWS => "next",
            Protocol::SubscriptionsTransportWS => "data",
        };
        message(kind, Some(id), Some(response))
    }

    fn failure(self, id: &str, errors: &[ServerError]) -> Option<Message> {
        match self {
            Protocol::GraphQLWS => Some(message("error", Some(id), Some(errors))),
            Protocol::SubscriptionsTransportWS => None,
        }
    }

    fn refused(self, id: &str, code: &str, text: &str) -> Message {
        let error = refusal(code, text);
        match self {
            Protocol::GraphQLWS => message("error", Some(id), Some([error])),
            Protocol::SubscriptionsTransportWS => message("error", Some(id), Some(error)),
        }
    }

    fn stopped(self, id: &str) -> Option<Message> {
        match self {
            Protocol::GraphQLWS => None,
            Protocol::SubscriptionsTransportWS => Some(bare("complete", Some(id))),
        }
    }

    fn init_refused(self, reason: &str) -> Option<Message> {
        match self {
            Protocol::GraphQLWS => None,
            Protocol::SubscriptionsTransportWS => Some(message(
                "connection_error",
                None,
                Some(json!({ "message": reason })),
            )),
        }
    }

    fn keepalive(self) -> Option<Message> {
        match self {
            Protocol::GraphQLWS => None,
            Protocol::SubscriptionsTransportWS => Some(bare("ka", None)),
        }
    }
}

/// The server's half of the socket: sends what the queue holds, in order,
/// until a close frame or until every sender is gone.
fn spawn_writer(
    mut sink: futures::stream::SplitSink<WebSocket, Message>,
    mut outbox: mpsc::Receiver<Message>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    })
}

/// Ends the connection: the close frame (and, for a refused init in
/// graphql-ws, `connection_error` first) after what is queued, then the
/// socket closes; a client that does not read gets `CLOSE_GRACE`.
async fn finish(out: mpsc::Sender<Message>, mut writer: JoinHandle<()>, last: Vec<Message>) {
    let flushed = tokio::time::timeout(CLOSE_GRACE, async {
        for message in last {
            if out.send(message).await.is_err() {
                break;
            }
        }
        drop(out);
        let _ = (&mut writer).await;
    })
    .await;
    if flushed.is_err() {
        writer.abort();
    }
}

/// Phase 1: the first message must be `connection_init` with an acceptable
/// token, within the time limit. `Ok` holds the caller and the token's
/// expiry; `Err` the messages that end the connection.
async fn initialise(
    incoming: &mut futures::stream::SplitStream<WebSocket>,
    protocol: Protocol,
    api: &Api,
) -> Result<crate::state::Session, Vec<Message>> {
    let settings = &api.app.settings.websocket;
    let refuse = |code: u16, reason: &str| {
        protocol
            .init_refused(reason)
            .into_iter()
            .chain([close(code, reason)])
            .collect::<Vec<_>>()
    };
    let first = tokio::time::timeout(
        Duration::from_secs(settings.init_timeout_secs),
        incoming.next(),
    )
    .await;
    let raw = match first {
        Err(_) => return Err(vec![close(4408, "Connection initialisation timeout")]),
        Ok(Some(Ok(Message::Text(raw)))) => raw,
        Ok(_) => return Err(Vec::new()),
    };
    match ClientMessage::from_bytes(raw.as_bytes()) {
        Ok(ClientMessage::ConnectionInit { payload }) => {
            let token = payload.as_ref().and_then(bearer);
            // Boxed: the lookup's state is large and needed only here.
            Box::pin(api.app.authenticate_session(token.as_deref()))
                .await
                .map_err(|_| refuse(4403, "Forbidden"))
        }
        Ok(_) => Err(refuse(4401, "Unauthorized")),
        Err(_) => Err(refuse(4400, "Invalid message")),
    }
}

async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    api: Api,
    request_id: String,
    (address, agent): (String, Option<String>),
) {
    let state = api.app.clone();
    let settings = &state.settings.websocket;
    let (sink, mut incoming) = socket.split();
    let (out, outbox) = mpsc::channel::<Message>(settings.send_buffer_messages.max(1));
    let writer = spawn_writer(sink, outbox);
    let mut closing = state.lifecycle.closing();

    let initialised = tokio::select! {
        _ = closed(&mut closing) => Err(vec![close(1001, "server shutting down")]),
        outcome = initialise(&mut incoming, protocol, &api) => outcome,
    };
    let (caller, expires_at, session) = match initialised {
        Ok(session) => (session.caller, session.expires_at, session.id),
        Err(last) => return finish(out, writer, last).await,
    };
    let _ = out.send(bare("connection_ack", None)).await;
    let account = match &caller {
        Caller::User(p) => Some(p.id),
        Caller::Anonymous => None,
    };
    // The connection lives no longer than its access token.
    let expiry = token_expiry(expires_at);
    tokio::pin!(expiry);
    let ka = protocol.keepalive();
    let mut keepalive = tokio::time::interval(Duration::from_secs(settings.keepalive_secs.max(1)));
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = state.bus.subscribe();
    let context = RequestContext {
        caller,
        request_id,
        client_address: address,
        session: session.clone(),
        user_agent: agent,
    };

    // Phase 2: operations until either side closes. The operations run in
    // this task; what one produces, or a reply to the client, waits in
    // `pending` for room in the queue. Meanwhile neither the client nor the
    // operations are read (their events lag and are lost), but the closing
    // conditions are still watched.
    let mut operations: StreamMap<String, Operation> = StreamMap::new();
    let mut pending: Option<Message> = None;
    let last = loop {
        tokio::select! {
            _ = closed(&mut closing) => break vec![close(1001, "server shutting down")],
            _ = &mut expiry => break vec![close(4401, "the access token has expired; reconnect with a new one")],
            event = events.recv() => match event {
                Ok(Event::AccountChanged { user }) if Some(user) == account => {
                    break vec![close(4403, "the account changed; sign in again")];
                }
                Ok(Event::SessionEnded { user, session: ended })
                    if Some(user) == account && session.as_deref() == Some(ended.as_str()) =>
                {
                    break vec![close(4403, "this session has ended; sign in again")];
                }
                Err(RecvError::Closed) => break Vec::new(),
                _ => {}
            },
            _ = keepalive.tick(), if ka.is_some() => {
                // Only when there is room: a client that does not read needs no keep-alive.
                if let Some(ka) = &ka {
                    let _ = out.try_send(ka.clone());
                }
            }
            permit = out.reserve(), if pending.is_some() => match (permit, pending.take()) {
                (Ok(permit), Some(message)) => permit.send(message),
                _ => break Vec::new(),
            },
            Some((id, step)) = operations.next(), if pending.is_none() && !operations.is_empty() => {
                // Gone as soon as its last message is out, so the id is free again.
                if step.last {
                    operations.remove(&id);
                }
                pending = Some(step.message);
            }
            message = incoming.next(), if pending.is_none() => {
                let raw = match message {
                    Some(Ok(Message::Text(raw))) => raw,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => break vec![close(4400, "Binary messages are not supported")],
                    Some(Ok(Message::Close(_))) | None => break Vec::new(),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "websocket read failed");
                        break vec![close(1009, "Message too big or malformed")];
                    }
                };
                match ClientMessage::from_bytes(raw.as_bytes()) {
                    Ok(ClientMessage::Ping { .. }) => pending = Some(bare("pong", None)),
                    Ok(ClientMessage::Pong { .. }) => {}
                    Ok(ClientMessage::ConnectionTerminate) => break vec![close(1000, "")],
                    Ok(ClientMessage::ConnectionInit { .. }) => {
                        break vec![close(4429, "Too many initialisation requests")];
                    }
                    Ok(ClientMessage::Stop { id }) => {
                        if operations.remove(&id).is_some() {
                            pending = protocol.stopped(&id);
                        }
                    }
                    Ok(ClientMessage::Start { id, payload }) => {
                        if operations.contains_key(&id) {
                            break vec![close(4409, &format!("Subscriber for {id} already exists"))];
                        }
                        if operations.len() >= settings.max_subscriptions {
                            let text = format!("at most {} operations may run on one connection", settings.max_subscriptions);
                            pending = Some(protocol.refused(&id, code::RATE_LIMITED, &text));
                            continue;
                        }
                        match operation(&api, &context, protocol, &id, payload) {
                            Ok(running) => { operations.insert(id, running); }
                            Err(refused) => pending = Some(refused),
                        }
                    }
                    Err(_) => break vec![close(4400, "Invalid message")],
                }
            }
        }
    };
    // Ends the operations now, so their bus receivers go before the close.
    drop(operations);
    finish(out, writer, last).await;
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
        .or_else(|| {
            payload
                .get("apiKey")
                .and_then(Value::as_str)
                .map(|k| format!("ApiKey {k}"))
        })
}

/// A running operation: the messages it sends, the last being `complete`
/// (or, for a failed subscription in graphql-transport-ws, `error`).
type Operation = Pin<Box<dyn Stream<Item = Step> + Send>>;

/// A message of an operation, and whether it is its last.
struct Step {
    message: Message,
    last: bool,
}

/// Checks the document of a `subscribe`/`start` and starts it; a refusal is
/// the `error` to send instead.
fn operation(
    api: &Api,
    context: &RequestContext,
    protocol: Protocol,
    id: &str,
    mut request: Request,
) -> Result<Operation, Message> {
    // Over websockets a persisted query is only ever a trusted document.
    crate::documents::trusted::admit::admit(
        &api.app.settings.documents,
        &api.app.trusted,
        &api.documents,
        &mut request,
    )
    .map_err(|(code, message)| protocol.refused(id, code, &message))?;
    let document = api
        .documents
        .check(&request.query)
        .map_err(|refused| protocol.refused(id, refused.code, &refused.message))?;
    if let Caller::User(principal) = &context.caller
        && let Some(scopes) = principal.key
        && let Some(why) = crate::http::graphql::document::refused_for_key(
            &document,
            request.operation_name.as_deref(),
            scopes,
        )
    {
        return Err(protocol.refused(id, crate::error::code::FORBIDDEN, &why));
    }
    let subscription = operation_type(&document, request.operation_name.as_deref())
        == Some(OperationType::Subscription);
    let name = request.operation_name.clone();
    let cost = crate::documents::cost::estimate(
        &document,
        name.as_deref(),
        &request.variables,
        &api.app.settings.graphql,
    );
    request.set_parsed_query((*document).clone());
    let request = with_request_data(request, &api.app, context);
    let mut responses = api.schema.execute_stream(request);
    let (id, request_id) = (id.to_string(), context.request_id.clone());
    let (state, context) = (api.app.clone(), context.clone());
    Ok(Box::pin(async_stream::stream! {
        // Charged to the caller's quota like an HTTP operation...
        if let Some(Err(refused)) =
            crate::http::quota::charge(&state, &context, &document, name.as_deref(), cost).await
        {
            let text = format!("over the quota; retry in {} seconds", refused.retry_after_secs);
            yield Step { message: protocol.refused(&id, code::RATE_LIMITED, &text), last: true };
            return;
        }
        // ...and a query or mutation takes room among the operations
        // executing at once, as over HTTP (a subscription waits for events).
        let wait = Duration::from_millis(state.settings.server.admission_wait_ms);
        let _room = if subscription {
            None
        } else {
            match tokio::time::timeout(wait, state.admission.clone().acquire_owned()).await {
                Ok(Ok(permit)) => Some(permit),
                _ => {
                    let text = "the server is busy; retry shortly";
                    yield Step { message: protocol.refused(&id, code::SERVICE_UNAVAILABLE, text), last: true };
                    return;
                }
            }
        };
        while let Some(response) = responses.next().await {
            let response = errors::finalize(response, &request_id);
            let failed = subscription
                && response.data == async_graphql::Value::Null
                && !response.errors.is_empty();
            if let Some(error) = failed.then(|| protocol.failure(&id, &response.errors)).flatten() {
                yield Step { message: error, last: true };
                return;
            }
            yield Step { message: protocol.result(&id, &response), last: false };
        }
        yield Step { message: bare("complete", Some(&id)), last: true };
    }))
}
