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
