-- Read models of groups and trainings (a training's invitations are in
-- its folded state, JSON).

CREATE TABLE training_groups (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    coach_id   text NOT NULL,
    capacity   integer NOT NULL,
    member_ids text NOT NULL,
    version    integer NOT NULL
);

CREATE TABLE trainings (
    id       text PRIMARY KEY,
    group_id text,
    coach_id text NOT NULL,
    start_at text NOT NULL,
    state    text NOT NULL,
    version  integer NOT NULL
);
CREATE INDEX trainings_start ON trainings (start_at);
