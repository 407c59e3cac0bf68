//! The root of the OpenAPI document; each module adds its paths.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Annals API",
        description = "Event-sourced backend for service businesses. Every change is an immutable \
                       event; commands answer with the version and global log position of their \
                       last event, and queries accept `min_position` to read their own writes.",
        license(name = "MIT", identifier = "MIT"),
    ),
    tags(
        (name = "ops", description = "Health, readiness and metrics"),
    ),
    components(schemas(super::error::Problem, super::error::ProblemField, super::command::CommandAccepted)),
)]
struct ApiDoc;

pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}
