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
        (name = "identity", description = "Users, sign-in, profile, roles"),
        (name = "appointments", description = "Catalog, masters, availability, appointments, statistics"),
        (name = "notifier", description = "The Telegram notifier's settings"),
        (name = "ops", description = "Health, readiness and metrics"),
    ),
    modifiers(&BearerAuth),
    components(schemas(super::error::Problem, super::error::ProblemField, super::command::CommandAccepted)),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}
