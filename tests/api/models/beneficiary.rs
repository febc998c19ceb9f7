//! Data protection and the audit log through the API: export, erasure (and
//! that nothing identifying survives it anywhere, while the audit chain
//! still verifies), paging and filtering the audit log, and tampering that
//! `verifyAuditChain` names.

use alawael::domain::GlobalId;
use alawael::models::audit_log_entry::changes::value_digest;
use bson::{Bson, doc};
use serde_json::{Value, json};

use crate::support::clinic::{
    active_enrollment, create_beneficiary, create_program, ok, record_session,
};
use crate::support::helpers::{TestApp, error_code, spawn_app};

const EXPORT: &str = "mutation($id: ID!) { exportBeneficiaryData(id: $id) }";
const ERASE: &str = "mutation($id: ID!) { eraseBeneficiary(id: $id) { id fullName nationalId dateOfBirth guardian { name } medicalNotes erasedAt } }";
const VERIFY: &str = "{ verifyAuditChain { ok checked firstBrokenSeq reason } }";
const AUDIT_PAGE: &str = "query($first: Int, $after: String, $f: AuditLogFilter) {
  auditLog(first: $first, after: $after, filter: $f) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id seq at action entityType entityId actorKind actor { id } changes { field before after } }
  } }";

fn oid(global: &str) -> bson::oid::ObjectId {
    GlobalId::decode(global).expect("a global id").id
}

async fn audit_count(app: &TestApp) -> u64 {
    app.state
        .db
        .collection("audit_logs")
        .count_documents(doc! {})
        .await
        .unwrap()
}

async fn verify(app: &TestApp, admin: &str) -> Value {
    ok(app, admin, VERIFY, json!({}), "verifyAuditChain").await
}

/// One page of `auditLog`.
async fn audit_page(
    app: &TestApp,
    admin: &str,
    first: i32,
    after: Option<&str>,
    filter: Value,
) -> Value {
    ok(
        app,
        admin,
        AUDIT_PAGE,
        json!({ "first": first, "after": after, "f": filter }),
        "auditLog",
    )
    .await
}

/// Every entry `auditLog` shows with `filter`, paged through.
async fn audit_all(app: &TestApp, admin: &str, filter: Value) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = audit_page(app, admin, 100, after.as_deref(), filter.clone()).await;
        all.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if page["pageInfo"]["hasNextPage"] != true {
            return all;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
}

fn seqs(entries: &[Value]) -> Vec<i64> {
    entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

fn at_of(entry: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap()).unwrap()
}

fn strictly_descending(seqs: &[i64]) -> bool {
    seqs.windows(2).all(|w| w[0] > w[1])
}

