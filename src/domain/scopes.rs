//! What an API key may do: scopes such as `assets:read`, each a bit of a
//! small set. A key reads a model only with its read scope (checked where
//! every read goes, `db::model::Access`), and runs a root field only with
//! the scope this table names for it (checked before execution); fields
//! the table does not name, and those of people (sessions, passwords,
//! export, erasure, keys), are never for a key.

use super::NodeKind;

/// Every scope, in the order the API lists them.
pub const ALL: &[&str] = &[
    "users:read",
    "users:write",
    "assets:read",
    "assets:write",
    "programs:read",
    "programs:write",
    "beneficiaries:read",
    "beneficiaries:write",
    "enrollments:read",
    "enrollments:write",
    "sessions:read",
    "sessions:write",
    "schedules:read",
    "schedules:write",
    "analytics:read",
    "analytics:write",
    "reports:read",
    "reports:request",
    "webhooks:manage",
    "audit:read",
];

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u32);

impl Scopes {
    /// The scopes named, each once; an unknown name is an error that says which.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, String> {
        let mut bits = 0u32;
        for name in names {
            let name = name.as_ref().trim();
            let Some(at) = ALL.iter().position(|s| *s == name) else {
                return Err(format!(
                    "`{name}` is not a scope; scopes are {}",
                    ALL.join(", ")
                ));
            };
            bits |= 1 << at;
        }
        Ok(Self(bits))
    }

    pub fn contains(self, name: &str) -> bool {
        ALL.iter()
            .position(|s| *s == name)
            .is_some_and(|at| self.0 & (1 << at) != 0)
    }

    /// The names of the scopes held, in `ALL`'s order.
    pub fn names(self) -> Vec<&'static str> {
        ALL.iter()
            .enumerate()
            .filter(|(at, _)| self.0 & (1 << at) != 0)
            .map(|(_, s)| *s)
            .collect()
    }

    /// Whether rows of `kind` may be read with these scopes.
    pub fn may_read(self, kind: NodeKind) -> bool {
        self.contains(read_scope(kind))
    }
}

/// The scope that reads rows of `kind`.
pub fn read_scope(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::User => "users:read",
        NodeKind::Asset => "assets:read",
        NodeKind::DisabilityProgram => "programs:read",
        NodeKind::Beneficiary => "beneficiaries:read",
        NodeKind::Enrollment => "enrollments:read",
        NodeKind::TherapySession => "sessions:read",
        NodeKind::Schedule => "schedules:read",
        NodeKind::AuditLogEntry => "audit:read",
        NodeKind::AnalyticsEvent => "analytics:read",
        NodeKind::Webhook | NodeKind::WebhookDelivery => "webhooks:manage",
        NodeKind::Report => "reports:read",
    }
}

/// The scope a root field of the schema needs from an API key; `None`: no
/// key may run it (people's own fields, keys, export and erasure). `node`
/// and `nodes` need none here: the rows they read need their read scope.
pub fn for_root_field(root: &str, field: &str) -> Option<&'static str> {
    Some(match (root, field) {
        ("Query", "node" | "nodes") => "",
        ("Query", "users" | "user") => "users:read",
        ("Query", "assets" | "asset") => "assets:read",
        ("Query", "disabilityPrograms" | "disabilityProgram") => "programs:read",
        ("Query", "beneficiaries" | "beneficiary") => "beneficiaries:read",
        ("Query", "enrollments" | "enrollment") => "enrollments:read",
        ("Query", "therapySessions" | "therapySession") => "sessions:read",
        ("Query", "schedules" | "schedule") => "schedules:read",
        ("Query", "auditLog" | "verifyAuditChain") => "audit:read",
        ("Query", "analyticsEvents" | "analyticsSummary") => "analytics:read",
        ("Query", "webhooks" | "webhook" | "webhookEventNames") => "webhooks:manage",
        ("Query", "reports" | "report") => "reports:read",
        ("Mutation", "createUser" | "updateUser" | "deactivateUser") => "users:write",
        ("Mutation", "createAsset" | "updateAsset" | "deleteAsset") => "assets:write",
        (
            "Mutation",
            "createDisabilityProgram" | "updateDisabilityProgram" | "deleteDisabilityProgram",
        ) => "programs:write",
        ("Mutation", "createBeneficiary" | "updateBeneficiary") => "beneficiaries:write",
        ("Mutation", "enrollBeneficiary" | "setEnrollmentStatus" | "updateEnrollment") => {
            "enrollments:write"
        }
        ("Mutation", "recordTherapySession" | "updateTherapySession" | "deleteTherapySession") => {
            "sessions:write"
        }
        ("Mutation", "createSchedule" | "updateSchedule" | "cancelSchedule") => "schedules:write",
        ("Mutation", "recordEvent") => "analytics:write",
        (
            "Mutation",
            "createWebhook"
            | "updateWebhook"
            | "deleteWebhook"
            | "rotateWebhookSecret"
            | "redeliverWebhookDelivery",
        ) => "webhooks:manage",
        ("Mutation", "requestReport") => "reports:request",
        ("Subscription", "assetUpdated") => "assets:read",
        ("Subscription", "analyticsEvents") => "analytics:read",
        ("Subscription", "webhookDeliveryUpdated") => "webhooks:manage",
        ("Subscription", "reportUpdated") => "reports:read",
        ("Query" | "Mutation" | "Subscription", "__typename") => "",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_by_name_and_refuse_unknown_ones() {
        let scopes = Scopes::parse(&["assets:read", "reports:request", "assets:read"]).unwrap();
        assert_eq!(scopes.names(), ["assets:read", "reports:request"]);
        assert!(scopes.may_read(NodeKind::Asset));
        assert!(!scopes.may_read(NodeKind::Beneficiary));
        let error = Scopes::parse(&["assets:delete"]).unwrap_err();
        assert!(error.contains("`assets:delete` is not a scope"), "{error}");
        assert_eq!(Scopes::parse(ALL).unwrap().names(), ALL);
    }

    #[test]
    fn people_fields_are_never_for_a_key() {
        for field in ["me", "sessions"] {
            assert_eq!(for_root_field("Query", field), None);
        }
        for field in [
            "login",
            "changePassword",
            "revokeSession",
            "updateMe",
            "exportBeneficiaryData",
            "eraseBeneficiary",
            "createApiKey",
        ] {
            assert_eq!(for_root_field("Mutation", field), None);
        }
    }
}
