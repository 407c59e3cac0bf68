-- Read models of marketing: campaigns, leads, contracts, customers, the
-- uploaded files, and the facts the campaign statistics fold (each with
-- the instant it was recorded, so the figures can be asked "as known at").

CREATE TABLE campaigns (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    status     text NOT NULL,
    planned_at text NOT NULL,
    state      text NOT NULL,
    version    bigint NOT NULL
);

CREATE TABLE leads (
    id          text PRIMARY KEY,
    full_name   text NOT NULL,
    phone       text,
    email       text,
    campaign_id text,
    status      text NOT NULL,
    assigned_to text,
    created_at  text NOT NULL,
    state       text NOT NULL,
    version     bigint NOT NULL
);
CREATE INDEX leads_status ON leads (status, created_at);

CREATE TABLE contracts (
    id          text PRIMARY KEY,
    customer_id text NOT NULL,
    lead_id     text,
    file_id     text NOT NULL,
    signed_on   text NOT NULL,
    recorded_at text NOT NULL,
    terms       text NOT NULL
);

CREATE TABLE customers (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    email      text,
    phone      text,
    lead_id    text,
    created_at text NOT NULL,
    state      text NOT NULL,
    version    bigint NOT NULL
);

CREATE TABLE files (
    id           text PRIMARY KEY,
    sha256       text NOT NULL,
    size         bigint NOT NULL,
    content_type text NOT NULL,
    name         text NOT NULL,
    uploaded_by  text NOT NULL,
    uploaded_at  text NOT NULL,
    owner_kind   text,
    owner_id     text
);

-- kind: lead_created, lead_started, lead_lost, lead_reopened,
-- lead_converted, spend, contract. on_date: the business date of a spend
-- entry or a contract's signing (lead facts use recorded_at).
CREATE TABLE campaign_facts (
    id          text PRIMARY KEY,
    kind        text NOT NULL,
    campaign_id text,
    lead_id     text,
    on_date     text,
    amount      text,
    currency    text,
    recorded_at text NOT NULL
);
CREATE INDEX campaign_facts_recorded ON campaign_facts (recorded_at);
