//! What a cursor costs: encoding (every row of every page carries one) and
//! decoding (the `after`/`before` argument), in nanoseconds per cursor, for
//! a page's typical key (a name) and a numeric key. Run with
//! `cargo bench --bench cursor` (optional: CURSOR_RUNS).

use std::hint::black_box;
use std::time::Instant;

use alawael::cursor::CursorCodec;
use alawael::db::page::Position;
use bson::Bson;
use bson::oid::ObjectId;

fn main() {
    let runs: usize = std::env::var("CURSOR_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let codec = CursorCodec::new("a bench secret that is long enough to be a secret");
    let keys = [
        ("a name", Bson::String("Wheelchair (folding) 042".into())),
        ("an amount", Bson::Int64(1_250_000)),
    ];
    for (what, key) in keys {
        let positions: Vec<Position> = (0..100)
            .map(|_| Position {
                key: key.clone(),
                id: ObjectId::new(),
            })
            .collect();
        let mut out = Vec::with_capacity(256);
        let started = Instant::now();
        for i in 0..runs {
            out.clear();
            codec.encode_into("assets:NAME", &positions[i % 100], &mut out);
            black_box(&out);
        }
        let encode = started.elapsed().as_nanos() as f64 / runs as f64;
        let cursors: Vec<String> = positions
            .iter()
            .map(|p| codec.encode("assets:NAME", p))
            .collect();
        let started = Instant::now();
        for i in 0..runs {
            let read = codec.decode("assets:NAME", &cursors[i % 100], "after");
            assert!(read.is_ok(), "a cursor reads back");
            black_box(read.ok());
        }
        let decode = started.elapsed().as_nanos() as f64 / runs as f64;
        println!("cursor with {what}: encode {encode:.0} ns, decode {decode:.0} ns");
    }
}
