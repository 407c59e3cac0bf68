//! Appointments over REST, one file per resource: the service catalog,
//! masters and their hours, availability, and appointments (booking and
//! the appointment's life). Handlers parse, authorise, call one workflow of
//! `app::appointments` or one read-model query, and map the result.

mod availability;
mod booking;
mod catalog;
mod masters;

use std::sync::Arc;

use chrono::NaiveTime;
use chrono_tz::Tz;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use annals_domain::FieldError;
use annals_projections::appointments::{AppointmentsProjector, CatalogProjector, MastersProjector};
use annals_projections::Projector;

use super::{ApiError, AppState, Caller};
use crate::auth::Principal;
use crate::platform::Module;

pub use booking::AppointmentView;

pub struct AppointmentsModule;

impl Module for AppointmentsModule {
    fn name(&self) -> &'static str {
        "appointments"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(catalog::create_category, catalog::list_categories))
            .routes(routes!(catalog::get_category))
            .routes(routes!(catalog::create_service, catalog::list_services))
            .routes(routes!(catalog::get_service, catalog::update_service))
            .routes(routes!(catalog::deactivate_service))
            .routes(routes!(masters::register_master, masters::list_masters))
            .routes(routes!(masters::get_master))
            .routes(routes!(masters::set_working_hours))
            .routes(routes!(masters::add_days_off))
            .routes(routes!(availability::get_availability))
            .routes(routes!(booking::book, booking::list_appointments))
            .routes(routes!(booking::get_appointment))
            .routes(routes!(booking::appointment_history))
            .routes(routes!(booking::cancel))
            .routes(routes!(booking::reschedule))
            .routes(routes!(booking::confirm))
            .routes(routes!(booking::complete))
            .routes(routes!(booking::no_show))
            .routes(routes!(super::dashboards::master_schedule))
            .routes(routes!(super::dashboards::appointment_stats))
            .routes(routes!(super::dashboards::my_dashboard))
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![
            Arc::new(CatalogProjector),
            Arc::new(MastersProjector),
            Arc::new(AppointmentsProjector),
            Arc::new(annals_projections::statistics::StatisticsProjector),
        ]
    }
}

// ---------------------------------------------------------------- helpers

fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    super::extract::path_uuid("id", raw)
}

fn principal(caller: &Caller) -> Result<Principal, ApiError> {
    caller.principal().cloned()
}

fn parse_time(field: &str, text: &str) -> Result<NaiveTime, FieldError> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| FieldError::new(field, "must be a time like 09:00"))
}

/// An IANA time zone name, documented as the list of zones this server
/// knows (chrono-tz's database), so clients and fuzzers see what is valid.
pub struct TimeZoneName;

/// A name a client generator can use for a zone in code: `Etc/GMT+1` and
/// `Etc/GMT-1` (or `GMT0`, `GMT+0`, `GMT-0`) must not collapse into one.
pub fn zone_identifier(zone: &str) -> String {
    let mut out = String::new();
    for c in zone.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c.to_ascii_uppercase()),
            '+' => out.push_str("_PLUS_"),
            '-' => out.push_str("_MINUS_"),
            _ => out.push('_'),
        }
    }
    out.trim_matches('_').replace("__", "_")
}

impl utoipa::PartialSchema for TimeZoneName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::extensions::ExtensionsBuilder;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let zones = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let identifiers: Vec<String> = zones.clone().map(zone_identifier).collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(zones))
            .description(Some("IANA time zone"))
            .examples(["Europe/Berlin"])
            // Names for the values in generated clients (openapi-generator,
            // openapi-python-client), unique where the zone names' letters
            // and digits alone are not.
            .extensions(Some(
                ExtensionsBuilder::new()
                    .add("x-enum-varnames", identifiers)
                    .build(),
            ))
            .into()
    }
}

impl ToSchema for TimeZoneName {}

fn parse_tz(field: &str, text: &str) -> Result<Tz, FieldError> {
    text.parse::<Tz>()
        .map_err(|_| FieldError::new(field, "must be an IANA time zone like Europe/Berlin"))
}

pub use super::page::ReadQuery;

#[cfg(test)]
mod tests {
    use super::zone_identifier;

    #[test]
    fn every_zone_has_its_own_identifier_for_generated_clients() {
        let mut seen = std::collections::BTreeMap::new();
        for zone in chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()) {
            let id = zone_identifier(zone);
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_alphabetic()),
                "{zone} -> {id}"
            );
            if let Some(other) = seen.insert(id.clone(), zone) {
                panic!("{zone} and {other} both become {id}");
            }
        }
        assert_eq!(zone_identifier("Etc/GMT+1"), "ETC_GMT_PLUS_1");
        assert_eq!(zone_identifier("Etc/GMT-1"), "ETC_GMT_MINUS_1");
    }
}
