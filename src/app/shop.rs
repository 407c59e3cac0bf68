//! Shop workflows: the product catalog and its stock, carts, checkout, an
//! order's life and the dealer program. Checkout places the order,
//! reserves every tracked product's stock and empties the cart in one
//! commit; cancelling gives the stock back and shipping takes it off hand
//! in the same commit as the order's change. So a unit is never sold
//! twice, and never held by an order that does not exist.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use annals_domain::shop::order::Address;
use annals_domain::shop::pricing::{line_total, unit_price};
use annals_domain::shop::{
    sku_key, ApplicationForm, Cart, CartCommand, Customer, Dealer, DealerApplication,
    DealerApplicationCommand, DealerCommand, DealerTerms, Delivery, Order, OrderCommand, OrderLine,
    Placement, Product, ProductCategory, ProductCategoryCommand, ProductCommand, ProductTerms,
    SkuClaim, SkuCommand,
};
use annals_domain::user::{Role, User, UserCommand};
use annals_domain::values::Money;

use super::{AppError, CommandContext, Done, Unit};
use crate::auth::Principal;
use crate::platform::Platform;

/// Staff who see and process every order and decide dealer applications.
pub const ORDER_STAFF: &[Role] = &[Role::Admin, Role::Manager, Role::Operator];

pub fn is_order_staff(p: &Principal) -> bool {
    p.roles.iter().any(|r| ORDER_STAFF.contains(r))
}

// ---------------------------------------------------------------- catalog

pub async fn create_category(
    p: &Platform,
    ctx: &CommandContext,
    name: String,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7().to_string();
    p.commands
        .create::<ProductCategory>(ctx, &id, ProductCategoryCommand::Create { name })
        .await
}

/// The category a product names must exist (the aggregate decides).
async fn check_category(p: &Platform, terms: &ProductTerms) -> Result<(), AppError> {
    let (category, _) = p
        .commands
        .load::<ProductCategory>(&terms.category_id.to_string())
        .await?;
    if category.name.is_none() {
        return Err(AppError::unknown_reference(
            "category_id",
            "no such product category",
        ));
    }
    Ok(())
}

/// Puts the product in or out of the shop as `active` says.
async fn set_active(
    unit: &mut Unit,
    product: &mut super::Loaded<Product>,
    active: Option<bool>,
) -> Result<(), AppError> {
    match active {
        Some(false) => unit.decide(product, ProductCommand::Deactivate).await?,
        Some(true) => unit.decide(product, ProductCommand::Reactivate).await?,
        None => Vec::new(),
    };
    Ok(())
}

