-- Read models of invoices and scheduled messages (their folded state, and
-- the columns lists and the message sender look them up by).

CREATE TABLE invoices (
    id          text PRIMARY KEY,
    customer_id text NOT NULL,
    number      text NOT NULL,
    status      text NOT NULL,
    issue_date  text NOT NULL,
    due_date    text NOT NULL,
    state       text NOT NULL,
    version     bigint NOT NULL
);
CREATE INDEX invoices_customer ON invoices (customer_id, issue_date);

CREATE TABLE scheduled_messages (
    id           text PRIMARY KEY,
    customer_id  text NOT NULL,
    channel      text NOT NULL,
    status       text NOT NULL,
    scheduled_at text NOT NULL,
    due_at       text NOT NULL,
    acknowledged bigint NOT NULL,
    state        text NOT NULL,
    version      bigint NOT NULL
);
CREATE INDEX scheduled_messages_due ON scheduled_messages (status, due_at);
CREATE INDEX scheduled_messages_customer ON scheduled_messages (customer_id, scheduled_at);
