//! Idle websockets: starts the release server binary as a process of its own
//! on a fresh database, opens BENCH_SOCKETS (1,000) websockets with one
//! `assetUpdated` subscription each, and prints the server's resident memory
//! per socket (VmRSS from /proc/<pid>/status, idle and after one event),
//! then the events per second delivered to all of them while
//! BENCH_WRITERS (4) HTTP clients send BENCH_MUTATIONS (200) `updateAsset`
//! mutations. BENCH_PROTOCOL picks `graphql-transport-ws` (default) or
//! `graphql-ws`. Needs MONGODB_URI and REDIS_URL; run with
//! `cargo bench --bench sockets`.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alawael::config::{Environment, load_from};
use alawael::db::Db;
use anyhow::{Context, bail, ensure};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SERVER: &str = env!("CARGO_BIN_EXE_alawael");
const PASSWORD: &str = "bench-seed-password";
const SUBSCRIBE: &str = "subscription { assetUpdated { kind asset { id name } } }";
/// Handshakes in flight at once, in the warm-up and in the measurement.
const CONCURRENCY: usize = 64;
const UPDATE: &str =
    "mutation($id: ID!, $i: UpdateAssetInput!) { updateAsset(id: $id, input: $i) { id } }";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The two dialects the bench can speak: what starts an operation and what
/// carries a result.
struct Dialect {
    protocol: &'static str,
    start: &'static str,
    result: &'static str,
}

fn dialect() -> anyhow::Result<Dialect> {
    match std::env::var("BENCH_PROTOCOL").as_deref() {
        Err(_) | Ok("graphql-transport-ws") => Ok(Dialect {
            protocol: "graphql-transport-ws",
            start: "subscribe",
            result: "\"type\":\"next\"",
        }),
        Ok("graphql-ws") => Ok(Dialect {
            protocol: "graphql-ws",
            start: "start",
            result: "\"type\":\"data\"",
        }),
        Ok(other) => bail!("BENCH_PROTOCOL {other:?}: use graphql-transport-ws or graphql-ws"),
    }
}

/// The server process; stopped (SIGTERM, then SIGKILL) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..50 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .with_context(|| format!("{field} in /proc/{pid}/status"))
}

/// Raises this process's soft open-file limit to `need` (the server
/// inherits it), or says how to.
/// User plus system CPU time of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("a field of /proc/<pid>/stat")?
            .parse::<f64>()?)
    };
    let tick = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    Ok((ticks(11)? + ticks(12)?) / tick)
}

fn ensure_open_files(need: u64) -> anyhow::Result<()> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if soft >= need {
        return Ok(());
    }
    let raised = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={need}:"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    ensure!(
        raised,
        "the open-file limit is {soft}; this bench needs {need}: run `ulimit -n {need}` first"
    );
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await?.json().await?;
    ensure!(body["errors"].is_null(), "errors: {body}");
    Ok(body)
}

/// Opens a websocket and initialises it with `token`.
async fn connect(port: u16, dialect: &Dialect, token: &str) -> anyhow::Result<Socket> {
    let mut request = format!("ws://127.0.0.1:{port}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", dialect.protocol.parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::Text(init.to_string().into())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => return Ok(socket),
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            other => bail!("no connection_ack: {other:?}"),
        }
    }
}

/// `count` initialised websockets, `CONCURRENCY` handshakes at a time.
async fn connect_many(
    port: u16,
    dialect: &Dialect,
    token: &str,
    count: u64,
) -> anyhow::Result<Vec<Socket>> {
    futures::stream::iter(0..count)
        .map(|_| connect(port, dialect, token))
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Starts the `assetUpdated` subscription on every socket.
async fn start_all(sockets: &mut [Socket], dialect: &Dialect) -> anyhow::Result<()> {
    let start = json!({ "id": "1", "type": dialect.start, "payload": { "query": SUBSCRIBE } });
    for socket in sockets {
        socket.send(Message::Text(start.to_string().into())).await?;
    }
    Ok(())
}

/// Counts the results arriving on `socket` until it closes (or the task is
/// aborted, which drops the socket).
fn count(
    mut socket: Socket,
    result: &'static str,
    counter: Arc<Counter>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message
                && text.contains(result)
            {
                counter.hit();
            }
        }
    })
}

