//! One file per model: what is particular to it (the list contract every
//! model keeps is checked once, in `contract`, over all of them).

mod asset;
mod audit_log_entry;
mod beneficiary;
mod disability_program;
pub mod report;
mod user;
pub mod webhook;
