-- Read models of the appointments domain. Times are RFC 3339 UTC text
-- ("2026-05-04T10:00:00Z"), which sorts in time order.

CREATE TABLE service_categories (
    id      text PRIMARY KEY,
    name    text NOT NULL,
    version integer NOT NULL
);

CREATE TABLE services (
    id                    text PRIMARY KEY,
    name                  text NOT NULL,
    description           text NOT NULL,
    category_id           text NOT NULL,
    duration_minutes      integer NOT NULL,
    price                 text NOT NULL,
    currency              text NOT NULL,
    buffer_before_minutes integer NOT NULL,
    buffer_after_minutes  integer NOT NULL,
    image_url             text,
    active                integer NOT NULL,
    version               integer NOT NULL
);

-- The whole master state as JSON (the availability rules read it), plus
-- ",id,id," of the services for filtering.
CREATE TABLE masters (
    id          text PRIMARY KEY,
    time_zone   text NOT NULL,
    service_ids text NOT NULL,
    state       text NOT NULL,
    version     integer NOT NULL
);

CREATE TABLE appointments (
    id                    text PRIMARY KEY,
    client_id             text NOT NULL,
    master_id             text NOT NULL,
    service_id            text NOT NULL,
    start_at              text NOT NULL,
    end_at                text NOT NULL,
    block_start           text NOT NULL,
    block_end             text NOT NULL,
    status                text NOT NULL,
    price                 text NOT NULL,
    currency              text NOT NULL,
    buffer_before_minutes integer NOT NULL,
    buffer_after_minutes  integer NOT NULL,
    note                  text,
    booked_at             text NOT NULL,
    version               integer NOT NULL
);
CREATE INDEX appointments_master_time ON appointments (master_id, start_at);
CREATE INDEX appointments_client_time ON appointments (client_id, start_at);
