//! Per-level latency of the request loaders (`graphql::batch::Batcher`),
//! with no database: a load answers at once, so what is left is the time
//! the batcher itself takes to gather a level's keys and answer them.
//!
//! A "level" is `ROWS` fields of one query level, each asking for one key,
//! polled together in one task as the executor polls the rows of a page.
//! `chain` is three such levels, each field asking for the next key only
//! once its own is answered (programme → enrolment → beneficiary). Every
//! run checks that a level cost exactly one load. Run with
//! `cargo bench --bench loader` (optional: LOADER_RUNS, LOADER_ROWS).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alawael::graphql::batch::Batcher;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A batcher whose loads answer at once and are counted.
fn counted() -> (Batcher<u32, u32>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let batcher = Batcher::new(move |keys: Vec<u32>| {
        seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(keys.into_iter().map(|k| (k, k + 1)).collect()) })
    });
    (batcher, calls)
}

/// One level: `rows` fields each asking for their own key.
async fn level(rows: usize) -> (Duration, usize) {
    let (batcher, calls) = counted();
    let started = Instant::now();
    let fields = (0..rows as u32).map(|k| batcher.load_one(k));
    for answer in futures::future::join_all(fields).await {
        answer.expect("an instant load does not fail");
    }
    (started.elapsed(), calls.load(Ordering::SeqCst))
}

/// Three levels, each field following its row to the next.
async fn chain(rows: usize) -> (Duration, usize) {
    let (batcher, calls) = counted();
    let batcher = &batcher;
    let started = Instant::now();
    let fields = (0..rows as u32).map(|k| async move {
        let one = batcher.load_one(k).await.ok().flatten().unwrap_or(0);
        let two = batcher
            .load_one(one + 10_000)
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        batcher.load_one(two + 10_000).await.ok().flatten()
    });
    futures::future::join_all(fields).await;
    (started.elapsed(), calls.load(Ordering::SeqCst))
}

fn summary(name: &str, mut times: Vec<Duration>, loads: &[usize], levels: usize) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let per_level = |d: Duration| d.as_secs_f64() * 1e6 / levels as f64;
    let exact = loads.iter().all(|&n| n == levels);
    println!(
        "{name:<28} runs {:>5}  per level: p50 {:>9.1} µs  p99 {:>9.1} µs  max {:>9.1} µs  loads per run {} ({})",
        times.len(),
        per_level(at(0.5)),
        per_level(at(0.99)),
        per_level(at(1.0)),
        loads.first().copied().unwrap_or(0),
        if exact {
            "one per level, every run"
        } else {
            "NOT one per level"
        }
    );
}

fn main() {
    let runs = env_number("LOADER_RUNS", 300);
    let rows = env_number("LOADER_ROWS", 100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        // One task per request, as the server runs an operation.
        let task = tokio::spawn(async move {
            let mut one = (Vec::new(), Vec::new());
            let mut three = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let (t, n) = level(rows).await;
                one.0.push(t);
                one.1.push(n);
                let (t, n) = chain(rows).await;
                three.0.push(t);
                three.1.push(n);
            }
            (one, three)
        });
        let (one, three) = task.await.expect("the bench task ran");
        println!("{rows} fields per level, loads answered at once (no database)");
        summary("one level", one.0, &one.1, 1);
        summary("three chained levels", three.0, &three.1, 3);
    });
}