#[tokio::test]
async fn export_then_erase_then_export() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let therapist_token = app.login("therapist").await;
    let therapist = app.user_id("therapist").await;
    let admin_id = app.user_id("admin").await;
    let program = create_program(&app, &admin, "Early Physiotherapy", 20).await;
    let (person, enrollment) = active_enrollment(
        &app,
        &admin,
        &program,
        &therapist,
        "Layla Haddad",
        "LH2015030201",
    )
    .await;
    for notes in [
        "practised the stairs with a rail",
        "first steps without the walker",
    ] {
        let body = record_session(&app, &therapist_token, &enrollment, notes).await;
        assert!(body["errors"].is_null(), "{body}");
    }
    ok(
        &app,
        &admin,
        "mutation($id: ID!) { updateBeneficiary(id: $id, input: { fullName: \"Layla Al-Haddad\" }) { fullName } }",
        json!({ "id": person }),
        "updateBeneficiary",
    )
    .await;
    // Everything that identifies her, as it was entered.
    let identifying = [
        "Haddad",
        "LH2015030201",
        "2015-03-02",
        "Guardian of",
        "+966 50 000 0000",
        "notes about",
        "practised the stairs",
        "without the walker",
    ];

    // Export: everything, in its sections.
    let export = ok(
        &app,
        &admin,
        EXPORT,
        json!({ "id": person }),
        "exportBeneficiaryData",
    )
    .await;
    assert_eq!(
        export["beneficiary"]["fullName"], "Layla Al-Haddad",
        "{export}"
    );
    assert_eq!(export["beneficiary"]["nationalId"], "LH2015030201");
    assert_eq!(
        export["beneficiary"]["guardian"]["name"],
        "Guardian of Layla Haddad"
    );
    assert_eq!(
        export["beneficiary"]["medicalNotes"],
        "notes about Layla Haddad"
    );
    assert_eq!(
        export["enrollments"].as_array().unwrap().len(),
        1,
        "{export}"
    );
    assert_eq!(
        export["therapySessions"].as_array().unwrap().len(),
        2,
        "{export}"
    );
    let renamed = export["auditLog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "beneficiary.update")
        .expect("the rename is in the exported audit log");
    let change = renamed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "fullName")
        .expect("the name change");
    assert_eq!(change["before"], "Layla Haddad");
    assert_eq!(change["after"], "Layla Al-Haddad");
    let text = export.to_string();
    for value in identifying {
        assert!(text.contains(value), "the export holds {value}: {text}");
    }

    // The export is audited, without her data.
    let entries = app.audit_for("Beneficiary", oid(&person)).await;
    assert_eq!(entries[0].action, "beneficiary.export");
    assert_eq!(entries[0].actor.id, Some(oid(&admin_id)));
    assert!(entries[0].changes.is_empty(), "{:?}", entries[0]);

    // Erase.
    let erased = ok(
        &app,
        &admin,
        ERASE,
        json!({ "id": person }),
        "eraseBeneficiary",
    )
    .await;
    assert_eq!(erased["fullName"], "[erased]");
    assert_eq!(erased["nationalId"], Value::Null);
    assert_eq!(erased["dateOfBirth"], Value::Null);
    assert_eq!(erased["guardian"], Value::Null);
    assert_eq!(erased["medicalNotes"], Value::Null);
    assert!(erased["erasedAt"].is_string(), "{erased}");
    let erased_at = erased["erasedAt"].clone();

    // What statistics need stays; the notes go.
    let sessions = ok(
        &app,
        &admin,
        "query($id: ID!) { therapySessions(filter: { beneficiaryId: $id }) { totalCount nodes { notes attendance durationMinutes } } }",
        json!({ "id": person }),
        "therapySessions",
    )
    .await;
    assert_eq!(sessions["totalCount"], 2, "{sessions}");
    for s in sessions["nodes"].as_array().unwrap() {
        assert_eq!(s["notes"], Value::Null, "{sessions}");
        assert_eq!(s["attendance"], "ATTENDED");
        assert_eq!(s["durationMinutes"], 45);
    }
    let enrollments = ok(
        &app,
        &admin,
        "query($id: ID!) { enrollments(filter: { beneficiaryId: $id }) { totalCount nodes { id status } } }",
        json!({ "id": person }),
        "enrollments",
    )
    .await;
    assert_eq!(enrollments["totalCount"], 1, "{enrollments}");
    assert_eq!(enrollments["nodes"][0]["id"], enrollment.as_str());
    assert_eq!(enrollments["nodes"][0]["status"], "ACTIVE");

    // Export again: nothing that identifies her, anywhere.
    let again = ok(
        &app,
        &admin,
        EXPORT,
        json!({ "id": person }),
        "exportBeneficiaryData",
    )
    .await;
    assert_eq!(again["beneficiary"]["fullName"], "[erased]", "{again}");
    assert_eq!(again["enrollments"].as_array().unwrap().len(), 1);
    assert_eq!(again["therapySessions"].as_array().unwrap().len(), 2);
    assert!(!again["auditLog"].as_array().unwrap().is_empty());
    let text = again.to_string();
    for value in identifying {
        assert!(
            !text.contains(value),
            "{value} survived the erasure in the export: {text}"
        );
    }

    // Nor in the audit log as the API shows it, whose chain still holds.
    let about = audit_all(&app, &admin, json!({ "entityId": person })).await;
    assert!(
        about.iter().any(|e| e["action"] == "beneficiary.erase"),
        "{about:?}"
    );
    let text = serde_json::to_string(&about).unwrap();
    for value in identifying {
        assert!(
            !text.contains(value),
            "{value} survived the erasure in the audit log: {text}"
        );
    }
    let stored = format!("{:?}", app.audit_for("Beneficiary", oid(&person)).await);
    for value in identifying {
        assert!(
            !stored.contains(value),
            "{value} survived the erasure in the stored audit log: {stored}"
        );
    }
    let rename = about
        .iter()
        .find(|e| e["action"] == "beneficiary.update")
        .unwrap();
    assert_eq!(
        rename["changes"],
        json!([{ "field": "fullName", "before": "[erased]", "after": "[erased]" }])
    );
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checked"], audit_count(&app).await);

    // She cannot be found by what identified her.
    for filter in [
        json!({ "search": "Layla Haddad" }),
        json!({ "search": "Haddad" }),
        json!({ "nationalId": "LH2015030201" }),
    ] {
        let found = ok(
            &app,
            &admin,
            "query($f: BeneficiaryFilter) { beneficiaries(filter: $f) { totalCount nodes { id } } }",
            json!({ "f": filter }),
            "beneficiaries",
        )
        .await;
        assert_eq!(found["totalCount"], 0, "{filter}: {found}");
    }

    // Erasing again changes nothing.
    let entries_before = audit_count(&app).await;
    let twice = ok(
        &app,
        &admin,
        ERASE,
        json!({ "id": person }),
        "eraseBeneficiary",
    )
    .await;
    assert_eq!(twice["erasedAt"], erased_at);
    assert_eq!(twice["fullName"], "[erased]");
    assert_eq!(
        audit_count(&app).await,
        entries_before,
        "no new audit entry"
    );
    assert_eq!(verify(&app, &admin).await["ok"], true);
}

