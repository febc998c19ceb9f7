//! The checked-in SDL is the schema the code builds.

#[test]
fn schema_graphql_equals_the_schema_the_code_builds() {
    let checked_in =
        std::fs::read_to_string("schema.graphql").expect("schema.graphql at the top level");
    let built = alawael::graphql::sdl();
    assert!(
        checked_in == built,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql` and commit it"
    );
}

#[test]
fn the_schema_command_prints_only_the_sdl_without_any_environment() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_alawael"))
        .arg("schema")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        alawael::graphql::sdl()
    );
}

#[test]
fn every_type_field_argument_and_enum_value_has_a_description() {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let document =
        async_graphql::parser::parse_schema(alawael::graphql::sdl()).expect("the SDL parses");
    let mut missing = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let ty = &ty.node;
        let name = ty.name.node.as_str();
        if ty.description.is_none() {
            missing.push(name.to_string());
        }
        let fields = match &ty.kind {
            TypeKind::Object(o) => Some(&o.fields),
            TypeKind::Interface(i) => Some(&i.fields),
            _ => None,
        };
        for field in fields.into_iter().flatten() {
            if field.node.description.is_none() {
                missing.push(format!("{name}.{}", field.node.name.node));
            }
            for arg in &field.node.arguments {
                if arg.node.description.is_none() {
                    missing.push(format!(
                        "{name}.{}({})",
                        field.node.name.node, arg.node.name.node
                    ));
                }
            }
        }
        if let TypeKind::InputObject(input) = &ty.kind {
            for field in &input.fields {
                if field.node.description.is_none() {
                    missing.push(format!("{name}.{}", field.node.name.node));
                }
            }
        }
        if let TypeKind::Enum(e) = &ty.kind {
            for value in &e.values {
                if value.node.description.is_none() {
                    missing.push(format!("{name}.{}", value.node.value.node));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented in the SDL: {missing:#?}");
}

/// Every Rust source file below `dir`, with its text.
fn sources(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            found.push((path, text));
        }
    }
    found
}

#[test]
fn the_layers_below_the_api_do_not_know_graphql() {
    let mut offenders = Vec::new();
    for dir in ["src/db", "src/domain", "src/events", "src/auth", "src/seed"] {
        for (path, text) in sources(std::path::Path::new(dir)) {
            if text.contains("async_graphql") || text.contains("crate::graphql") {
                offenders.push(path.display().to_string());
            }
        }
    }
    for file in [
        "src/state.rs",
        "src/cache.rs",
        "src/config.rs",
        "src/cursor.rs",
        // The hints (response_cache/hints.rs) read the schema: they sit above the engine.
        "src/response_cache/mod.rs",
    ] {
        let text = std::fs::read_to_string(file).unwrap();
        if text.contains("crate::graphql") || text.contains("async_graphql") {
            offenders.push(file.to_string());
        }
    }
    // A model's record, rules and other data-layer files stay below its API
    // (`api.rs`, `*_api.rs`; `mod.rs` names the model's share of the roots).
    for (path, text) in sources(std::path::Path::new("src/models")) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let api = name == "api.rs" || name.ends_with("_api.rs") || name == "mod.rs";
        if !api && (text.contains("async_graphql") || text.contains("crate::graphql")) {
            offenders.push(path.display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "these files reach up into the API layer: {offenders:?}"
    );
}
