//! Live-path latencies: from sending a mutation to (a) a webhook receiver
//! getting its signed delivery and (b) a subscriber on a second instance
//! (same database, same Redis) getting the event, and (c) a subscriber on
//! the same instance, for comparison. Two real applications (release
//! build) on FerretDB/MongoDB and Redis, a real HTTP receiver and real
//! websocket clients, all on loopback. Run with `scripts/bench live`
//! (BENCH_EVENTS sets the number of mutations, default 300).

mod common;
use common::post;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alawael::cache::Cache;
use alawael::config::{Environment, Settings, load_from};
use alawael::db::{Db, migrations};
use alawael::startup::Application;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn settings(database: &str) -> anyhow::Result<Settings> {
    let base = std::env::var("MONGODB_URI")
        .map_err(|_| anyhow::anyhow!("run through scripts/bench (MONGODB_URI)"))?;
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("bad MONGODB_URI"))?;
    let hosts = rest.split('/').next().unwrap_or(rest);
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert(
        "MONGODB_URI".into(),
        format!("{scheme}://{hosts}/{database}"),
    );
    let redis = std::env::var("REDIS_URL")
        .map_err(|_| anyhow::anyhow!("the cross-instance figure needs REDIS_URL"))?;
    vars.insert("REDIS_URL".into(), redis);
    Ok(load_from(Path::new("config"), Environment::Test, &vars)?)
}

async fn start(settings: Settings) -> anyhow::Result<(String, u16)> {
    let db = Db::connect(&settings.database).await?;
    let cache = Cache::connect(&settings.redis).await?;
    let app = Application::from_parts(settings, db, cache, Some("127.0.0.1:0"))?;
    let (address, port) = (format!("http://{}/graphql", app.address()), app.port());
    tokio::spawn(app.run_until_stopped());
    Ok((address, port))
}

/// A websocket subscribed to `assetUpdated`; every asset name it receives goes to the channel.
async fn subscriber(
    port: u16,
    token: &str,
) -> anyhow::Result<mpsc::UnboundedReceiver<(String, Instant)>> {
    let mut request = format!("ws://127.0.0.1:{port}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    let _ack = socket.next().await;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { assetUpdated { asset { name } } }" } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                if let Some(name) =
                    value["payload"]["data"]["assetUpdated"]["asset"]["name"].as_str()
                {
                    let _ = sender.send((name.to_string(), Instant::now()));
                }
            }
        }
    });
    Ok(receiver)
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{name:<44} n={:<5} median {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        samples.len(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
}

async fn wait_for(
    receiver: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    name: &str,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some((got, at))) if got == name => return Some(at),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300usize);
    let database = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let settings = settings(&database)?;
    let db = Db::connect(&settings.database).await?;
    migrations::up(&db, &alawael::models::registry::indexes()).await?;
    alawael::seed::load(&db, &settings.seed).await?;
    let (a, a_port) = start(settings.clone()).await?;
    let (_b, b_port) = start(settings.clone()).await?;

    // The webhook receiver: every delivery's asset name and arrival time.
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let receiver = {
        let arrivals = arrivals.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let arrivals = arrivals.clone();
                async move {
                    let value: Value = serde_json::from_str(&body).unwrap_or_default();
                    if let (Some(name), Ok(mut seen)) =
                        (value["data"]["name"].as_str(), arrivals.lock())
                    {
                        seen.entry(name.to_string()).or_insert_with(Instant::now);
                    }
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let http = reqwest::Client::new();
    let login = post(&http, &a, None, "mutation { login(email: \"admin@alawael.local\", password: \"alawael-dev-password\") { accessToken } }", json!({})).await?;
    let token = login["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    post(&http, &a, Some(&token), "mutation($u: String!) { createWebhook(input: { url: $u, events: [\"asset.created\"] }) { secret } }", json!({ "u": hook_url })).await?;
    let mut local = subscriber(a_port, &token).await?;
    let mut remote = subscriber(b_port, &token).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (mut to_hook, mut to_remote, mut to_local, mut mutation) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..events {
        let name = format!("bench {i}");
        let sent = Instant::now();
        post(&http, &a, Some(&token), "mutation($n: String!) { createAsset(input: { name: $n, category: IT, value: { amountMinor: 1, currency: \"SAR\" } }) { id } }", json!({ "n": name })).await?;
        mutation.push(sent.elapsed());
        if let Some(at) = wait_for(&mut local, &name).await {
            to_local.push(at - sent);
        }
        if let Some(at) = wait_for(&mut remote, &name).await {
            to_remote.push(at - sent);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = arrivals.lock().ok().and_then(|s| s.get(&name).copied());
            if let Some(at) = seen {
                to_hook.push(at - sent);
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    println!(
        "{events} createAsset mutations, one at a time, two instances on one database and one Redis, loopback"
    );
    summary("mutation answered", mutation);
    summary("mutation sent → subscriber, same instance", to_local);
    summary("mutation sent → subscriber, other instance", to_remote);
    summary("mutation sent → webhook receiver", to_hook);
    db.database().drop().await?;
    Ok(())
}
