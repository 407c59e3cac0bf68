//! The shop over REST, one file per resource: products (with fitment,
//! stock and the storefront), the cart and checkout, orders (with the
//! payment provider's webhook and statistics) and the dealer program.

mod cart;
mod dealers;
mod orders;
mod products;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use annals_domain::values::Money;
use annals_domain::FieldError;
use annals_projections::shop::{DealersProjector, OrdersProjector, ProductsProjector};
use annals_projections::Projector;

use super::{ApiError, AppState};
use crate::platform::Module;

pub struct ShopModule;

impl Module for ShopModule {
    fn name(&self) -> &'static str {
        "shop"
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(
                products::create_product_category,
                products::list_product_categories
            ))
            .routes(routes!(products::create_product, products::list_products))
            .routes(routes!(products::get_product, products::update_product))
            .routes(routes!(products::receive_stock))
            .routes(routes!(products::correct_stock))
            .routes(routes!(products::storefront))
            .routes(routes!(products::vehicles))
            .routes(routes!(cart::get_cart, cart::open_cart))
            .routes(routes!(cart::add_item))
            .routes(routes!(cart::set_quantity, cart::remove_item))
            .routes(routes!(cart::checkout))
            .routes(routes!(orders::list_orders))
            .routes(routes!(orders::get_order))
            .routes(routes!(orders::order_history))
            .routes(routes!(orders::record_order_payment))
            .routes(routes!(orders::ship))
            .routes(routes!(orders::deliver))
            .routes(routes!(orders::ready_for_pickup))
            .routes(routes!(orders::picked_up))
            .routes(routes!(orders::cancel_order))
            .routes(routes!(orders::erase_order))
            .routes(routes!(orders::refund))
            .routes(routes!(orders::payment_webhook))
            .routes(routes!(orders::order_stats))
            .routes(routes!(dealers::apply, dealers::list_applications))
            .routes(routes!(dealers::approve))
            .routes(routes!(dealers::reject))
            .routes(routes!(dealers::my_dealer))
    }

    fn projectors(&self) -> Vec<Arc<dyn Projector>> {
        vec![
            Arc::new(ProductsProjector),
            Arc::new(OrdersProjector),
            Arc::new(DealersProjector),
        ]
    }
}

fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    super::extract::path_uuid("id", raw)
}

/// An amount and currency from a body, or the fields that are wrong.
fn money(field: &str, amount: &str, currency: &str) -> Result<Money, Vec<FieldError>> {
    Money::parse(field, amount, currency.trim())
}

/// `X-Cart-Id`: the guest cart a request is about.
pub struct CartHeader(pub Option<Uuid>);

impl<S: Send + Sync> FromRequestParts<S> for CartHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("x-cart-id") else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .and_then(|v| Uuid::parse_str(v.trim()).ok())
            .map(|id| Self(Some(id)))
            .ok_or_else(|| {
                ApiError::bad_parameter("X-Cart-Id", "must be the cart id the server issued")
            })
    }
}

/// The header a guest's cart requests carry, for the OpenAPI document.
#[derive(IntoParams, Deserialize)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct CartHeaderParams {
    /// The guest cart (the `cart_id` a cart answer gave); signed-in users
    /// without it use their own cart.
    #[param(rename = "X-Cart-Id", format = Uuid, nullable = false)]
    x_cart_id: Option<String>,
}
