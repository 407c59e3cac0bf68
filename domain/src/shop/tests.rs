//! Given events, when a command, then events or the broken rule.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::cart::{self, Cart, CartCommand, CartError, CartEvent};
use super::dealer::{self, *};
use super::order::{self, *};
use super::pricing::{unit_price, DealerTerms};
use super::product::{self, *};
use super::sku::{self, SkuClaim, SkuCommand, SkuError, SkuEvent};
use crate::values::Money;

fn money(amount: &str) -> Money {
    Money::parse("amount", amount, "EUR").unwrap()
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn terms(track_stock: bool) -> ProductTerms {
    ProductTerms {
        name: "Brake pads".into(),
        description: "Front axle".into(),
        sku: "BP-100".into(),
        category_id: Uuid::nil(),
        price: money("49.90"),
        images: vec![],
        new_arrival: None,
        track_stock,
        universal: false,
        fitment: vec![Fitment {
            make: "Volvo".into(),
            model: "V70".into(),
            year_from: 2008,
            year_to: 2016,
            qualifier: None,
        }],
    }
}

fn product_given(events: &[ProductEvent]) -> Product {
    let mut state = Product::default();
    events.iter().for_each(|e| product::evolve(&mut state, e));
    state
}

fn stocked(on_hand: u32) -> Product {
    product_given(&[
        ProductEvent::Created { terms: terms(true) },
        ProductEvent::StockReceived { quantity: on_hand },
    ])
}

#[test]
fn a_reservation_beyond_what_is_available_is_out_of_stock() {
    let order = Uuid::now_v7();
    let one_left = stocked(1);
    let reserved = product::decide(
        &one_left,
        ProductCommand::Reserve {
            order_id: order,
            quantity: 1,
        },
    )
    .unwrap();
    assert_eq!(
        reserved,
        vec![ProductEvent::StockReserved {
            order_id: order,
            quantity: 1
        }]
    );
    let mut none_left = one_left.clone();
    product::evolve(&mut none_left, &reserved[0]);
    assert_eq!(none_left.stock.available(), 0);
    assert_eq!(
        product::decide(
            &none_left,
            ProductCommand::Reserve {
                order_id: Uuid::now_v7(),
                quantity: 1
            }
        ),
        Err(ProductError::OutOfStock {
            name: "Brake pads".into(),
            available: 0,
            wanted: 1
        })
    );
}

#[test]
fn an_untracked_product_reserves_nothing_and_an_inactive_one_is_not_sold() {
    let untracked = product_given(&[ProductEvent::Created {
        terms: terms(false),
    }]);
    let reserve = ProductCommand::Reserve {
        order_id: Uuid::now_v7(),
        quantity: 999,
    };
    assert_eq!(product::decide(&untracked, reserve.clone()), Ok(vec![]));
    let inactive = product_given(&[
        ProductEvent::Created {
            terms: terms(false),
        },
        ProductEvent::Deactivated,
    ]);
    assert!(matches!(
        product::decide(&inactive, reserve),
        Err(ProductError::Inactive { .. })
    ));
}

#[test]
fn a_cancelled_order_gives_its_units_back_and_a_dispatched_one_takes_them_off_hand() {
    let order = Uuid::now_v7();
    let held = product_given(&[
        ProductEvent::Created { terms: terms(true) },
        ProductEvent::StockReceived { quantity: 5 },
        ProductEvent::StockReserved {
            order_id: order,
            quantity: 2,
        },
    ]);
    let released = product::decide(&held, ProductCommand::Release { order_id: order }).unwrap();
    assert_eq!(
        released,
        vec![ProductEvent::StockReleased {
            order_id: order,
            quantity: 2
        }]
    );
    let mut back = held.clone();
    product::evolve(&mut back, &released[0]);
    assert_eq!((back.stock.on_hand, back.stock.available()), (5, 5));
    assert_eq!(
        product::decide(&back, ProductCommand::Release { order_id: order }),
        Ok(vec![]),
        "released once"
    );
    let dispatched = product::decide(&held, ProductCommand::Dispatch { order_id: order }).unwrap();
    let mut gone = held.clone();
    product::evolve(&mut gone, &dispatched[0]);
    assert_eq!((gone.stock.on_hand, gone.stock.reserved), (3, 0));
}

#[test]
fn stock_cannot_be_counted_below_what_orders_hold_nor_moved_when_untracked() {
    let held = product_given(&[
        ProductEvent::Created { terms: terms(true) },
        ProductEvent::StockReceived { quantity: 5 },
        ProductEvent::StockReserved {
            order_id: Uuid::now_v7(),
            quantity: 3,
        },
    ]);
    let correct = |on_hand| ProductCommand::Correct {
        on_hand,
        reason: "count".into(),
    };
    assert_eq!(
        product::decide(&held, correct(2)),
        Err(ProductError::BelowReserved { reserved: 3 })
    );
    assert_eq!(
        product::decide(&held, correct(4)).unwrap(),
        vec![ProductEvent::StockCorrected {
            on_hand: 4,
            previous: 5,
            reason: "count".into()
        }]
    );
    let untracked = product_given(&[ProductEvent::Created {
        terms: terms(false),
    }]);
    assert_eq!(
        product::decide(&untracked, ProductCommand::Receive { quantity: 1 }),
        Err(ProductError::NotTracked)
    );
}

#[test]
fn product_terms_name_every_bad_field() {
    let mut bad = terms(true);
    bad.sku = "no spaces".into();
    bad.fitment[0].year_from = 2020;
    bad.fitment[0].year_to = 1800;
    let Err(ProductError::Invalid(fields)) =
        product::decide(&Product::default(), ProductCommand::Create { terms: bad })
    else {
        panic!("expected invalid");
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, ["sku", "fitment[0].year_to", "fitment[0].year_to"]);
}

#[test]
fn a_sku_belongs_to_one_product() {
    let first = Uuid::now_v7();
    let mut claim = SkuClaim::default();
    let claimed = sku::decide(&claim, SkuCommand::Claim { product_id: first }).unwrap();
    sku::evolve(&mut claim, &claimed[0]);
    assert_eq!(
        sku::decide(&claim, SkuCommand::Claim { product_id: first }),
        Ok(vec![])
    );
    let second = Uuid::now_v7();
    assert_eq!(
        sku::decide(&claim, SkuCommand::Claim { product_id: second }),
        Err(SkuError::Taken { holder: first })
    );
    let released = sku::decide(&claim, SkuCommand::Release { product_id: first }).unwrap();
    assert_eq!(released, vec![SkuEvent::Released { product_id: first }]);
    sku::evolve(&mut claim, &released[0]);
    assert!(sku::decide(&claim, SkuCommand::Claim { product_id: second }).is_ok());
}

fn cart_given(events: &[CartEvent]) -> Cart {
    let mut state = Cart::default();
    events.iter().for_each(|e| cart::evolve(&mut state, e));
    state
}

#[test]
fn a_cart_holds_1_to_999_of_a_product_in_one_currency() {
    let pads = Uuid::now_v7();
    let open = cart_given(&[
        CartEvent::Opened { owner: None },
        CartEvent::ItemAdded {
            product_id: pads,
            quantity: 990,
            currency: "EUR".into(),
        },
    ]);
    let add = |quantity, currency: &str| CartCommand::Add {
        product_id: pads,
        quantity,
        currency: currency.into(),
    };
    assert!(cart::decide(&open, add(9, "EUR")).is_ok());
    assert_eq!(
        cart::decide(&open, add(10, "EUR")),
        Err(CartError::Quantity { in_cart: 990 })
    );
    assert_eq!(
        cart::decide(&open, add(0, "EUR")),
        Err(CartError::Quantity { in_cart: 990 })
    );
    assert!(matches!(
        cart::decide(&open, add(1, "USD")),
        Err(CartError::MixedCurrencies { .. })
    ));
    assert_eq!(
        cart::decide(&Cart::default(), add(1, "EUR")),
        Err(CartError::NotFound)
    );
}

#[test]
fn checking_out_empties_the_cart_and_an_empty_one_is_refused() {
    let order = Uuid::now_v7();
    let mut full = cart_given(&[
        CartEvent::Opened { owner: None },
        CartEvent::ItemAdded {
            product_id: Uuid::now_v7(),
            quantity: 2,
            currency: "EUR".into(),
        },
    ]);
    let out = cart::decide(&full, CartCommand::CheckOut { order_id: order }).unwrap();
    assert_eq!(out, vec![CartEvent::CheckedOut { order_id: order }]);
    cart::evolve(&mut full, &out[0]);
    assert!(full.lines.is_empty());
    assert_eq!(
        cart::decide(&full, CartCommand::CheckOut { order_id: order }),
        Err(CartError::Empty)
    );
}

fn placement(delivery: Delivery, total: &str) -> Placement {
    Placement {
        number: "A1".into(),
        customer: Customer {
            name: "Ada".into(),
            phone: "+441234567890".into(),
            email: "ada@example.com".into(),
        },
        customer_id: None,
        cart_id: "cart".into(),
        delivery,
        lines: vec![],
        currency: "EUR".into(),
        total: dec(total),
        dealer: false,
    }
}

fn placed(delivery: Delivery, total: &str) -> OrderEvent {
    OrderEvent::Placed(Box::new(placement(delivery, total)))
}

fn order_given(events: &[OrderEvent]) -> Order {
    let mut state = Order::default();
    events.iter().for_each(|e| order::evolve(&mut state, e));
    state
}

fn pay(amount: &str, provider: Option<&str>) -> OrderCommand {
    OrderCommand::RecordPayment {
        amount: money(amount),
        method: "card".into(),
        provider_payment_id: provider.map(str::to_string),
    }
}

#[test]
fn payments_add_up_to_paid_and_never_beyond_the_total() {
    let placed = order_given(&[placed(Delivery::Pickup, "100.00")]);
    let part = order::decide(&placed, pay("40", Some("p1"))).unwrap();
    assert_eq!(part.len(), 1, "partly paid: still placed");
    let mut state = placed.clone();
    part.iter().for_each(|e| order::evolve(&mut state, e));
    assert_eq!(
        order::decide(&state, pay("60.01", None)),
        Err(OrderError::Overpayment {
            outstanding: dec("60.00"),
            currency: "EUR".into()
        })
    );
    assert_eq!(
        order::decide(&state, pay("40", Some("p1"))),
        Ok(vec![]),
        "the provider's payment p1 is recorded once"
    );
    let rest = order::decide(&state, pay("60", Some("p2"))).unwrap();
    assert_eq!(
        rest[1],
        OrderEvent::Paid {
            paid: dec("100.00")
        }
    );
    rest.iter().for_each(|e| order::evolve(&mut state, e));
    assert_eq!(state.status, Some(Status::Paid));
}

#[test]
fn a_transition_from_the_wrong_state_names_the_current_one() {
    let shipped = order_given(&[
        placed(
            Delivery::Shipping(Address {
                address_lines: vec!["1 Main St".into()],
                city: "Oslo".into(),
                postal_code: "0150".into(),
                country: "NO".into(),
            }),
            "10",
        ),
        OrderEvent::PaymentRecorded {
            amount: dec("10"),
            currency: "EUR".into(),
            method: "card".into(),
            provider_payment_id: None,
        },
        OrderEvent::Paid { paid: dec("10") },
        OrderEvent::Shipped,
    ]);
    let refused = order::decide(
        &shipped,
        OrderCommand::Cancel {
            reason: "changed my mind".into(),
        },
    )
    .unwrap_err();
    assert_eq!(
        refused,
        OrderError::InvalidTransition {
            current: Status::Shipped,
            action: "cancelled"
        }
    );
    assert_eq!(
        refused.to_string(),
        "the order is shipped: it cannot be cancelled"
    );
    assert!(matches!(
        order::decide(&shipped, OrderCommand::MarkReadyForPickup),
        Err(OrderError::WrongDelivery { .. })
    ));
    assert_eq!(
        order::decide(&shipped, OrderCommand::Deliver),
        Ok(vec![OrderEvent::Delivered])
    );
}

#[test]
fn refunds_never_exceed_what_was_paid_and_a_full_refund_is_refunded() {
    let paid = order_given(&[
        placed(Delivery::Pickup, "50"),
        OrderEvent::PaymentRecorded {
            amount: dec("50"),
            currency: "EUR".into(),
            method: "cash".into(),
            provider_payment_id: None,
        },
        OrderEvent::Paid { paid: dec("50") },
    ]);
    let refund = |amount| OrderCommand::Refund {
        amount: money(amount),
        reason: "scratched".into(),
    };
    let part = order::decide(&paid, refund("20")).unwrap();
    let mut state = paid.clone();
    order::evolve(&mut state, &part[0]);
    assert_eq!(state.status, Some(Status::Paid), "a partial refund");
    assert_eq!(
        order::decide(&state, refund("30.01")),
        Err(OrderError::RefundTooLarge {
            refundable: dec("30"),
            currency: "EUR".into()
        })
    );
    let rest = order::decide(&state, refund("30")).unwrap();
    order::evolve(&mut state, &rest[0]);
    assert_eq!(state.status, Some(Status::Refunded));
    let placed = order_given(&[placed(Delivery::Pickup, "50")]);
    assert!(matches!(
        order::decide(&placed, refund("1")),
        Err(OrderError::InvalidTransition { .. })
    ));
}

fn dealer_terms(percent: u8) -> DealerTerms {
    DealerTerms {
        discount_percent: percent,
        application_id: Uuid::nil(),
        approved_on: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
        approved_by: "boss".into(),
    }
}

#[test]
fn a_second_application_while_one_is_in_progress_is_refused() {
    let first = Uuid::now_v7();
    let mut standing = Dealer::default();
    let filed = dealer::decide_standing(
        &standing,
        DealerCommand::File {
            application_id: first,
        },
    )
    .unwrap();
    dealer::evolve_standing(&mut standing, &filed[0]);
    assert_eq!(
        dealer::decide_standing(
            &standing,
            DealerCommand::File {
                application_id: Uuid::now_v7()
            }
        ),
        Err(DealerError::InProgress {
            application_id: first
        })
    );
    let granted = dealer::decide_standing(
        &standing,
        DealerCommand::Approve {
            application_id: first,
            terms: dealer_terms(12),
        },
    )
    .unwrap();
    dealer::evolve_standing(&mut standing, &granted[0]);
    assert_eq!(standing.status, DealerStatus::Approved);
    assert_eq!(standing.terms, Some(dealer_terms(12)));
    assert!(matches!(
        dealer::decide_standing(
            &standing,
            DealerCommand::File {
                application_id: Uuid::now_v7()
            }
        ),
        Err(DealerError::AlreadyDealer { .. })
    ));
}

#[test]
fn an_application_is_decided_once_with_a_discount_of_at_most_half() {
    let mut application = DealerApplication::default();
    let form = ApplicationForm {
        user_id: Uuid::now_v7(),
        company: "Parts AS".into(),
        tax_id: "NO123".into(),
        message: String::new(),
    };
    let submitted =
        dealer::decide_application(&application, DealerApplicationCommand::Submit(form)).unwrap();
    dealer::evolve_application(&mut application, &submitted[0]);
    let approve = |discount_percent| DealerApplicationCommand::Approve {
        discount_percent,
        by: Uuid::nil(),
        by_name: "boss".into(),
        on: NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
    };
    assert!(matches!(
        dealer::decide_application(&application, approve(51)),
        Err(DealerError::Invalid(_))
    ));
    let approved = dealer::decide_application(&application, approve(50)).unwrap();
    dealer::evolve_application(&mut application, &approved[0]);
    assert_eq!(
        dealer::decide_application(&application, approve(10)),
        Err(DealerError::Decided {
            current: DealerStatus::Approved
        })
    );
}

#[test]
fn a_dealer_price_says_which_rule_made_it() {
    let (price, rule) = unit_price(dec("49.90"), Some(&dealer_terms(12)));
    assert_eq!(price.to_string(), "43.91");
    let rule = rule.unwrap();
    assert!(rule.text.starts_with("dealer discount 12% — application #"));
    assert!(rule.text.ends_with("approved 2026-11-03 by boss"));
    assert_eq!(unit_price(dec("49.90"), None), (dec("49.90"), None));
    assert_eq!(unit_price(dec("49.90"), Some(&dealer_terms(0))).1, None);
}

#[test]
fn erasing_an_order_leaves_no_buyer_text_but_keeps_the_order() {
    let shipped = Delivery::Shipping(Address {
        address_lines: vec!["1 Main St".into(), "Flat 2".into()],
        city: "Oslo".into(),
        postal_code: "0150".into(),
        country: "NO".into(),
    });
    let before = order_given(&[placed(shipped, "10")]);
    let events = order::decide(&before, OrderCommand::ErasePersonalData).unwrap();
    assert_eq!(events, vec![OrderEvent::PersonalDataErased]);
    let after = order_given(&[
        placed(before.placement.clone().unwrap().delivery, "10"),
        events[0].clone(),
    ]);
    let placement = after.placement.as_ref().unwrap();
    let erased = crate::user::ERASED.to_string();
    assert_eq!(
        (
            &placement.customer.name,
            &placement.customer.phone,
            &placement.customer.email
        ),
        (&erased, &erased, &erased)
    );
    let Delivery::Shipping(address) = &placement.delivery else {
        panic!("still shipped");
    };
    assert_eq!(
        address.address_lines,
        [erased.clone(), erased.clone()],
        "one per line"
    );
    assert_eq!(
        (&address.city, &address.postal_code, &address.country),
        (&erased, &erased, &erased)
    );
    assert_eq!(
        (after.status, &placement.total),
        (before.status, &dec("10"))
    );
    assert_eq!(
        order::decide(&Order::default(), OrderCommand::ErasePersonalData),
        Err(OrderError::NotFound)
    );
}
