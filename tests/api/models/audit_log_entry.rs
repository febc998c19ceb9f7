//! The audit chain: appends link to each other, and `verify` names the first
//! entry that was changed, removed or moved.

use alawael::models::audit_log_entry::entry::{Actor, NewEntry};
use bson::doc;

use crate::support::helpers::spawn_app;

fn entry(n: usize) -> NewEntry {
    NewEntry {
        id: None,
        actor: Actor::system(),
        action: format!("test.step{n}"),
        entity_type: "Test".into(),
        entity_id: Some(n.to_string()),
        changes: vec![],
        request_id: None,
    }
}

#[tokio::test]
async fn verification_names_the_first_changed_deleted_or_reordered_entry() {
    let app = spawn_app().await;
    let audit = app.state.db.audit();
    for n in 1..=5 {
        audit.append(entry(n)).await.unwrap();
    }
    assert_eq!(audit.verify().await.unwrap(), None);
    let logs = app.state.db.collection("audit_logs");

    logs.update_one(
        doc! { "seq": 3_i64 },
        doc! { "$set": { "action": "test.rewritten" } },
    )
    .await
    .unwrap();
    assert_eq!(audit.verify().await.unwrap().map(|b| b.seq), Some(3));
    logs.update_one(
        doc! { "seq": 3_i64 },
        doc! { "$set": { "action": "test.step3" } },
    )
    .await
    .unwrap();
    assert_eq!(audit.verify().await.unwrap(), None);

    logs.update_one(doc! { "seq": 2_i64 }, doc! { "$set": { "seq": 20_i64 } })
        .await
        .unwrap();
    assert_eq!(
        audit.verify().await.unwrap().map(|b| b.seq),
        Some(2),
        "a moved entry leaves a gap"
    );
    logs.update_one(doc! { "seq": 20_i64 }, doc! { "$set": { "seq": 2_i64 } })
        .await
        .unwrap();

    logs.delete_one(doc! { "seq": 4_i64 }).await.unwrap();
    assert_eq!(audit.verify().await.unwrap().map(|b| b.seq), Some(4));
}

#[tokio::test]
async fn concurrent_appends_keep_one_unbroken_chain() {
    let app = spawn_app().await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let db = app.state.db.clone();
            tokio::spawn(async move { db.audit().append(entry(n)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(app.state.db.audit().verify().await.unwrap(), None);
    let count = app
        .state
        .db
        .collection("audit_logs")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(count, 20);
}

#[tokio::test]
async fn when_the_audit_entry_cannot_be_written_the_change_is_undone() {
    let app = spawn_app().await;
    let token = app.login("admin").await;
    let kept = app.create_asset(&token, "Kept", Some("KEEP-1")).await;
    // A last entry the writer cannot chain to (as a corrupted log would be).
    app.state
        .db
        .collection("audit_logs")
        .insert_one(doc! { "seq": i64::MAX, "hash": 7 })
        .await
        .unwrap();

    let create = app
        .gql(Some(&token), "mutation { createAsset(input: { name: \"Ghost\", category: IT, value: { amountMinor: 1, currency: \"SAR\" } }) { id } }", serde_json::json!({}))
        .await;
    assert_eq!(
        crate::support::helpers::error_code(&create),
        "INTERNAL",
        "{create}"
    );
    let update = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { updateAsset(id: $id, input: { name: \"Renamed\" }) { id } }",
            serde_json::json!({ "id": kept }),
        )
        .await;
    assert_eq!(crate::support::helpers::error_code(&update), "INTERNAL");
    let delete = app
        .gql(
            Some(&token),
            "mutation($id: ID!) { deleteAsset(id: $id) }",
            serde_json::json!({ "id": kept }),
        )
        .await;
    assert_eq!(crate::support::helpers::error_code(&delete), "INTERNAL");

    let list = app
        .gql(
            Some(&token),
            "{ assets { totalCount nodes { name } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(list["data"]["assets"]["totalCount"], 1, "{list}");
    assert_eq!(list["data"]["assets"]["nodes"][0]["name"], "Kept");
}
