//! The audit chain: appends link to each other, and `verify` names the first
//! entry that was changed, removed or moved.

use alawael::db::audit::{Actor, NewEntry};
use bson::doc;

use crate::helpers::spawn_app;

fn entry(n: usize) -> NewEntry {
    NewEntry {
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
