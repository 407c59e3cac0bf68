//! The committed OpenAPI document is what the code describes. Regenerate
//! with `cargo run -q -- openapi > openapi/openapi.json`.

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = annals::http::openapi_document(&annals::modules())
        .to_pretty_json()
        .unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is stale: run `cargo run -q -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_operation_documents_its_responses() {
    let doc = serde_json::to_value(annals::http::openapi_document(&annals::modules())).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                !responses.is_empty(),
                "{method} {path} documents no response"
            );
        }
    }
}

/// OpenAPI requires each operation's id to be unique (generated clients
/// name their functions by it).
#[test]
fn operation_ids_are_unique() {
    let doc = serde_json::to_value(annals::http::openapi_document(&annals::modules())).unwrap();
    let mut seen = std::collections::HashMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            if let Some(earlier) = seen.insert(id.to_string(), format!("{method} {path}")) {
                panic!("operationId {id} is used by {earlier} and {method} {path}");
            }
        }
    }
}
