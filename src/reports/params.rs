//! The parameters of each report type, read from the JSON the client sent.
//! Anything that does not fit — an unknown key, a wrong type, an id of the
//! wrong kind, a window that ends before it starts — is a reason the report
//! fails with, written for the person who asked for it.

use bson::oid::ObjectId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{GlobalId, NodeKind};
use crate::models::asset::rules::AssetCategory;
use crate::models::report::rules::ReportType;

/// A window of time, `from` inclusive, `to` exclusive; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The validated parameters of one report.
#[derive(Debug, Clone, PartialEq)]
pub enum Parameters {
    AssetInventory {
        category: Option<AssetCategory>,
    },
    ProgramOccupancy {
        program: Option<ObjectId>,
    },
    BeneficiaryProgress {
        beneficiary: ObjectId,
        window: Window,
    },
    TherapistWorkload {
        window: Window,
    },
    AuditSummary {
        window: Window,
    },
}

/// The keys each type takes.
pub fn keys(kind: ReportType) -> &'static [&'static str] {
    match kind {
        ReportType::AssetInventory => &["category"],
        ReportType::ProgramOccupancy => &["programId"],
        ReportType::BeneficiaryProgress => &["beneficiaryId", "from", "to"],
        ReportType::TherapistWorkload | ReportType::AuditSummary => &["from", "to"],
    }
}

/// Reads the stored parameter text of a `kind` report.
pub fn parse(kind: ReportType, text: &str) -> Result<Parameters, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| "the parameters are not a JSON object".to_string())?;
    let Value::Object(map) = value else {
        return Err("the parameters are not a JSON object".into());
    };
    let known = keys(kind);
    if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
        let takes = if known.is_empty() {
            "no parameters".to_string()
        } else {
            known.join(", ")
        };
        return Err(format!(
            "unknown parameter `{}`: {} takes {takes}",
            clip(unknown),
            kind.name()
        ));
    }
    let read = Reader(map);
    Ok(match kind {
        ReportType::AssetInventory => Parameters::AssetInventory {
            category: read.choice("category", AssetCategory::ALL)?,
        },
        ReportType::ProgramOccupancy => Parameters::ProgramOccupancy {
            program: read.id("programId", NodeKind::DisabilityProgram)?,
        },
        ReportType::BeneficiaryProgress => Parameters::BeneficiaryProgress {
            beneficiary: read
                .id("beneficiaryId", NodeKind::Beneficiary)?
                .ok_or("`beneficiaryId` is required")?,
            window: read.window(false)?,
        },
        ReportType::TherapistWorkload => Parameters::TherapistWorkload {
            window: read.window(true)?,
        },
        ReportType::AuditSummary => Parameters::AuditSummary {
            window: read.window(true)?,
        },
    })
}

/// At most 60 characters of a client's text, for a message.
fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(60).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped
}

/// A value's name as stored (`IN_USE`).
fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(name)) => name,
        _ => String::new(),
    }
}

struct Reader(Map<String, Value>);

impl Reader {
    /// A string parameter; absent and `null` are `None`.
    fn text(&self, key: &str, expected: &str) -> Result<Option<&str>, String> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{key}` must be {expected}")),
        }
    }

    fn choice<T: Serialize + Copy>(&self, key: &str, all: &[T]) -> Result<Option<T>, String> {
        let names: Vec<String> = all.iter().map(wire).collect();
        let expected = format!("one of {}", names.join(", "));
        let Some(given) = self.text(key, &expected)? else {
            return Ok(None);
        };
        all.iter()
            .zip(&names)
            .find(|(_, name)| name.as_str() == given)
            .map(|(value, _)| Some(*value))
            .ok_or_else(|| format!("`{key}` must be {expected}, not `{}`", clip(given)))
    }

    fn id(&self, key: &str, kind: NodeKind) -> Result<Option<ObjectId>, String> {
        let expected = format!("the global id of a {}", kind.name());
        let Some(given) = self.text(key, &expected)? else {
            return Ok(None);
        };
        GlobalId::decode_as(given, kind)
            .map(Some)
            .ok_or_else(|| format!("`{key}` is not the id of a {}", kind.name()))
    }

    fn instant(&self, key: &str) -> Result<Option<DateTime<Utc>>, String> {
        let expected = "an RFC 3339 date-time, e.g. 2026-01-31T00:00:00Z";
        let Some(given) = self.text(key, expected)? else {
            return Ok(None);
        };
        DateTime::parse_from_rfc3339(given)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("`{key}` must be {expected}, not `{}`", clip(given)))
    }

    fn window(&self, required: bool) -> Result<Window, String> {
        let window = Window {
            from: self.instant("from")?,
            to: self.instant("to")?,
        };
        if required {
            for (key, value) in [("from", window.from), ("to", window.to)] {
                if value.is_none() {
                    return Err(format!("`{key}` is required"));
                }
            }
        }
        if let (Some(from), Some(to)) = (window.from, window.to)
            && from > to
        {
            return Err("`from` is after `to`".into());
        }
        Ok(window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked_key_by_key() {
        assert_eq!(
            parse(ReportType::AssetInventory, r#"{"category":"IT"}"#),
            Ok(Parameters::AssetInventory {
                category: Some(AssetCategory::It)
            })
        );
        assert_eq!(
            parse(ReportType::AssetInventory, "{}"),
            Ok(Parameters::AssetInventory { category: None })
        );
        let unknown = parse(ReportType::AssetInventory, r#"{"colour":"red"}"#).unwrap_err();
        assert!(unknown.contains("unknown parameter `colour`"), "{unknown}");
        let wrong = parse(ReportType::AssetInventory, r#"{"category":7}"#).unwrap_err();
        assert!(
            wrong.contains("`category` must be one of OFFICE"),
            "{wrong}"
        );
        let id = GlobalId::new(NodeKind::Asset, ObjectId::new()).encode();
        let foreign = parse(
            ReportType::BeneficiaryProgress,
            &format!(r#"{{"beneficiaryId":"{id}"}}"#),
        )
        .unwrap_err();
        assert_eq!(foreign, "`beneficiaryId` is not the id of a Beneficiary");
        assert_eq!(
            parse(ReportType::BeneficiaryProgress, "{}").unwrap_err(),
            "`beneficiaryId` is required"
        );
        let backwards = parse(
            ReportType::AuditSummary,
            r#"{"from":"2026-02-01T00:00:00Z","to":"2026-01-01T00:00:00Z"}"#,
        );
        assert_eq!(backwards.unwrap_err(), "`from` is after `to`");
        assert_eq!(
            parse(
                ReportType::TherapistWorkload,
                r#"{"from":"2026-02-01T00:00:00Z"}"#
            )
            .unwrap_err(),
            "`to` is required"
        );
        assert!(
            parse(
                ReportType::AuditSummary,
                r#"{"from":"yesterday","to":null}"#
            )
            .unwrap_err()
            .contains("RFC 3339")
        );
    }
}
