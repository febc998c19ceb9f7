//! Driver monitoring. Always on, from the pool's events (cheap: no
//! documents): operations, their duration, slow ones, pool gauges. Per
//! command (`database.command_events`): every command by name and
//! collection, for `/metrics` and the round-trip tests, reads sent without a
//! time limit, slow commands by name. The driver copies and converts every
//! reply into a document for a command listener, which costs as much as
//! decoding the rows themselves, so production leaves it off.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mongodb::event::EventHandler;
use mongodb::event::cmap::CmapEvent;
use mongodb::event::command::CommandEvent;
use mongodb::options::ServerAddress;
use std::sync::Arc;
use std::time::Instant;

/// Commands the driver issues on its own, which are not database work.
const NOT_COUNTED: &[&str] = &["hello", "ismaster", "isMaster", "endSessions"];
/// Reads that must carry a time limit (`maxTimeMS`).
const READS: &[&str] = &["find", "aggregate", "count", "findAndModify", "distinct"];

pub struct CommandMonitor {
    started: AtomicU64,
    /// Operations by pool checkout: one per command sent, with or without
    /// command events.
    operations: AtomicU64,
    checked_out: Mutex<HashMap<(ServerAddress, u32), Instant>>,
    /// Reads sent without `maxTimeMS`: should stay 0 (also exported as a metric).
    unlimited_reads: AtomicU64,
    slow_after: Duration,
    /// Whether command events are on (they log slow commands by name).
    per_command: bool,
    in_flight: Mutex<HashMap<i32, (String, String)>>,
}

impl CommandMonitor {
    pub fn new(slow_after: Duration, per_command: bool) -> Self {
        Self {
            started: AtomicU64::new(0),
            operations: AtomicU64::new(0),
            checked_out: Mutex::new(HashMap::new()),
            unlimited_reads: AtomicU64::new(0),
            slow_after,
            per_command,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    pub fn commands_started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    pub fn unlimited_reads(&self) -> u64 {
        self.unlimited_reads.load(Ordering::SeqCst)
    }

    pub fn command_handler(self: &Arc<Self>) -> EventHandler<CommandEvent> {
        let me = Arc::clone(self);
        EventHandler::callback(move |event| me.on_command(event))
    }

    /// Operations sent since start (pool checkouts).
    pub fn operations(&self) -> u64 {
        self.operations.load(Ordering::SeqCst)
    }

    pub fn pool_handler(self: &Arc<Self>) -> EventHandler<CmapEvent> {
        let me = Arc::clone(self);
        EventHandler::callback(move |event| match event {
            CmapEvent::ConnectionCreated(_) => {
                metrics::gauge!("alawael_db_pool_connections").increment(1.0)
            }
            CmapEvent::ConnectionClosed(closed) => {
                metrics::gauge!("alawael_db_pool_connections").decrement(1.0);
                // A connection closed while out is not timed (nor kept).
                if let Ok(mut map) = me.checked_out.lock() {
                    map.remove(&(closed.address, closed.connection_id));
                }
            }
            CmapEvent::ConnectionCheckedOut(out) => {
                me.operations.fetch_add(1, Ordering::SeqCst);
                metrics::gauge!("alawael_db_pool_checked_out").increment(1.0);
                metrics::counter!("alawael_db_operations_total").increment(1);
                if let Ok(mut map) = me.checked_out.lock() {
                    map.insert((out.address, out.connection_id), Instant::now());
                }
            }
            CmapEvent::ConnectionCheckedIn(back) => {
                metrics::gauge!("alawael_db_pool_checked_out").decrement(1.0);
                let since = me
                    .checked_out
                    .lock()
                    .ok()
                    .and_then(|mut map| map.remove(&(back.address, back.connection_id)));
                if let Some(since) = since {
                    let held = since.elapsed();
                    metrics::histogram!("alawael_db_operation_duration_seconds")
                        .record(held.as_secs_f64());
                    if !me.per_command && held >= me.slow_after {
                        tracing::warn!(
                            duration_ms = held.as_millis() as u64,
                            "slow database operation"
                        );
                    }
                }
            }
            _ => {}
        })
    }

    fn on_command(&self, event: CommandEvent) {
        match event {
            CommandEvent::Started(started) => {
                if NOT_COUNTED.contains(&started.command_name.as_str()) {
                    return;
                }
                let collection = started
                    .command
                    .get(&started.command_name)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string();
                self.started.fetch_add(1, Ordering::SeqCst);
                tracing::trace!(command = %started.command_name, %collection, "database command");
                if READS.contains(&started.command_name.as_str())
                    && !started.command.contains_key("maxTimeMS")
                {
                    self.unlimited_reads.fetch_add(1, Ordering::SeqCst);
                    metrics::counter!("alawael_db_reads_without_time_limit_total", "collection" => collection.clone()).increment(1);
                    tracing::warn!(command = %started.command_name, %collection, "a read without a time limit");
                }
                metrics::counter!(
                    "alawael_db_commands_total",
                    "command" => started.command_name.clone(),
                    "collection" => collection.clone()
                )
                .increment(1);
                if let Ok(mut map) = self.in_flight.lock() {
                    map.insert(started.request_id, (started.command_name, collection));
                }
            }
            CommandEvent::Succeeded(done) => self.finish(done.request_id, done.duration, None),
            CommandEvent::Failed(failed) => self.finish(
                failed.request_id,
                failed.duration,
                Some(failed.failure.to_string()),
            ),
            _ => {}
        }
    }

    fn finish(&self, request_id: i32, duration: Duration, failure: Option<String>) {
        let entry = self
            .in_flight
            .lock()
            .ok()
            .and_then(|mut map| map.remove(&request_id));
        let Some((command, collection)) = entry else {
            return;
        };
        metrics::histogram!("alawael_db_command_duration_seconds", "command" => command.clone())
            .record(duration.as_secs_f64());
        if duration >= self.slow_after {
            tracing::warn!(%command, %collection, duration_ms = duration.as_millis() as u64, "slow database command");
        }
        if let Some(failure) = failure {
            tracing::debug!(%command, %collection, %failure, "database command failed");
        }
    }
}
