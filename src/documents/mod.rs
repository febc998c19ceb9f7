//! The document pipeline, before any resolver runs: documents parsed and
//! limit-checked once and kept by their SHA-256 (`parsed`, `limits`),
//! automatic persisted queries (`persisted`) and trusted documents
//! (`trusted`: the set, its Redis store, the manifest formats, the check
//! at the door).

pub mod cost;
pub mod limits;
pub mod parsed;
pub mod persisted;
pub mod trusted;