#[tokio::test]
async fn the_audit_log_pages_newest_first_and_filters_by_type_object_actor_action_and_time() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let manager = app.login("manager").await;
    let manager_id = app.user_id("manager").await;
    let admin_id = app.user_id("admin").await;
    create_program(&app, &admin, "Audited programme", 10).await;
    let person = create_beneficiary(&app, &manager, "Audited Person", "AUD123456").await;
    for severity in ["SEVERE", "MILD"] {
        ok(
            &app,
            &admin,
            "mutation($id: ID!, $s: Severity!) { updateBeneficiary(id: $id, input: { severity: $s }) { id } }",
            json!({ "id": person, "s": severity }),
            "updateBeneficiary",
        )
        .await;
    }
    create_program(&app, &manager, "Manager's programme", 10).await;
    let logs = app.state.db.collection("audit_logs");
    let total = logs.count_documents(doc! {}).await.unwrap();

    // Everything, newest first.
    let first_page = audit_page(&app, &admin, 100, None, json!(null)).await;
    assert_eq!(first_page["totalCount"], total);
    let full = audit_all(&app, &admin, json!(null)).await;
    assert_eq!(full.len() as u64, total);
    let full_seqs = seqs(&full);
    assert!(strictly_descending(&full_seqs), "{full_seqs:?}");
    assert_eq!(full_seqs.last(), Some(&1));

    // Pages of two, through the cursors: the same entries, no gap, no repeat.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = audit_page(&app, &admin, 2, after.as_deref(), json!(null)).await;
        let nodes = page["nodes"].as_array().unwrap();
        assert!(nodes.len() <= 2);
        paged.extend(seqs(nodes));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        assert_eq!(nodes.len(), 2);
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
    assert_eq!(paged, full_seqs);

    // By kind of object.
    let beneficiaries = audit_all(&app, &admin, json!({ "entityType": "Beneficiary" })).await;
    assert!(
        beneficiaries
            .iter()
            .all(|e| e["entityType"] == "Beneficiary")
    );
    assert_eq!(
        beneficiaries.len() as u64,
        logs.count_documents(doc! { "entityType": "Beneficiary" })
            .await
            .unwrap()
    );
    assert!(strictly_descending(&seqs(&beneficiaries)));

    // By object (its global id).
    let about = audit_all(&app, &admin, json!({ "entityId": person })).await;
    assert!(
        about.iter().all(|e| e["entityId"] == person.as_str()),
        "{about:?}"
    );
    let actions: Vec<&str> = about
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "beneficiary.update",
            "beneficiary.update",
            "beneficiary.create"
        ]
    );

    // By actor.
    let by_manager = audit_all(&app, &admin, json!({ "actorId": manager_id })).await;
    assert!(
        by_manager
            .iter()
            .all(|e| e["actor"]["id"] == manager_id.as_str()),
        "{by_manager:?}"
    );
    assert_eq!(
        by_manager.len() as u64,
        logs.count_documents(doc! { "actor.id": oid(&manager_id) })
            .await
            .unwrap()
    );
    for action in ["beneficiary.create", "program.create"] {
        assert!(by_manager.iter().any(|e| e["action"] == action), "{action}");
    }

    // By action, alone and with an actor.
    let updates = audit_all(&app, &admin, json!({ "action": "beneficiary.update" })).await;
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|e| e["action"] == "beneficiary.update"));
    let admin_updates = audit_all(
        &app,
        &admin,
        json!({ "entityType": "Beneficiary", "actorId": admin_id }),
    )
    .await;
    assert_eq!(seqs(&admin_updates), seqs(&updates));
    let none = audit_all(
        &app,
        &admin,
        json!({ "action": "beneficiary.update", "actorId": manager_id }),
    )
    .await;
    assert!(none.is_empty());

    // By time: [from, to) over the entries' own instants.
    let oldest_first: Vec<&Value> = full.iter().rev().collect();
    let from = oldest_first[oldest_first.len() / 3]["at"].as_str().unwrap();
    let to = oldest_first[2 * oldest_first.len() / 3]["at"]
        .as_str()
        .unwrap();
    let in_span = |filter: Value, keep: &dyn Fn(&Value) -> bool| {
        let expected: Vec<i64> = full
            .iter()
            .filter(|e| keep(e))
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        (filter, expected)
    };
    let (from_dt, to_dt) = (
        chrono::DateTime::parse_from_rfc3339(from).unwrap(),
        chrono::DateTime::parse_from_rfc3339(to).unwrap(),
    );
    for (filter, expected) in [
        in_span(json!({ "at": { "from": from, "to": to } }), &|e| {
            at_of(e) >= from_dt && at_of(e) < to_dt
        }),
        in_span(json!({ "at": { "from": from } }), &|e| at_of(e) >= from_dt),
        in_span(json!({ "at": { "to": to } }), &|e| at_of(e) < to_dt),
    ] {
        let got = audit_all(&app, &admin, filter.clone()).await;
        assert_eq!(seqs(&got), expected, "{filter}");
    }
    let from_filter = audit_all(&app, &admin, json!({ "at": { "from": from } })).await;
    assert!(!from_filter.is_empty());

    // Paging a filtered list one entry at a time.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = audit_page(
            &app,
            &admin,
            1,
            after.as_deref(),
            json!({ "entityType": "Beneficiary" }),
        )
        .await;
        assert_eq!(page["totalCount"], beneficiaries.len());
        paged.extend(seqs(page["nodes"].as_array().unwrap()));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = Some(page["pageInfo"]["endCursor"].as_str().unwrap().to_string());
    }
    assert_eq!(paged, seqs(&beneficiaries));
}

