//! The report worker: computes requested reports in the background. Each
//! process that serves may run one (`reports.worker`); they share the queue
//! in the database, and a claim (see `db::reports`) gives each attempt of a
//! report to exactly one of them. A worker wakes every poll interval, and at
//! once when this process publishes a new report; it renews its lease while
//! it computes, publishes every status change on the event bus (which
//! `reportUpdated` streams), and on shutdown hands an unfinished report back
//! to the queue.

mod asset_inventory;
mod audit_summary;
mod beneficiary_progress;
pub mod compute;
pub mod params;
mod program_occupancy;
mod reads;
mod therapist_workload;
mod values;

use std::sync::Arc;

use bson::Document;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::ReportSettings;
use crate::db::DbError;
use crate::db::model::Model;
use crate::events::{ChangeKind, Event, Snapshot};
use crate::models::report::record::{Claim, ReportQueue, ReportRecord};
use crate::state::AppState;
use compute::Failure;

/// Reports read from the queue at a time.
const CLAIMABLE_BATCH: i64 = 10;
/// What a report fails with when its computation broke in an unexpected way.
const BROKEN: &str = "the report could not be computed because of an internal error";

/// Starts the worker; it stops when `state.lifecycle` begins shutting down.
pub fn spawn(state: Arc<AppState>) -> JoinHandle<()> {
    let worker = Worker {
        queue: ReportQueue::new(&state.db),
        settings: state.settings.reports.clone(),
        owner: format!("worker-{}", uuid::Uuid::new_v4().simple()),
        closing: state.lifecycle.closing(),
        state,
    };
    tokio::spawn(worker.run())
}

struct Worker {
    state: Arc<AppState>,
    queue: ReportQueue,
    settings: ReportSettings,
    /// This process's worker, as lease owner.
    owner: String,
    closing: watch::Receiver<bool>,
}

/// How a claimed report's computation ended.
enum Ending {
    Computed(Result<serde_json::Value, Failure>),
    /// Another worker took the report over (this one's lease had run out).
    Lost,
    /// The process is shutting down.
    Stopping,
}

impl Worker {
    async fn run(mut self) {
        let mut requests = self.state.bus.subscribe();
        tracing::info!(owner = self.owner, "report worker started");
        while !self.stopping() {
            if let Err(error) = self.drain().await {
                tracing::warn!(%error, "report worker: the queue could not be worked; retrying");
            }
            if self.stopping() {
                break;
            }
            tokio::select! {
                _ = closed(&mut self.closing) => break,
                _ = tokio::time::sleep(self.settings.poll_interval()) => {}
                _ = requested(&mut requests) => {}
            }
        }
        tracing::info!(owner = self.owner, "report worker stopped");
    }

    fn stopping(&self) -> bool {
        *self.closing.borrow()
    }

    /// Works the queue until nothing in it can be claimed.
    async fn drain(&mut self) -> Result<(), DbError> {
        loop {
            let claimable = self.queue.claimable(CLAIMABLE_BATCH).await?;
            let mut worked = false;
            for seen in &claimable {
                if self.stopping() {
                    return Ok(());
                }
                match self
                    .queue
                    .claim(
                        seen,
                        &self.owner,
                        self.settings.lease(),
                        self.settings.max_attempts,
                    )
                    .await?
                {
                    Claim::Lost => {}
                    Claim::GaveUp(report) => {
                        tracing::warn!(report = %report.id, attempts = report.attempts, "report failed: its workers kept stopping");
                        self.publish(report);
                        worked = true;
                    }
                    Claim::Running(report) => {
                        self.publish(report.clone());
                        self.work(report).await?;
                        worked = true;
                    }
                }
            }
            if !worked {
                return Ok(());
            }
        }
    }

    /// Computes one claimed report, renewing the lease meanwhile, and
    /// stores what came of it.
    async fn work(&mut self, held: ReportRecord) -> Result<(), DbError> {
        let ending = {
            let computing = compute::compute(&self.state.db, held.kind, &held.parameters);
            tokio::pin!(computing);
            let mut renew = tokio::time::interval(self.settings.lease() / 3);
            renew.tick().await;
            loop {
                tokio::select! {
                    outcome = &mut computing => break Ending::Computed(outcome),
                    _ = renew.tick() => {
                        match self.queue.renew(&held, &self.owner, self.settings.lease()).await {
                            Ok(true) => {}
                            Ok(false) => break Ending::Lost,
                            Err(error) => tracing::warn!(%error, report = %held.id, "the report's lease could not be renewed"),
                        }
                    }
                    _ = closed(&mut self.closing) => break Ending::Stopping,
                }
            }
        };
        let after = match ending {
            Ending::Lost => None,
            Ending::Stopping => self.queue.release(&held, &self.owner).await?,
            Ending::Computed(Ok(result)) => match to_document(result) {
                Ok(result) => self.queue.complete(&held, &self.owner, result).await?,
                Err(error) => {
                    tracing::error!(%error, report = %held.id, "a report result could not be stored");
                    self.queue.fail(&held, &self.owner, BROKEN).await?
                }
            },
            Ending::Computed(Err(Failure::Invalid(reason))) => {
                self.queue.fail(&held, &self.owner, &reason).await?
            }
            Ending::Computed(Err(Failure::Db(DbError::Unavailable(error)))) => {
                tracing::warn!(%error, report = %held.id, "the database failed while a report was computed; it goes back to the queue");
                self.queue.release(&held, &self.owner).await?
            }
            Ending::Computed(Err(Failure::Db(error))) => {
                tracing::error!(%error, report = %held.id, "a report could not be computed");
                self.queue.fail(&held, &self.owner, BROKEN).await?
            }
        };
        match after {
            Some(report) => {
                if report.status.is_final() {
                    self.queue.forget_claims(report.id).await?;
                }
                self.publish(report);
            }
            None => {
                tracing::warn!(report = %held.id, "another worker took the report over; this result is dropped");
            }
        }
        Ok(())
    }

    /// Announces a status change to subscribers (on every instance).
    fn publish(&self, report: ReportRecord) {
        let id = report.id;
        match Snapshot::of(Arc::new(report), &[]) {
            Ok(snapshot) => self.state.bus.publish(Event::record(
                ReportRecord::ENTITY,
                ChangeKind::Updated,
                id,
                snapshot,
            )),
            Err(error) => tracing::warn!(%error, "a report's status change could not be announced"),
        }
    }
}

fn to_document(result: serde_json::Value) -> Result<Document, bson::ser::Error> {
    match bson::to_bson(&result)? {
        bson::Bson::Document(document) => Ok(document),
        other => Ok(bson::doc! { "value": other }),
    }
}

/// Resolves when shutdown begins.
async fn closed(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves when a report is requested on any instance (or events were
/// missed, one of which may have been one).
async fn requested(events: &mut broadcast::Receiver<Event>) {
    loop {
        match events.recv().await {
            Ok(event)
                if event
                    .of_entity(ReportRecord::ENTITY)
                    .is_some_and(|(kind, _)| kind == ChangeKind::Created) =>
            {
                return;
            }
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}
