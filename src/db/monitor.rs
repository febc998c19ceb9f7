//! Driver command monitoring: counts every command started (by command and
//! collection, for `/metrics` and for the round-trip tests), logs slow
//! commands with their collection, and tracks the connection pool.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mongodb::event::EventHandler;
use mongodb::event::cmap::CmapEvent;
use mongodb::event::command::CommandEvent;
use std::sync::Arc;

/// Commands the driver issues on its own, which are not database work.
const NOT_COUNTED: &[&str] = &["hello", "ismaster", "isMaster", "endSessions"];
/// Reads that must carry a time limit (`maxTimeMS`).
const READS: &[&str] = &["find", "aggregate", "count", "findAndModify", "distinct"];

pub struct CommandMonitor {
    started: AtomicU64,
    /// Reads sent without `maxTimeMS`: should stay 0 (also exported as a metric).
    unlimited_reads: AtomicU64,
    slow_after: Duration,
    in_flight: Mutex<HashMap<i32, (String, String)>>,
}

impl CommandMonitor {
    pub fn new(slow_after: Duration) -> Self {
        Self {
            started: AtomicU64::new(0),
            unlimited_reads: AtomicU64::new(0),
            slow_after,
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

    pub fn pool_handler(self: &Arc<Self>) -> EventHandler<CmapEvent> {
        EventHandler::callback(|event| match event {
            CmapEvent::ConnectionCreated(_) => {
                metrics::gauge!("alawael_db_pool_connections").increment(1.0)
            }
            CmapEvent::ConnectionClosed(_) => {
                metrics::gauge!("alawael_db_pool_connections").decrement(1.0)
            }
            CmapEvent::ConnectionCheckedOut(_) => {
                metrics::gauge!("alawael_db_pool_checked_out").increment(1.0)
            }
            CmapEvent::ConnectionCheckedIn(_) => {
                metrics::gauge!("alawael_db_pool_checked_out").decrement(1.0)
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
