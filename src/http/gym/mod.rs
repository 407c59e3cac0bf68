//! The studio over REST: plans, subscriptions (payments, freezes,
//! cancellation) and the subscriber lists as of any date.

mod broadcasts;
mod plans;
mod subscriptions;
mod trainings;

use std::sync::Arc;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use annals_projections::gym::{SubscriptionsProjector, TrainingsProjector};
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
            .routes(routes!(subscriptions::record_subscription_payment))
            .routes(routes!(subscriptions::void_payment))
            .routes(routes!(subscriptions::freeze))
            .routes(routes!(subscriptions::end_freeze))
            .routes(routes!(subscriptions::cancel_subscription))
            .routes(routes!(subscriptions::subscribers))
            .routes(routes!(subscriptions::expiring))
            .routes(routes!(subscriptions::my_subscriptions))
            .routes(routes!(subscriptions::client_card))
            .routes(routes!(subscriptions::studio_stats))
            .routes(routes!(trainings::create_group, trainings::list_groups))
            .routes(routes!(trainings::set_members))
            .routes(routes!(trainings::schedule, trainings::list_trainings))
            .routes(routes!(trainings::get_training))
            .routes(routes!(trainings::invite))
            .routes(routes!(trainings::respond))
            .routes(routes!(trainings::set_link))
            .routes(routes!(trainings::attendance))
            .routes(routes!(broadcasts::send))
            .routes(routes!(broadcasts::get_broadcast))
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![
            Arc::new(SubscriptionsProjector),
            Arc::new(TrainingsProjector),
        ]
    }
}
