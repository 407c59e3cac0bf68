//! Read models of the shop: the product catalog (with fitment and stock),
//! orders and the dealer program. (A cart is read from its own stream, as
//! a command would: what a shopper put in is there at once.) Each folds a batch into the rows
//! it touches and writes them back together (`crate::rows`).

pub mod queries;
pub mod stats;

use std::collections::BTreeMap;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use rust_decimal::Decimal;
use sqlx::AnyConnection;

use annals_domain::shop::{
    Dealer, DealerApplication, DealerApplicationEvent, DealerEvent, Order, OrderEvent, Product,
    ProductCategory, ProductCategoryEvent, ProductEvent, ProductTerms,
};
use annals_domain::StoredEvent;

use crate::appointments::{parsed, timestamp};
use crate::forget::{self, Shows, Whose};
use crate::rows::{bind_all, rows_per_statement, Cell, Marks, Rows};
use crate::Projector;

pub const PRODUCTS: &str = "products";
pub const ORDERS: &str = "orders";
pub const DEALERS: &str = "dealers";

crate::record! {
    ProductCategoryRecord in "product_categories" {
        key id,
        name: String,
        version: i64,
    }
}

crate::record! {
    ProductRecord in "products" {
        key id,
        name: String,
        description: String,
        sku: String,
        category_id: String,
        price: String,
        currency: String,
        images: String,
        active: i64,
        new_arrival: Option<String>,
        track_stock: i64,
        on_hand: i64,
        reserved: i64,
        universal: i64,
        fitment: String,
        version: i64,
    }
}

impl ProductRecord {
    fn set_terms(&mut self, terms: &ProductTerms) -> anyhow::Result<()> {
        self.name = terms.name.clone();
        self.description = terms.description.clone();
        self.sku = terms.sku.clone();
        self.category_id = terms.category_id.to_string();
        self.price = terms.price.amount.to_string();
        self.currency = terms.price.currency.clone();
        self.images = serde_json::to_string(&terms.images)?;
        self.new_arrival = terms.new_arrival.map(|d| d.to_string());
        self.track_stock = i64::from(terms.track_stock);
        self.universal = i64::from(terms.universal);
        self.fitment = serde_json::to_string(&terms.fitment)?;
        Ok(())
    }

    fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            name: String::new(),
            description: String::new(),
            sku: String::new(),
            category_id: String::new(),
            price: String::new(),
            currency: String::new(),
            images: "[]".into(),
            active: 1,
            new_arrival: None,
            track_stock: 0,
            on_hand: 0,
            reserved: 0,
            universal: 0,
            fitment: "[]".into(),
            version: 0,
        }
    }
}

/// The catalog of products: categories, products with their stock, and
/// one row per vehicle a product fits (for the fitment filter).
pub struct ProductsProjector;

#[async_trait]
impl Projector for ProductsProjector {
    fn name(&self) -> &'static str {
        PRODUCTS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Product::TYPE || event.aggregate_type == ProductCategory::TYPE
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let created: Vec<(&StoredEvent, ProductCategoryEvent)> =
            parsed(events, ProductCategory::TYPE)?;
        let changes: Vec<(&StoredEvent, ProductEvent)> = parsed(events, Product::TYPE)?;
        let mut categories = Rows::<ProductCategoryRecord>::load(
            tx,
            created.iter().map(|(e, _)| e.aggregate_id.clone()),
        )
        .await?;
        let mut products =
            Rows::<ProductRecord>::load(tx, changes.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        for (event, ProductCategoryEvent::Created { name }) in created {
            categories.put(ProductCategoryRecord {
                id: event.aggregate_id.clone(),
                name,
                version: event.sequence,
            });
        }
        // Products whose fitment rows are rewritten, with their fitment.
        let mut refitted = BTreeMap::new();
        for (event, change) in changes {
            let id = &event.aggregate_id;
            if products.get(id).is_none() {
                products.put(ProductRecord::new(id));
            }
            let row = products.change(id).expect("put above");
            row.version = event.sequence;
            match change {
                ProductEvent::Created { terms } | ProductEvent::Updated { terms } => {
                    row.set_terms(&terms)?;
                    refitted.insert(id.clone(), terms.fitment);
                }
                ProductEvent::Deactivated => row.active = 0,
                ProductEvent::Reactivated => row.active = 1,
                ProductEvent::StockReceived { quantity } => row.on_hand += i64::from(quantity),
                ProductEvent::StockCorrected { on_hand, .. } => row.on_hand = i64::from(on_hand),
                ProductEvent::StockReserved { quantity, .. } => row.reserved += i64::from(quantity),
                ProductEvent::StockReleased { quantity, .. } => row.reserved -= i64::from(quantity),
                ProductEvent::StockDispatched { quantity, .. } => {
                    row.reserved -= i64::from(quantity);
                    row.on_hand -= i64::from(quantity);
                }
            }
        }
        categories.write(tx).await?;
        products.write(tx).await?;
        write_fitment(tx, refitted).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["product_categories", "products", "product_fitment"]
    }
}

