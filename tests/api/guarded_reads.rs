//! A field's guard covers every way to read it. For every list of the
//! schema (found by introspection, so a new list or argument is walked
//! without being named here), every role, every ordering and every filter
//! field: when the role may not read the node field an ordering or filter
//! reads, the list answers `FORBIDDEN` and nothing else; when it may, the
//! ordering or filter is not refused.

use alawael::domain::{GlobalId, NodeKind};
use bson::oid::ObjectId;
use serde_json::{Value, json};

use crate::support::helpers::{TestApp, spawn_app};

const ROLES: [&str; 4] = ["admin", "manager", "therapist", "user"];

/// Filter arguments whose node field is not found by name: (list, filter
/// field, node field). A filter missing from both fails the walk.
const FILTER_READS: &[(&str, &str, &str)] = &[
    ("analyticsEvents", "names", "name"),
    ("analyticsEvents", "userId", "user"),
    ("analyticsEvents", "from", "at"),
    ("analyticsEvents", "to", "at"),
    ("assets", "search", "name"),
    ("auditLog", "actorId", "actor"),
    ("auditLog", "at", "at"),
    ("beneficiaries", "erased", "erasedAt"),
    ("beneficiaries", "search", "fullName"),
    ("disabilityPrograms", "search", "name"),
    ("users", "search", "name"),
];

const TYPE_REF: &str = "name kind ofType { name kind ofType { name kind ofType { name kind } } }";

async fn introspect(app: &TestApp, token: &str, query: &str) -> Value {
    let body = app.gql(Some(token), query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// The named type under lists and non-nulls.
fn named(ty: &Value) -> (&str, &str) {
    let mut ty = ty;
    while ty["name"].is_null() {
        ty = &ty["ofType"];
    }
    (
        ty["name"].as_str().unwrap_or(""),
        ty["kind"].as_str().unwrap_or(""),
    )
}

fn is_list(ty: &Value) -> bool {
    let mut ty = ty;
    while !ty.is_null() {
        if ty["kind"] == "LIST" {
            return true;
        }
        ty = &ty["ofType"];
    }
    false
}

/// `DATE_OF_BIRTH` → `dateOfBirth`.
fn camel(value: &str) -> String {
    let mut out = String::new();
    for (i, part) in value.split('_').enumerate() {
        let lower = part.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut chars = lower.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.extend(chars);
            }
        }
    }
    out
}

struct TypeInfo {
    /// (name, type) of each field or input field.
    fields: Vec<(String, Value)>,
    values: Vec<String>,
}

async fn type_info(app: &TestApp, token: &str, name: &str) -> TypeInfo {
    let data = introspect(
        app,
        token,
        &format!(
            "{{ __type(name: \"{name}\") {{ fields {{ name type {{ {TYPE_REF} }} }} \
             inputFields {{ name type {{ {TYPE_REF} }} }} enumValues {{ name }} }} }}"
        ),
    )
    .await;
    let ty = &data["__type"];
    let mut fields = Vec::new();
    for list in [&ty["fields"], &ty["inputFields"]] {
        for f in list.as_array().into_iter().flatten() {
            fields.push((
                f["name"].as_str().unwrap_or("").to_string(),
                f["type"].clone(),
            ));
        }
    }
    let values = ty["enumValues"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    TypeInfo { fields, values }
}

/// A valid sample of an input type, as GraphQL literal text; `kind` names
/// the node kind an `ID` stands for.
async fn sample(app: &TestApp, token: &str, ty: &Value, kind: Option<&str>) -> String {
    let (name, type_kind) = named(ty);
    let one = match (type_kind, name) {
        ("ENUM", _) => type_info(app, token, name).await.values[0].clone(),
        (_, "Boolean") => "true".into(),
        (_, "Int") => "1".into(),
        (_, "String") => "\"A1234567\"".into(),
        (_, "DateTime") => "\"2020-01-01T00:00:00Z\"".into(),
        (_, "Date") => "\"2020-01-01\"".into(),
        (_, "ID") => {
            let kind = NodeKind::ALL
                .iter()
                .find(|k| Some(k.name()) == kind)
                .copied()
                .unwrap_or(NodeKind::User);
            format!("\"{}\"", GlobalId::new(kind, ObjectId::new()).encode())
        }
        ("INPUT_OBJECT", _) => {
            let info = type_info(app, token, name).await;
            let (field, field_ty) = &info.fields[0];
            format!(
                "{{ {field}: {} }}",
                Box::pin(sample(app, token, field_ty, None)).await
            )
        }
        other => panic!("no sample for input type {other:?}"),
    };
    if is_list(ty) { format!("[{one}]") } else { one }
}

/// Whether `role` gets `FORBIDDEN` reading `field` of the rows `list` shows it;
/// `None` when the list shows it no row (nothing to tell).
async fn forbidden_field(
    app: &TestApp,
    token: &str,
    list: &str,
    field: &str,
    ty: &Value,
) -> Option<bool> {
    let (_, kind) = named(ty);
    let select = if matches!(kind, "OBJECT" | "INTERFACE" | "UNION") {
        format!("{field} {{ __typename }}")
    } else {
        field.to_string()
    };
    let body = app
        .gql(
            Some(token),
            &format!("{{ {list}(first: 20) {{ nodes {{ {select} }} }} }}"),
            json!({}),
        )
        .await;
    let forbidden = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["extensions"]["code"] == "FORBIDDEN");
    let rows = body["data"][list]["nodes"].as_array().map_or(0, Vec::len);
    (forbidden || rows > 0).then_some(forbidden)
}

