-- Read models of client projects and the portal around them: each row the
-- folded state (with the times of its changes) and the columns it is
-- listed, filtered and found by.

CREATE TABLE projects (
    id             text PRIMARY KEY,
    client_id      text NOT NULL,
    status         text NOT NULL,
    working_status text NOT NULL,
    deadline       text NOT NULL,
    requested_at   text NOT NULL,
    ready_at       text NOT NULL,
    state          text NOT NULL,
    version        bigint NOT NULL
);
CREATE INDEX projects_client ON projects (client_id, requested_at);
CREATE INDEX projects_queue ON projects (status, deadline);

CREATE TABLE project_feedback (
    id           text PRIMARY KEY,
    client_id    text NOT NULL,
    handled      bigint NOT NULL,
    submitted_at text NOT NULL,
    state        text NOT NULL,
    version      bigint NOT NULL
);
CREATE INDEX project_feedback_client ON project_feedback (client_id, submitted_at);

CREATE TABLE client_messages (
    id        text PRIMARY KEY,
    client_id text NOT NULL,
    topic     text NOT NULL,
    is_read   bigint NOT NULL,
    sent_at   text NOT NULL,
    state     text NOT NULL,
    version   bigint NOT NULL
);
CREATE INDEX client_messages_client ON client_messages (client_id, sent_at);

CREATE TABLE roadmap_products (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    status     text NOT NULL,
    interested bigint NOT NULL,
    state      text NOT NULL,
    version    bigint NOT NULL
);