/// Replaces the fitment rows of the products given.
async fn write_fitment(
    tx: &mut AnyConnection,
    refitted: BTreeMap<String, Vec<annals_domain::shop::Fitment>>,
) -> anyhow::Result<()> {
    if refitted.is_empty() {
        return Ok(());
    }
    let marks = Marks::of(tx);
    let ids: Vec<String> = refitted.keys().cloned().collect();
    for chunk in ids.chunks(rows_per_statement(1)) {
        let sql = format!(
            "DELETE FROM product_fitment WHERE product_id IN ({})",
            marks.list(chunk.len(), 1)
        );
        bind_all(sqlx::query(&sql), chunk.iter().cloned().map(Cell::from))
            .execute(&mut *tx)
            .await?;
    }
    let rows: Vec<[Cell; 5]> = refitted
        .into_iter()
        .flat_map(|(id, fitment)| {
            fitment.into_iter().map(move |f| {
                [
                    Cell::from(id.clone()),
                    Cell::from(f.make.trim().to_lowercase()),
                    Cell::from(f.model.trim().to_lowercase()),
                    Cell::from(i64::from(f.year_from)),
                    Cell::from(i64::from(f.year_to)),
                ]
            })
        })
        .collect();
    for chunk in rows.chunks(rows_per_statement(5)) {
        let sql = format!(
            "INSERT INTO product_fitment (product_id, make, model, year_from, year_to) VALUES {}",
            marks.rows(chunk.len(), 5, 1)
        );
        bind_all(sqlx::query(&sql), chunk.iter().flatten().cloned())
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

crate::record! {
    OrderRecord in "orders" {
        key id,
        number: String,
        status: String,
        customer_id: Option<String>,
        customer_name: String,
        email: String,
        email_key: String,
        phone: String,
        delivery: String,
        lines: String,
        total: String,
        currency: String,
        paid: String,
        refunded: String,
        dealer: i64,
        placed_at: String,
        paid_at: Option<String>,
        version: i64,
    }
}

fn add(text: &str, amount: Decimal) -> anyhow::Result<String> {
    let mut sum = text.parse::<Decimal>()? + amount;
    sum.rescale(2);
    Ok(sum.to_string())
}

pub struct OrdersProjector;

/// What an order shows of its buyer: a signed-in buyer's are the user's
/// (erased with the user), a guest's the order's own (`store::privacy`).
const ORDER_PERSONAL: &[Shows] = &[
    Shows {
        table: "orders",
        key: "id",
        whose: Whose::User,
        owner: "customer_id",
        columns: BUYER,
        state: Some(("delivery", &["/shipping"])),
    },
    Shows {
        table: "orders",
        key: "id",
        whose: Whose::Order,
        owner: "id",
        columns: BUYER,
        state: Some(("delivery", &["/shipping"])),
    },
];

const BUYER: &[&str] = &["customer_name", "email", "email_key", "phone"];

#[async_trait]
impl Projector for OrdersProjector {
    fn name(&self) -> &'static str {
        ORDERS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == Order::TYPE || forget::erases(ORDER_PERSONAL, event)
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let changes: Vec<(&StoredEvent, OrderEvent)> = parsed(events, Order::TYPE)?;
        let mut orders =
            Rows::<OrderRecord>::load(tx, changes.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        for (event, change) in changes {
            let id = &event.aggregate_id;
            if let OrderEvent::Placed(placement) = change {
                let mut total = placement.total;
                total.rescale(2);
                orders.put(OrderRecord {
                    id: id.clone(),
                    number: placement.number.clone(),
                    status: "placed".into(),
                    customer_id: placement.customer_id.map(|c| c.to_string()),
                    customer_name: placement.customer.name.clone(),
                    email: placement.customer.email.clone(),
                    email_key: placement.customer.email.trim().to_lowercase(),
                    phone: placement.customer.phone.clone(),
                    delivery: serde_json::to_string(&placement.delivery)?,
                    lines: serde_json::to_string(&placement.lines)?,
                    total: total.to_string(),
                    currency: placement.currency.clone(),
                    paid: "0.00".into(),
                    refunded: "0.00".into(),
                    dealer: i64::from(placement.dealer),
                    placed_at: timestamp(event.recorded_at),
                    paid_at: None,
                    version: event.sequence,
                });
                continue;
            }
            let row = orders
                .change(id)
                .ok_or_else(|| anyhow::anyhow!("order {id} changed but was never placed"))?;
            row.version = event.sequence;
            match change {
                OrderEvent::Placed(_) => unreachable!("handled above"),
                OrderEvent::PaymentRecorded { amount, .. } => row.paid = add(&row.paid, amount)?,
                OrderEvent::Paid { .. } => {
                    row.status = "paid".into();
                    row.paid_at = Some(timestamp(event.recorded_at));
                }
                OrderEvent::Shipped => row.status = "shipped".into(),
                OrderEvent::Delivered => row.status = "delivered".into(),
                OrderEvent::ReadyForPickup => row.status = "ready_for_pickup".into(),
                OrderEvent::PickedUp => row.status = "picked_up".into(),
                OrderEvent::Cancelled { .. } => row.status = "cancelled".into(),
                // `forget` below: the same for an order as for a user.
                OrderEvent::PersonalDataErased => {}
                OrderEvent::Refunded { amount, .. } => {
                    row.refunded = add(&row.refunded, amount)?;
                    if row.refunded.parse::<Decimal>()? >= row.paid.parse::<Decimal>()? {
                        row.status = "refunded".into();
                    }
                }
            }
        }
        orders.write(tx).await?;
        forget::forget(tx, ORDER_PERSONAL, events).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["orders"]
    }
}

crate::record! {
    ApplicationRecord in "dealer_applications" {
        key id,
        user_id: String,
        company: String,
        tax_id: String,
        message: String,
        status: String,
        discount_percent: Option<i64>,
        reason: Option<String>,
        decided_by: Option<String>,
        submitted_at: String,
        decided_at: Option<String>,
        version: i64,
    }
}

crate::record! {
    DealerRecord in "dealers" {
        key id,
        status: String,
        application_id: Option<String>,
        terms: Option<String>,
        version: i64,
    }
}

/// Dealer applications and each user's standing in the program.
pub struct DealersProjector;

/// What an application shows of the user who filed it.
const APPLICATION_PERSONAL: &[Shows] = &[Shows {
    table: "dealer_applications",
    key: "id",
    whose: Whose::User,
    owner: "user_id",
    columns: &["company", "tax_id", "message"],
    state: None,
}];

#[async_trait]
impl Projector for DealersProjector {
    fn name(&self) -> &'static str {
        DEALERS
    }

    fn handles(&self, event: &StoredEvent) -> bool {
        event.aggregate_type == DealerApplication::TYPE
            || event.aggregate_type == Dealer::TYPE
            || forget::erases(APPLICATION_PERSONAL, event)
    }

    async fn apply(&self, tx: &mut AnyConnection, events: &[StoredEvent]) -> anyhow::Result<()> {
        let decisions: Vec<(&StoredEvent, DealerApplicationEvent)> =
            parsed(events, DealerApplication::TYPE)?;
        let standings: Vec<(&StoredEvent, DealerEvent)> = parsed(events, Dealer::TYPE)?;
        let mut applications = Rows::<ApplicationRecord>::load(
            tx,
            decisions.iter().map(|(e, _)| e.aggregate_id.clone()),
        )
        .await?;
        let mut dealers =
            Rows::<DealerRecord>::load(tx, standings.iter().map(|(e, _)| e.aggregate_id.clone()))
                .await?;
        for (event, change) in decisions {
            let id = &event.aggregate_id;
            let at = timestamp(event.recorded_at);
            if let DealerApplicationEvent::Submitted(form) = change {
                applications.put(ApplicationRecord {
                    id: id.clone(),
                    user_id: form.user_id.to_string(),
                    company: form.company,
                    tax_id: form.tax_id,
                    message: form.message,
                    status: "pending".into(),
                    discount_percent: None,
                    reason: None,
                    decided_by: None,
                    submitted_at: at,
                    decided_at: None,
                    version: event.sequence,
                });
                continue;
            }
            let row = applications
                .change(id)
                .ok_or_else(|| anyhow::anyhow!("application {id} decided but never submitted"))?;
            row.version = event.sequence;
            row.decided_at = Some(at);
            match change {
                DealerApplicationEvent::Submitted(_) => unreachable!("handled above"),
                DealerApplicationEvent::Approved {
                    discount_percent,
                    by,
                    ..
                } => {
                    row.status = "approved".into();
                    row.discount_percent = Some(i64::from(discount_percent));
                    row.decided_by = Some(by.to_string());
                }
                DealerApplicationEvent::Rejected { reason, by } => {
                    row.status = "rejected".into();
                    row.reason = Some(reason);
                    row.decided_by = Some(by.to_string());
                }
            }
        }
        for (event, change) in standings {
            let id = &event.aggregate_id;
            if dealers.get(id).is_none() {
                dealers.put(DealerRecord {
                    id: id.clone(),
                    status: "none".into(),
                    application_id: None,
                    terms: None,
                    version: 0,
                });
            }
            let row = dealers.change(id).expect("put above");
            row.version = event.sequence;
            match change {
                DealerEvent::ApplicationFiled { application_id } => {
                    row.status = "pending".into();
                    row.application_id = Some(application_id.to_string());
                }
                DealerEvent::DiscountGranted { terms } => {
                    row.status = "approved".into();
                    row.terms = Some(serde_json::to_string(&terms)?);
                }
                DealerEvent::ApplicationTurnedDown { .. } => row.status = "rejected".into(),
            }
        }
        applications.write(tx).await?;
        dealers.write(tx).await?;
        forget::forget(tx, APPLICATION_PERSONAL, events).await
    }

    fn tables(&self) -> &'static [&'static str] {
        &["dealer_applications", "dealers"]
    }
}
