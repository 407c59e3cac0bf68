-- Read models of the shop: the product catalog with fitment and stock,
-- orders and the dealer program. Money is decimal text ("49.90");
-- times are RFC 3339 UTC text, which sorts in time order.

CREATE TABLE product_categories (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    version bigint NOT NULL
);

CREATE TABLE products (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL,
    sku         text NOT NULL,
    category_id text NOT NULL,
    price       text NOT NULL,
    currency    text NOT NULL,
    images      text NOT NULL,   -- JSON array of URLs
    active      bigint NOT NULL,
    new_arrival text,            -- YYYY-MM-DD
    track_stock bigint NOT NULL,
    on_hand     bigint NOT NULL,
    reserved    bigint NOT NULL,
    universal   bigint NOT NULL,
    fitment     text NOT NULL,   -- JSON array, as given
    version     bigint NOT NULL
);
CREATE INDEX products_category ON products (category_id);

-- One row per vehicle a product fits; make and model lower-cased.
CREATE TABLE product_fitment (
    product_id text NOT NULL,
    make       text NOT NULL,
    model      text NOT NULL,
    year_from  bigint NOT NULL,
    year_to    bigint NOT NULL
);
CREATE INDEX product_fitment_vehicle ON product_fitment (make, model);
CREATE INDEX product_fitment_product ON product_fitment (product_id);

CREATE TABLE orders (
    id            text PRIMARY KEY,
    number        text NOT NULL,
    status        text NOT NULL,
    customer_id   text,
    customer_name text NOT NULL,
    email         text NOT NULL,
    email_key     text NOT NULL, -- lower-cased
    phone         text NOT NULL,
    delivery      text NOT NULL, -- JSON
    lines         text NOT NULL, -- JSON, as placed
    total         text NOT NULL,
    currency      text NOT NULL,
    paid          text NOT NULL,
    refunded      text NOT NULL,
    dealer        bigint NOT NULL,
    placed_at     text NOT NULL,
    paid_at       text,
    version       bigint NOT NULL
);
CREATE INDEX orders_placed ON orders (placed_at);
CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_email ON orders (email_key);

CREATE TABLE dealer_applications (
    id               text PRIMARY KEY,
    user_id          text NOT NULL,
    company          text NOT NULL,
    tax_id           text NOT NULL,
    message          text NOT NULL,
    status           text NOT NULL,
    discount_percent bigint,
    reason           text,
    decided_by       text,
    submitted_at     text NOT NULL,
    decided_at       text,
    version          bigint NOT NULL
);
CREATE INDEX dealer_applications_user ON dealer_applications (user_id, submitted_at);

-- A user's standing in the dealer program; `terms` is the discount in
-- force with its provenance (JSON), when approved.
CREATE TABLE dealers (
    id             text PRIMARY KEY,
    status         text NOT NULL,
    application_id text,
    terms          text,
    version        bigint NOT NULL
);