#[tokio::test]
async fn only_admin_reads_the_audit_log_verifies_it_exports_or_erases() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let person = create_beneficiary(&app, &admin, "Guarded Person", "GRD123456").await;
    for role in ["manager", "therapist", "user"] {
        let token = app.login(role).await;
        let before = audit_count(&app).await;
        for (query, variables) in [
            ("{ auditLog { totalCount } }", json!({})),
            (VERIFY, json!({})),
            (EXPORT, json!({ "id": person })),
            (ERASE, json!({ "id": person })),
        ] {
            let body = app.gql(Some(&token), query, variables.clone()).await;
            assert_eq!(error_code(&body), "FORBIDDEN", "{role}: {body}");
            assert!(body["data"].is_null(), "{role}: {body}");
            let anonymous = app.gql(None, query, variables).await;
            assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
        }
        assert_eq!(audit_count(&app).await, before, "{role}: nothing written");
    }
    let still = ok(
        &app,
        &admin,
        "query($id: ID!) { beneficiary(id: $id) { fullName erasedAt } }",
        json!({ "id": person }),
        "beneficiary",
    )
    .await;
    assert_eq!(
        still,
        json!({ "fullName": "Guarded Person", "erasedAt": null })
    );
}

/// Some history through the API; returns the seq of the rename's entry.
async fn history(app: &TestApp, admin: &str) -> i64 {
    create_program(app, admin, "Chained programme", 10).await;
    let person = create_beneficiary(app, admin, "Chained Person", "CHN123456").await;
    ok(
        app,
        admin,
        "mutation($id: ID!) { updateBeneficiary(id: $id, input: { fullName: \"Chained Person Renamed\" }) { id } }",
        json!({ "id": person }),
        "updateBeneficiary",
    )
    .await;
    create_program(app, admin, "Another programme", 10).await;
    app.audit_for("Beneficiary", oid(&person)).await[0].seq
}

