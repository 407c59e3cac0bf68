//! The shop: product categories, products with their fitment and stock,
//! the SKU register, carts, orders and the dealer program. Checkout changes
//! the order, the cart and every tracked product in one commit, so a unit
//! of stock is never sold twice and never held by nothing.

pub mod cart;
pub mod category;
pub mod dealer;
pub mod order;
pub mod pricing;
pub mod product;
pub mod sku;

#[cfg(test)]
mod tests;

pub use cart::{Cart, CartCommand, CartError, CartEvent};
pub use category::{ProductCategory, ProductCategoryCommand, ProductCategoryEvent};
pub use dealer::{
    ApplicationForm, Dealer, DealerApplication, DealerApplicationCommand, DealerApplicationEvent,
    DealerCommand, DealerError, DealerEvent, DealerStatus,
};
pub use order::{
    Address, Customer, Delivery, Order, OrderCommand, OrderError, OrderEvent, OrderLine, Placement,
    Status as OrderStatus,
};
pub use pricing::{DealerTerms, PriceRule};
pub use product::{Fitment, Product, ProductCommand, ProductError, ProductEvent, ProductTerms};
pub use sku::{sku_key, SkuClaim, SkuCommand, SkuError, SkuEvent};
