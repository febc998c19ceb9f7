//! Domain event names (`asset.created`, `session.recorded`, ...): what a
//! stored change raises, for webhooks and analytics. A change's names come
//! from its audit action (`enrollment.activate` → `enrollment.activated`),
//! plus the generic name of its kind when that differs
//! (`enrollment.updated`), plus `asset.status_changed` when an update
//! moved an asset's status. `catalogue()` is every name a webhook may subscribe to.

use crate::events::ChangeKind;

/// Every domain event name, as webhooks subscribe to them (`*` = all):
/// each model's `EVENTS`, in the order of the list of models.
pub fn catalogue() -> &'static [&'static str] {
    super::registry::event_names()
}

/// Subscribes a webhook to every name.
pub const ALL: &str = "*";

fn past(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "create" => "created",
        "update" => "updated",
        "delete" => "deleted",
        "record" => "recorded",
        "cancel" => "cancelled",
        "activate" => "activated",
        "complete" => "completed",
        "withdraw" => "withdrawn",
        "deactivate" => "deactivated",
        "request" => "requested",
        _ => return None,
    })
}

/// The names a change raises: `action` is its audit action, `changed` the
/// stored fields it changed. Only names in the catalogue.
pub fn raised(action: &str, kind: ChangeKind, changed: &[String]) -> Vec<String> {
    let Some((subject, verb)) = action.split_once('.') else {
        return Vec::new();
    };
    let mut names = Vec::new();
    if let Some(past) = past(verb) {
        names.push(format!("{subject}.{past}"));
    }
    let generic = format!("{subject}.{}", kind.as_str());
    if !names.contains(&generic) {
        names.push(generic);
    }
    if subject == "asset" && kind == ChangeKind::Updated && changed.iter().any(|f| f == "status") {
        names.push("asset.status_changed".into());
    }
    names.retain(|n| catalogue().contains(&n.as_str()));
    names
}

/// Whether a subscription list (`*` or names) wants `name`.
pub fn wants(subscribed: &[String], name: &str) -> bool {
    subscribed.iter().any(|s| s == ALL || s == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_raise_their_past_tense_and_the_generic_kind() {
        assert_eq!(
            raised("enrollment.activate", ChangeKind::Updated, &[]),
            ["enrollment.activated", "enrollment.updated"]
        );
        assert_eq!(
            raised("session.record", ChangeKind::Created, &[]),
            ["session.recorded", "session.created"]
        );
        assert_eq!(
            raised("asset.update", ChangeKind::Updated, &["status".into()]),
            ["asset.updated", "asset.status_changed"]
        );
        assert_eq!(
            raised("asset.create", ChangeKind::Created, &["status".into()]),
            ["asset.created"],
            "a new asset's status did not change"
        );
        assert_eq!(
            raised("webhook.create", ChangeKind::Created, &[]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_catalogued_name_is_lower_dotted() {
        for name in catalogue() {
            assert!(
                name.split_once('.').is_some()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{name}"
            );
        }
    }
}