fn refused(body: &Value, list: &str) -> bool {
    let forbidden = body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["extensions"]["code"] == "FORBIDDEN");
    forbidden && body["data"][list].is_null() && body["data"].get("nothingElse").is_none()
}

#[tokio::test]
async fn no_role_orders_or_filters_a_list_by_a_field_it_may_not_read() {
    let app = spawn_app().await;
    let db = &app.state.db;
    alawael::seed::load(db, &app.state.settings.seed)
        .await
        .expect("seed");
    alawael::seed::clinic::load(db, &app.state.vault, &app.state.settings.seed, 1, |_| {})
        .await
        .expect("clinic seed");
    let admin = app.login("admin").await;
    let root = introspect(
        &app,
        &admin,
        &format!("{{ __schema {{ queryType {{ fields {{ name type {{ {TYPE_REF} }} args {{ name type {{ {TYPE_REF} }} }} }} }} }} }}"),
    )
    .await;
    let mut walked = (0, 0);
    for list in root["__schema"]["queryType"]["fields"].as_array().unwrap() {
        let name = list["name"].as_str().unwrap();
        let (connection, _) = named(&list["type"]);
        let Some(node) = connection.strip_suffix("Connection") else {
            continue;
        };
        let node_info = type_info(&app, &admin, node).await;
        let node_field = |field: &str| node_info.fields.iter().find(|(n, _)| n == field).cloned();
        let args = list["args"].as_array().unwrap();
        // Every (argument text, node field) pair this list can be read by.
        let mut reads: Vec<(String, String, Value)> = Vec::new();
        if let Some(order) = args.iter().find(|a| a["name"] == "orderBy") {
            let order_input = type_info(&app, &admin, named(&order["type"]).0).await;
            let (_, field_ty) = order_input
                .fields
                .iter()
                .find(|(n, _)| n == "field")
                .unwrap();
            for value in type_info(&app, &admin, named(field_ty).0).await.values {
                let field = camel(&value);
                let (_, ty) = node_field(&field).unwrap_or_else(|| {
                    panic!("{name}: order {value} reads no field {field} of {node}")
                });
                reads.push((format!("orderBy: {{ field: {value} }}"), field, ty));
            }
        }
        if let Some(filter) = args.iter().find(|a| a["name"] == "filter") {
            let filter_input = type_info(&app, &admin, named(&filter["type"]).0).await;
            for (input, input_ty) in &filter_input.fields {
                let mapped = FILTER_READS
                    .iter()
                    .find(|(l, f, _)| *l == name && f == input)
                    .map(|(_, _, n)| n.to_string());
                let candidates = [
                    mapped,
                    Some(input.clone()),
                    input.strip_suffix("Id").map(str::to_string),
                    input.strip_suffix("Id").map(|s| format!("{s}s")),
                ];
                let (field, ty) = candidates
                    .into_iter()
                    .flatten()
                    .find_map(|c| node_field(&c))
                    .unwrap_or_else(|| {
                        panic!("{name}: name the node field filter.{input} reads in FILTER_READS")
                    });
                let kind = named(&ty).0.to_string();
                let value = sample(&app, &admin, input_ty, Some(&kind)).await;
                reads.push((format!("filter: {{ {input}: {value} }}"), field, ty));
            }
        }
        for role in ROLES {
            let token = app.login(role).await;
            for (argument, field, ty) in &reads {
                let Some(forbidden) = forbidden_field(&app, &token, name, field, ty).await else {
                    continue;
                };
                let body = app
                    .gql(
                        Some(&token),
                        &format!("{{ {name}(first: 2, {argument}) {{ totalCount edges {{ cursor node {{ __typename }} }} }} }}"),
                        json!({}),
                    )
                    .await;
                if forbidden {
                    assert!(
                        refused(&body, name),
                        "{role}: {name}({argument}) reads {field}: {body}"
                    );
                    walked.0 += 1;
                } else {
                    assert!(
                        !body.to_string().contains("FORBIDDEN"),
                        "{role}: {name}({argument}) may read {field}: {body}"
                    );
                    walked.1 += 1;
                }
            }
        }
    }
    assert!(walked.0 >= 10, "few refusals walked: {walked:?}");
    assert!(walked.1 >= 50, "few admissions walked: {walked:?}");
}
