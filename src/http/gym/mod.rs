//! The studio over REST: plans, subscriptions (payments, freezes,
//! cancellation) and the subscriber lists as of any date.

mod plans;
mod subscriptions;

use std::sync::Arc;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use annals_projections::gym::SubscriptionsProjector;
use annals_projections::Projector;

use super::AppState;
use crate::platform::Module;

pub struct GymModule;

impl Module for GymModule {
    fn name(&self) -> &'static str {
        "gym"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(plans::create_plan, plans::list_plans))
            .routes(routes!(plans::get_plan))
            .routes(routes!(plans::deactivate_plan))
            .routes(routes!(subscriptions::open))
            .routes(routes!(subscriptions::get_subscription))
            .routes(routes!(subscriptions::record_payment))
            .routes(routes!(subscriptions::void_payment))
            .routes(routes!(subscriptions::freeze))
            .routes(routes!(subscriptions::end_freeze))
            .routes(routes!(subscriptions::cancel))
            .routes(routes!(subscriptions::subscribers))
            .routes(routes!(subscriptions::expiring))
            .routes(routes!(subscriptions::my_subscriptions))
            .routes(routes!(subscriptions::studio_stats))
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![Arc::new(SubscriptionsProjector)]
    }
}