#[tokio::test]
async fn a_tampered_audit_entry_is_named_by_verify_audit_chain() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let rename = history(&app, &admin).await;
    let logs = app.state.db.collection("audit_logs");
    let total = audit_count(&app).await;
    assert!(total >= 5, "{total}");

    let report = verify(&app, &admin).await;
    assert_eq!(
        report,
        json!({ "ok": true, "checked": total, "firstBrokenSeq": null, "reason": null })
    );

    // A changed action.
    let middle = i64::try_from(total / 2).unwrap();
    let original = logs
        .find_one(doc! { "seq": middle })
        .await
        .unwrap()
        .unwrap();
    logs.update_one(
        doc! { "seq": middle },
        doc! { "$set": { "action": "asset.delete" } },
    )
    .await
    .unwrap();
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["firstBrokenSeq"], middle, "{report}");
    assert_eq!(report["checked"], middle - 1, "{report}");
    assert!(report["reason"].is_string(), "{report}");
    logs.update_one(
        doc! { "seq": middle },
        doc! { "$set": { "action": original.get_str("action").unwrap() } },
    )
    .await
    .unwrap();
    assert_eq!(verify(&app, &admin).await["ok"], true);

    // A changed value: the name in the rename's entry (kept sealed under
    // the person's key; put back as it was stored).
    let renamed = logs
        .find_one(doc! { "seq": rename })
        .await
        .unwrap()
        .unwrap();
    let stored_name = renamed.get_array("changes").unwrap()[0]
        .as_document()
        .unwrap()
        .get("after")
        .unwrap()
        .clone();
    logs.update_one(
        doc! { "seq": rename },
        doc! { "$set": { "changes.0.after": "Someone Else" } },
    )
    .await
    .unwrap();
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["firstBrokenSeq"], rename, "{report}");
    logs.update_one(
        doc! { "seq": rename },
        doc! { "$set": { "changes.0.after": stored_name } },
    )
    .await
    .unwrap();
    assert_eq!(verify(&app, &admin).await["ok"], true);

    // A deleted entry in the middle.
    let gone = i64::try_from(total / 2 + 1).unwrap();
    logs.delete_one(doc! { "seq": gone }).await.unwrap();
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["firstBrokenSeq"], gone, "{report}");
    assert_eq!(report["checked"], gone - 1, "{report}");
}

#[tokio::test]
async fn a_value_forged_behind_the_digest_of_the_original_is_named_by_verify_audit_chain() {
    let app = spawn_app().await;
    let admin = app.login("admin").await;
    let rename = history(&app, &admin).await;
    let logs = app.state.db.collection("audit_logs");
    assert_eq!(verify(&app, &admin).await["ok"], true);

    // The value is rewritten and the digest of the true value stored beside
    // it, as erasure does; only erasure may do that, and only to `[erased]`.
    let digest = value_digest(&Bson::String("Chained Person Renamed".into()));
    logs.update_one(
        doc! { "seq": rename },
        doc! { "$set": { "changes.0.after": "Someone Else", "changes.0.afterDigest": digest } },
    )
    .await
    .unwrap();
    let report = verify(&app, &admin).await;
    assert_eq!(report["ok"], false, "a forged value passes: {report}");
    assert_eq!(report["firstBrokenSeq"], rename, "{report}");
}
