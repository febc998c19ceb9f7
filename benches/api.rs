//! Load benchmark: the real application (release build) on FerretDB/MongoDB
//! and Redis, driven over loopback by concurrent clients. Prints throughput,
//! latency percentiles and the process's peak memory. Run with `scripts/bench`
//! (optional: BENCH_SECONDS, BENCH_CLIENTS).

mod common;
use common::post;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alawael::cache::Cache;
use alawael::config::{Environment, load_from};
use alawael::db::{Db, migrations};
use alawael::startup::Application;
use serde_json::{Value, json};

const PAGE: &str = "{ assets(first: 100) { totalCount edges { cursor node { id name value { amountMinor currency } assignedTo { id name } } } } }";
const ONE: &str = "query($id: ID!) { asset(id: $id) { id name status } }";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn report(name: &str, mut samples: Vec<Duration>, errors: usize, elapsed: Duration) {
    samples.sort();
    let pct = |p: f64| {
        samples
            .get(((samples.len() as f64 * p) as usize).min(samples.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{name:<34} {:>7} req {:>8.1} req/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  errors {errors}",
        samples.len(),
        samples.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn drive(
    url: Arc<String>,
    token: Arc<String>,
    query: &'static str,
    variables: Value,
    clients: u64,
    seconds: u64,
) -> (Vec<Duration>, usize, Duration) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .build()
        .expect("client");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (http, url, token, variables) =
                (http.clone(), url.clone(), token.clone(), variables.clone());
            tokio::spawn(async move {
                let (mut samples, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match post(&http, &url, Some(&token), query, variables.clone()).await {
                        Ok(_) => samples.push(t.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        if let Ok((samples, e)) = task.await {
            all.extend(samples);
            errors += e;
        }
    }
    (all, errors, started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = env_number("BENCH_SECONDS", 10);
    let clients = env_number("BENCH_CLIENTS", 32);
    let base = std::env::var("MONGODB_URI")
        .map_err(|_| anyhow::anyhow!("run through scripts/bench (MONGODB_URI)"))?;
    let database = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("bad MONGODB_URI"))?;
    let hosts = rest.split('/').next().unwrap_or(rest);
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert(
        "MONGODB_URI".into(),
        format!("{scheme}://{hosts}/{database}"),
    );
    if let Ok(redis) = std::env::var("REDIS_URL") {
        vars.insert("REDIS_URL".into(), redis);
    }
    vars.insert("ALAWAEL__SERVER__REQUEST_TIMEOUT_SECS".into(), "60".into());
    let settings = load_from(Path::new("config"), Environment::Test, &vars)?;
    let db = Db::connect(&settings.database).await?;
    migrations::up(&db, &alawael::models::registry::indexes()).await?;
    alawael::seed::load(&db, &settings.seed).await?;
    let cache = Cache::connect(&settings.redis).await?;
    let app = Application::from_parts(settings, db.clone(), cache, Some("127.0.0.1:0"))?;
    let url = Arc::new(format!("http://{}/graphql", app.address()));
    tokio::spawn(app.run_until_stopped());

    let http = reqwest::Client::new();
    let started = Instant::now();
    let login = post(&http, &url, None, "mutation { login(email: \"manager@alawael.local\", password: \"alawael-dev-password\") { accessToken } }", json!({})).await?;
    println!(
        "login (Argon2id m=19MiB t=2 p=1), one request: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let token = Arc::new(
        login["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    let page = post(&http, &url, Some(&token), PAGE, json!({})).await?;
    let asset_id = page["data"]["assets"]["edges"][0]["node"]["id"].clone();

    let before = db.commands_started();
    post(&http, &url, Some(&token), PAGE, json!({})).await?;
    println!(
        "database commands for one 100-asset page with assignees and totalCount: {}",
        db.commands_started() - before
    );
    println!(
        "{clients} concurrent clients, {seconds} s per scenario, server and clients in one process on loopback"
    );

    let (samples, errors, elapsed) = drive(
        url.clone(),
        token.clone(),
        ONE,
        json!({ "id": asset_id }),
        clients,
        seconds,
    )
    .await;
    report("asset(id)", samples, errors, elapsed);
    let (samples, errors, elapsed) = drive(
        url.clone(),
        token.clone(),
        PAGE,
        json!({}),
        clients,
        seconds,
    )
    .await;
    report("assets(first: 100) + assignees", samples, errors, elapsed);
    println!(
        "peak resident memory of the process: {:.1} MiB",
        peak_rss_mib()
    );
    db.database().drop().await?;
    Ok(())
}