/// Results received, and when the last one came (microseconds since `zero`).
struct Counter {
    zero: Instant,
    received: AtomicU64,
    last_micros: AtomicU64,
}

impl Counter {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            zero: Instant::now(),
            received: AtomicU64::new(0),
            last_micros: AtomicU64::new(0),
        })
    }

    fn hit(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(self.zero.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last_micros.fetch_max(micros, Ordering::Relaxed);
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Waits until `target` results came or none came for `quiet`.
    async fn wait_for(&self, target: u64, quiet: Duration) -> u64 {
        let mut seen = self.received();
        let mut since = Instant::now();
        while seen < target {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = self.received();
            if now != seen {
                (seen, since) = (now, Instant::now());
            } else if since.elapsed() > quiet {
                break;
            }
        }
        seen
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let socket_count = env_number("BENCH_SOCKETS", 1000);
    let mutations = env_number("BENCH_MUTATIONS", 200);
    let writers = env_number("BENCH_WRITERS", 4).max(1);
    let dialect = dialect()?;
    ensure_open_files(socket_count * 2 + 512)?;

    let base = std::env::var("MONGODB_URI").context("MONGODB_URI names the test server")?;
    let redis = std::env::var("REDIS_URL").context("REDIS_URL names the test server")?;
    let (scheme, rest) = base.split_once("://").context("a MongoDB URI")?;
    let hosts = rest.split('/').next().unwrap_or(rest);
    let uri = format!(
        "{scheme}://{hosts}/bench_sockets_{}",
        uuid::Uuid::new_v4().simple()
    );
    let config_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let port = free_port()?;
    let env: HashMap<&str, &str> = HashMap::from([
        ("ALAWAEL_ENV", "development"),
        (
            "ALAWAEL_CONFIG_DIR",
            config_dir.to_str().context("config path")?,
        ),
        ("MONGODB_URI", uri.as_str()),
        ("REDIS_URL", redis.as_str()),
        ("SEED_PASSWORD", PASSWORD),
        ("RUST_LOG", "error"),
    ]);
    for args in [&["migrate", "up"][..], &["seed"][..]] {
        let status = Command::new(SERVER)
            .args(args)
            .envs(&env)
            .stdout(Stdio::null())
            .status()?;
        ensure!(status.success(), "alawael {args:?} failed");
    }
    let server = Server(
        Command::new(SERVER)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .envs(&env)
            .stdout(Stdio::null())
            .spawn()?,
    );
    let pid = server.0.id();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let started = Instant::now();
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let login = post(
        &http,
        &url,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
        json!({ "e": "manager@alawael.local", "p": PASSWORD }),
    )
    .await?;
    let token = login["data"]["login"]["accessToken"]
        .as_str()
        .context("access token")?
        .to_string();
    let page = post(
        &http,
        &url,
        Some(&token),
        "{ assets(first: 1) { edges { node { id } } } }",
        json!({}),
    )
    .await?;
    let asset = page["data"]["assets"]["edges"][0]["node"]["id"].clone();
    let update = |n: u64| json!({ "id": asset, "i": { "name": format!("Bench asset {n}") } });

    // Sockets through their whole life first, as many at once as the
    // measurement opens, so the baseline holds what is made once (database
    // pool connections, allocator arenas, lazily built state).
    let warm = Counter::new();
    let mut sockets = connect_many(port, &dialect, &token, CONCURRENCY as u64).await?;
    start_all(&mut sockets, &dialect).await?;
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|s| count(s, dialect.result, warm.clone()))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    post(&http, &url, Some(&token), UPDATE, update(0)).await?;
    let got = warm
        .wait_for(CONCURRENCY as u64, Duration::from_secs(10))
        .await;
    ensure!(
        got == CONCURRENCY as u64,
        "{got} warm-up sockets of {CONCURRENCY} got the event"
    );
    readers.iter().for_each(|r| r.abort());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = || status_kib(pid, "VmRSS:");
    let baseline = rss()?;

    let opened = Instant::now();
    let mut sockets = connect_many(port, &dialect, &token, socket_count).await?;
    let opening = opened.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let connected = rss()?;
    start_all(&mut sockets, &dialect).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let subscribed = rss()?;

    let counter = Counter::new();
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|s| count(s, dialect.result, counter.clone()))
        .collect();
    post(&http, &url, Some(&token), UPDATE, update(1)).await?;
    let first = counter
        .wait_for(socket_count, Duration::from_secs(10))
        .await;
    ensure!(
        first == socket_count,
        "only {first} of {socket_count} subscriptions received the first event"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_event = rss()?;

    let per_socket = |from: u64, to: u64| to.saturating_sub(from) as f64 / socket_count as f64;
    println!(
        "{socket_count} {} sockets with one assetUpdated subscription each, server pid {pid} (release build), opened in {:.1} s",
        dialect.protocol,
        opening.as_secs_f64()
    );
    println!("server VmRSS after {CONCURRENCY} warm-up sockets came and went: {baseline} KiB");
    println!(
        "initialised, idle:             VmRSS {connected} KiB, {:.1} KiB per socket",
        per_socket(baseline, connected)
    );
    println!(
        "one subscription each, idle:   VmRSS {subscribed} KiB, {:.1} KiB per socket ({:.1} for the subscription)",
        per_socket(baseline, subscribed),
        per_socket(connected, subscribed)
    );
    println!(
        "after one event on every one:  VmRSS {after_event} KiB, {:.1} KiB per socket",
        per_socket(baseline, after_event)
    );

    // Fan-out: every mutation is one event for each of the sockets.
    let before = counter.received();
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let zero_micros = u64::try_from(counter.zero.elapsed().as_micros()).unwrap_or(0);
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            let variables: Vec<Value> = (0..mutations)
                .filter(|n| n % writers == w)
                .map(|n| update(n + 2))
                .collect();
            tokio::spawn(async move {
                for v in variables {
                    post(&http, &url, Some(&token), UPDATE, v).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let mutating = started.elapsed();
    let expected = before + mutations * socket_count;
    let received = counter.wait_for(expected, Duration::from_secs(5)).await - before;
    let cpu = cpu_seconds(pid)? - cpu_before;
    let last = counter.last_micros.load(Ordering::Relaxed);
    let elapsed = Duration::from_micros(last.saturating_sub(zero_micros));
    println!(
        "{mutations} updateAsset mutations from {writers} HTTP clients in {:.2} s ({:.0}/s)",
        mutating.as_secs_f64(),
        mutations as f64 / mutating.as_secs_f64()
    );
    println!(
        "events delivered: {received} of {} in {:.2} s: {:.0} events/s (server, FerretDB and this client share the machine)",
        mutations * socket_count,
        elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64()
    );
    println!(
        "server CPU over the run: {cpu:.2} s, {:.1} µs per delivered event (mutations included)",
        cpu * 1e6 / received.max(1) as f64
    );
    println!("server peak VmHWM: {} KiB", status_kib(pid, "VmHWM:")?);
    readers.iter().for_each(|r| r.abort());
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "all sockets closed:            VmRSS {} KiB (what the allocator kept)",
        rss()?
    );

    drop(server);
    let mut vars = HashMap::new();
    vars.insert("MONGODB_URI".to_string(), uri);
    let settings = load_from(&config_dir, Environment::Development, &vars)?;
    Db::connect(&settings.database)
        .await?
        .database()
        .drop()
        .await?;
    Ok(())
}