/// Creates a product and claims its SKU, in one commit.
pub async fn create_product(
    p: &Platform,
    ctx: &CommandContext,
    terms: ProductTerms,
    active: bool,
) -> Result<Done<()>, AppError> {
    check_category(p, &terms).await?;
    let id = Uuid::now_v7();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let terms = terms.clone();
            async move {
                let mut product = unit.create_subject::<Product>(&id.to_string()).await?;
                let mut sku = unit.load::<SkuClaim>(&sku_key(&terms.sku)).await?;
                unit.decide(&mut sku, SkuCommand::Claim { product_id: id })
                    .await?;
                unit.decide(&mut product, ProductCommand::Create { terms })
                    .await?;
                set_active(&mut unit, &mut product, (!active).then_some(false)).await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// Replaces a product's terms; a new SKU is claimed and the old one given
/// up in the same commit.
pub async fn update_product(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    terms: ProductTerms,
    active: Option<bool>,
) -> Result<Done<()>, AppError> {
    check_category(p, &terms).await?;
    p.commands
        .run(ctx, |mut unit: Unit| {
            let terms = terms.clone();
            async move {
                let mut product = unit.load_subject::<Product>(&id.to_string()).await?;
                let old = product.state.terms.as_ref().map(|t| sku_key(&t.sku));
                let new = sku_key(&terms.sku);
                if old.as_ref().is_some_and(|old| *old != new) {
                    let mut claim = unit.load::<SkuClaim>(&new).await?;
                    unit.decide(&mut claim, SkuCommand::Claim { product_id: id })
                        .await?;
                    let mut released = unit.load::<SkuClaim>(old.as_deref().unwrap_or("")).await?;
                    unit.decide(&mut released, SkuCommand::Release { product_id: id })
                        .await?;
                }
                unit.decide(&mut product, ProductCommand::Update { terms })
                    .await?;
                set_active(&mut unit, &mut product, active).await?;
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn product_command(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: ProductCommand,
) -> Result<Done<()>, AppError> {
    p.commands
        .execute::<Product>(ctx, &id.to_string(), command)
        .await
}

// ---------------------------------------------------------------- carts

/// Whose cart: a signed-in user's (the stream named by their id) or a
/// guest's (named by the id the server issued).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartOwner {
    User(Uuid),
    Guest(Uuid),
    /// A guest without a cart yet: the first change opens one by this id.
    NewGuest(Uuid),
}

impl CartOwner {
    pub fn cart_id(&self) -> String {
        match self {
            CartOwner::User(id) | CartOwner::Guest(id) | CartOwner::NewGuest(id) => id.to_string(),
        }
    }
}

/// A guest cart is reached by its id alone; a user's cart only by its user.
fn reachable(owner: CartOwner, cart: &Cart) -> bool {
    match owner {
        CartOwner::Guest(_) => cart.open && cart.owner.is_none(),
        CartOwner::NewGuest(_) => !cart.open,
        CartOwner::User(_) => true,
    }
}

/// The caller's dealer discount, when they hold the dealer role and an
/// approved application (revoking the role ends the discount).
async fn dealer_terms(
    p: &Platform,
    me: Option<&Principal>,
) -> Result<Option<DealerTerms>, AppError> {
    let Some(me) = me.filter(|me| me.has(Role::Dealer)) else {
        return Ok(None);
    };
    let (dealer, _) = p.commands.load::<Dealer>(&me.user_id.to_string()).await?;
    Ok(dealer.terms)
}

/// A cart line at the caller's price.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricedLine {
    pub line: OrderLine,
    pub active: bool,
    /// Units available now (tracked stock only).
    pub available: Option<u32>,
}

/// A cart at the caller's prices: each product read from its own stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricedCart {
    pub cart_id: String,
    pub lines: Vec<PricedLine>,
    pub total: Decimal,
    pub currency: Option<String>,
    pub version: i64,
}

async fn price_cart(
    p: &Platform,
    cart_id: String,
    cart: &Cart,
    version: i64,
    dealer: Option<&DealerTerms>,
) -> Result<PricedCart, AppError> {
    let mut lines = Vec::with_capacity(cart.lines.len());
    let mut total = Decimal::ZERO;
    for (product_id, entry) in &cart.lines {
        let (product, _) = p.commands.load::<Product>(&product_id.to_string()).await?;
        let Some(terms) = &product.terms else {
            continue;
        };
        let line = order_line(
            *product_id,
            terms,
            entry.quantity,
            dealer,
            product.tracked(),
        );
        total += line.line_total;
        lines.push(PricedLine {
            line,
            active: product.active,
            available: product.tracked().then(|| product.stock.available()),
        });
    }
    total.rescale(2);
    Ok(PricedCart {
        cart_id,
        lines,
        total,
        currency: cart.currency().map(str::to_string),
        version,
    })
}

fn order_line(
    product_id: Uuid,
    terms: &ProductTerms,
    quantity: u32,
    dealer: Option<&DealerTerms>,
    reserved: bool,
) -> OrderLine {
    let base = terms.price.amount;
    let (unit, rule) = unit_price(base, dealer);
    OrderLine {
        product_id,
        sku: terms.sku.clone(),
        name: terms.name.clone(),
        category_id: terms.category_id,
        quantity,
        base_price: base,
        rule,
        unit_price: unit,
        line_total: line_total(unit, quantity),
        reserved,
    }
}

/// The caller's cart at their prices (an empty one if a user has none yet;
/// 404 for a guest cart that was never opened).
pub async fn view_cart(
    p: &Platform,
    owner: CartOwner,
    me: Option<&Principal>,
) -> Result<PricedCart, AppError> {
    let id = owner.cart_id();
    let (cart, version) = p.commands.load::<Cart>(&id).await?;
    if !reachable(owner, &cart) {
        return Err(AppError::not_found("no such cart"));
    }
    let dealer = dealer_terms(p, me).await?;
    price_cart(p, id, &cart, version, dealer.as_ref()).await
}

/// Opens a cart: a new guest cart, or the signed-in user's own.
pub async fn open_cart(
    p: &Platform,
    ctx: &CommandContext,
    owner: CartOwner,
) -> Result<Done<()>, AppError> {
    let id = owner.cart_id();
    p.commands
        .run(ctx, |mut unit: Unit| {
            let id = id.clone();
            async move {
                let mut cart = unit.load_subject::<Cart>(&id).await?;
                if !reachable(owner, &cart.state) {
                    return Err(AppError::not_found("no such cart"));
                }
                if !cart.state.open {
                    let user = match owner {
                        CartOwner::User(user) => Some(user),
                        _ => None,
                    };
                    unit.decide(&mut cart, CartCommand::Open { owner: user })
                        .await?;
                }
                Ok((unit, ()))
            }
        })
        .await
}

/// A change of the caller's cart.
#[derive(Debug, Clone)]
pub enum CartChange {
    Add { product_id: Uuid, quantity: u32 },
    SetQuantity { product_id: Uuid, quantity: u32 },
    Remove { product_id: Uuid },
}

/// Changes the cart (a user's opens with its first product) and answers
/// it at the caller's prices.
pub async fn change_cart(
    p: &Platform,
    ctx: &CommandContext,
    owner: CartOwner,
    me: Option<&Principal>,
    change: CartChange,
) -> Result<Done<PricedCart>, AppError> {
    let id = owner.cart_id();
    let done = p
        .commands
        .run(ctx, |mut unit: Unit| {
            let (id, change) = (id.clone(), change.clone());
            async move {
                let mut cart = unit.load_subject::<Cart>(&id).await?;
                if !reachable(owner, &cart.state) {
                    return Err(AppError::not_found("no such cart"));
                }
                if !cart.state.open {
                    let user = match owner {
                        CartOwner::User(user) => Some(user),
                        _ => None,
                    };
                    unit.decide(&mut cart, CartCommand::Open { owner: user })
                        .await?;
                }
                let command = match change {
                    CartChange::Add {
                        product_id,
                        quantity,
                    } => {
                        let product = unit.load::<Product>(&product_id.to_string()).await?;
                        let Some(terms) = &product.state.terms else {
                            return Err(AppError::unknown_reference(
                                "product_id",
                                "no such product",
                            ));
                        };
                        if !product.state.active {
                            return Err(AppError::conflict(
                                "product-inactive",
                                format!("{} is not for sale (deactivated)", terms.name),
                            ));
                        }
                        CartCommand::Add {
                            product_id,
                            quantity,
                            currency: terms.price.currency.clone(),
                        }
                    }
                    CartChange::SetQuantity {
                        product_id,
                        quantity,
                    } => CartCommand::SetQuantity {
                        product_id,
                        quantity,
                    },
                    CartChange::Remove { product_id } => CartCommand::Remove { product_id },
                };
                unit.decide(&mut cart, command).await?;
                Ok((unit, (cart.state, cart.version)))
            }
        })
        .await?;
    let dealer = dealer_terms(p, me).await?;
    let (cart, version) = &done.value;
    let priced = price_cart(p, id, cart, *version, dealer.as_ref()).await?;
    Ok(Done {
        id: done.id,
        version: done.version,
        position: done.position,
        value: priced,
        replayed: done.replayed,
    })
}

// ---------------------------------------------------------------- checkout

pub struct CheckoutForm {
    pub customer: Customer,
    pub delivery: Delivery,
}

/// A short reference people quote, derived from the order's id (48 of its
/// random bits: unique with overwhelming likelihood for any shop's volume).
pub fn order_number(id: Uuid) -> String {
    let hex = id.simple().to_string().to_uppercase();
    format!("{}-{}-{}", &hex[20..24], &hex[24..28], &hex[28..32])
}

/// Places the order with its lines at the caller's prices, reserves the
/// stock of every tracked product and empties the cart: one commit.
pub async fn checkout(
    p: &Platform,
    ctx: &CommandContext,
    owner: CartOwner,
    me: Option<&Principal>,
    form: CheckoutForm,
) -> Result<Done<Placement>, AppError> {
    let order_id = Uuid::now_v7();
    let cart_id = owner.cart_id();
    let dealer = dealer_terms(p, me).await?;
    let customer_id = me.map(|me| me.user_id);
    p.commands
        .run(ctx, |mut unit: Unit| {
            let (cart_id, dealer) = (cart_id.clone(), dealer.clone());
            let (customer, delivery) = (form.customer.clone(), form.delivery.clone());
            async move {
                let mut order = unit.create_subject::<Order>(&order_id.to_string()).await?;
                let mut cart = unit.load::<Cart>(&cart_id).await?;
                if !reachable(owner, &cart.state) {
                    return Err(AppError::not_found("no such cart"));
                }
                if cart.state.lines.is_empty() {
                    return Err(AppError::conflict("cart-empty", "the cart is empty"));
                }
                let mut lines = Vec::with_capacity(cart.state.lines.len());
                for (product_id, entry) in cart.state.lines.clone() {
                    let mut product = unit.load::<Product>(&product_id.to_string()).await?;
                    let Some(terms) = product.state.terms.clone() else {
                        return Err(AppError::conflict(
                            "product-unavailable",
                            format!("product {product_id} in the cart no longer exists"),
                        ));
                    };
                    unit.decide(
                        &mut product,
                        ProductCommand::Reserve {
                            order_id,
                            quantity: entry.quantity,
                        },
                    )
                    .await?;
                    let tracked = product.state.tracked();
                    lines.push(order_line(
                        product_id,
                        &terms,
                        entry.quantity,
                        dealer.as_ref(),
                        tracked,
                    ));
                }
                let mut total: Decimal = lines.iter().map(|l| l.line_total).sum();
                total.rescale(2);
                let placement = Placement {
                    number: order_number(order_id),
                    customer,
                    customer_id,
                    cart_id: cart_id.clone(),
                    delivery,
                    currency: cart.state.currency().unwrap_or("EUR").to_string(),
                    dealer: lines.iter().any(|l| l.rule.is_some()),
                    lines,
                    total,
                };
                unit.decide(&mut cart, CartCommand::CheckOut { order_id })
                    .await?;
                unit.decide(&mut order, OrderCommand::Place(Box::new(placement.clone())))
                    .await?;
                Ok((unit, placement))
            }
        })
        .await
}

// ---------------------------------------------------------------- orders

/// What an order command does to the stock it holds.
#[derive(Debug, Clone, Copy)]
enum StockEffect {
    None,
    Release,
    Dispatch,
}

/// One step of an order's life; the products whose stock it holds change
/// in the same commit when the step releases or dispatches it.
async fn order_step(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    command: OrderCommand,
    effect: StockEffect,
) -> Result<Done<()>, AppError> {
    p.commands
        .run(ctx, |mut unit: Unit| {
            let command = command.clone();
            async move {
                let mut order = unit.load_subject::<Order>(&id.to_string()).await?;
                unit.decide(&mut order, command).await?;
                let stock = match effect {
                    StockEffect::None => None,
                    StockEffect::Release => Some(ProductCommand::Release { order_id: id }),
                    StockEffect::Dispatch => Some(ProductCommand::Dispatch { order_id: id }),
                };
                if let Some(stock) = stock {
                    for product_id in order.state.reserved_products() {
                        let mut product = unit.load::<Product>(&product_id.to_string()).await?;
                        unit.decide(&mut product, stock.clone()).await?;
                    }
                }
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn record_payment(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    amount: Money,
    method: String,
    provider_payment_id: Option<String>,
) -> Result<Done<()>, AppError> {
    let command = OrderCommand::RecordPayment {
        amount,
        method,
        provider_payment_id,
    };
    order_step(p, ctx, id, command, StockEffect::None).await
}

pub async fn ship(p: &Platform, ctx: &CommandContext, id: Uuid) -> Result<Done<()>, AppError> {
    order_step(p, ctx, id, OrderCommand::Ship, StockEffect::Dispatch).await
}

pub async fn deliver(p: &Platform, ctx: &CommandContext, id: Uuid) -> Result<Done<()>, AppError> {
    order_step(p, ctx, id, OrderCommand::Deliver, StockEffect::None).await
}

pub async fn ready_for_pickup(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<Done<()>, AppError> {
    let command = OrderCommand::MarkReadyForPickup;
    order_step(p, ctx, id, command, StockEffect::Dispatch).await
}

pub async fn picked_up(p: &Platform, ctx: &CommandContext, id: Uuid) -> Result<Done<()>, AppError> {
    order_step(p, ctx, id, OrderCommand::MarkPickedUp, StockEffect::None).await
}

pub async fn cancel(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    reason: String,
) -> Result<Done<()>, AppError> {
    let command = OrderCommand::Cancel { reason };
    order_step(p, ctx, id, command, StockEffect::Release).await
}

pub async fn refund(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    amount: Money,
    reason: String,
) -> Result<Done<()>, AppError> {
    let command = OrderCommand::Refund { amount, reason };
    order_step(p, ctx, id, command, StockEffect::None).await
}

// ---------------------------------------------------------------- dealers

/// Files an application: the user's standing and the new application
/// change together, so a second one while one is in progress is refused.
pub async fn apply_for_dealer(
    p: &Platform,
    ctx: &CommandContext,
    me: &Principal,
    company: String,
    tax_id: String,
    message: String,
) -> Result<Done<()>, AppError> {
    let id = Uuid::now_v7();
    let form = ApplicationForm {
        user_id: me.user_id,
        company: company.trim().to_string(),
        tax_id: tax_id.trim().to_string(),
        message,
    };
    p.commands
        .run(ctx, |mut unit: Unit| {
            let form = form.clone();
            async move {
                let mut application = unit
                    .create_subject::<DealerApplication>(&id.to_string())
                    .await?;
                let mut standing = unit.load::<Dealer>(&form.user_id.to_string()).await?;
                unit.decide(&mut application, DealerApplicationCommand::Submit(form))
                    .await?;
                unit.decide(&mut standing, DealerCommand::File { application_id: id })
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// Who filed an application.
fn applicant(application: &DealerApplication) -> Result<Uuid, AppError> {
    application
        .form
        .as_ref()
        .map(|f| f.user_id)
        .ok_or_else(|| AppError::not_found("no such application"))
}

/// Approves an application: the application, the user's standing (the
/// discount with its provenance) and the `dealer` role, in one commit.
pub async fn approve_dealer(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    discount_percent: u8,
    approver: &Principal,
) -> Result<Done<()>, AppError> {
    let on: NaiveDate = p.today();
    let (by, by_name) = (approver.user_id, approver.username.clone());
    p.commands
        .run(ctx, |mut unit: Unit| {
            let by_name = by_name.clone();
            async move {
                let mut application = unit
                    .load_subject::<DealerApplication>(&id.to_string())
                    .await?;
                let user_id = applicant(&application.state)?;
                unit.decide(
                    &mut application,
                    DealerApplicationCommand::Approve {
                        discount_percent,
                        by,
                        by_name: by_name.clone(),
                        on,
                    },
                )
                .await?;
                let mut standing = unit.load::<Dealer>(&user_id.to_string()).await?;
                let terms = DealerTerms {
                    discount_percent,
                    application_id: id,
                    approved_on: on,
                    approved_by: by_name,
                };
                unit.decide(
                    &mut standing,
                    DealerCommand::Approve {
                        application_id: id,
                        terms,
                    },
                )
                .await?;
                let mut user = unit.load::<User>(&user_id.to_string()).await?;
                unit.decide(&mut user, UserCommand::GrantRole { role: Role::Dealer })
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

pub async fn reject_dealer(
    p: &Platform,
    ctx: &CommandContext,
    id: Uuid,
    reason: String,
    by: &Principal,
) -> Result<Done<()>, AppError> {
    let by = by.user_id;
    p.commands
        .run(ctx, |mut unit: Unit| {
            let reason = reason.clone();
            async move {
                let mut application = unit
                    .load_subject::<DealerApplication>(&id.to_string())
                    .await?;
                let user_id = applicant(&application.state)?;
                unit.decide(
                    &mut application,
                    DealerApplicationCommand::Reject { reason, by },
                )
                .await?;
                let mut standing = unit.load::<Dealer>(&user_id.to_string()).await?;
                unit.decide(&mut standing, DealerCommand::Reject { application_id: id })
                    .await?;
                Ok((unit, ()))
            }
        })
        .await
}

/// A shipping address or pickup, checked: every shipping field is required.
pub fn delivery(
    shipping: Option<Address>,
    pickup: Option<bool>,
) -> Result<Delivery, Vec<annals_domain::FieldError>> {
    use annals_domain::FieldError;
    match (shipping, pickup) {
        (Some(_), Some(true)) => Err(vec![FieldError::new(
            "pickup",
            "give either shipping or pickup, not both",
        )]),
        (None, Some(true)) => Ok(Delivery::Pickup),
        (None, _) => Err(vec![FieldError::new(
            "shipping",
            "give a shipping address, or \"pickup\": true",
        )]),
        (Some(address), _) => {
            let mut errors = Vec::new();
            let lines: Vec<String> = address
                .address_lines
                .iter()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            if lines.is_empty() || lines.len() > 4 || lines.iter().any(|l| l.chars().count() > 200)
            {
                errors.push(FieldError::new(
                    "shipping.address_lines",
                    "1 to 4 lines of at most 200 characters",
                ));
            }
            for (field, value, max) in [
                ("shipping.city", &address.city, 100),
                ("shipping.postal_code", &address.postal_code, 20),
                ("shipping.country", &address.country, 100),
            ] {
                if value.trim().is_empty() || value.chars().count() > max {
                    errors.push(FieldError::new(
                        field,
                        format!("must be 1 to {max} characters"),
                    ));
                }
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            Ok(Delivery::Shipping(Address {
                address_lines: lines,
                city: address.city.trim().to_string(),
                postal_code: address.postal_code.trim().to_string(),
                country: address.country.trim().to_string(),
            }))
        }
    }
}
