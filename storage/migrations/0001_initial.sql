-- Wenzheng schema, version 1. Times are INTEGER microseconds since the Unix epoch (UTC).

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,          -- Telegram user id
    first_name      TEXT,
    last_name       TEXT,
    username        TEXT,
    phone           TEXT,                         -- only when the citizen shared it
    language        TEXT,                         -- zh_Hans, zh_Hant or en
    language_chosen INTEGER NOT NULL DEFAULT 0,   -- chosen with /language: never overridden
    is_blocked      INTEGER NOT NULL DEFAULT 0,   -- the user blocked the bot
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE staff_roles (
    user_id    INTEGER NOT NULL REFERENCES users(id),
    role       TEXT NOT NULL CHECK (role IN ('admin', 'dispatcher', 'supervisor', 'leader')),
    granted_by INTEGER,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, role)
) WITHOUT ROWID;

CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    parent_code TEXT REFERENCES units(code),
    is_active   INTEGER NOT NULL DEFAULT 1,
    from_policy INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE liaisons (
    unit_code TEXT NOT NULL REFERENCES units(code),
    user_id   INTEGER NOT NULL REFERENCES users(id),
    added_by  INTEGER,
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (unit_code, user_id)
) WITHOUT ROWID;
CREATE INDEX liaisons_by_user ON liaisons(user_id);

-- Which group chat plays which part: 'dispatch', 'supervision', 'leaders' or 'unit:CODE'.
CREATE TABLE chat_bindings (
    binding      TEXT PRIMARY KEY,
    chat_id      INTEGER NOT NULL UNIQUE,
    purpose      TEXT NOT NULL CHECK (purpose IN ('dispatch', 'supervision', 'leaders', 'unit')),
    unit_code    TEXT REFERENCES units(code),
    title        TEXT,
    language     TEXT NOT NULL DEFAULT 'zh_Hans',
    is_reachable INTEGER NOT NULL DEFAULT 1,
    bound_by     INTEGER,
    bound_at     INTEGER NOT NULL,
    CHECK ((purpose = 'unit') = (unit_code IS NOT NULL))
);

CREATE TABLE join_codes (
    code        TEXT PRIMARY KEY,
    unit_code   TEXT NOT NULL REFERENCES units(code),
    issued_by   INTEGER,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    redeemed_by INTEGER,
    redeemed_at INTEGER
);

-- Case number sequences, one row per prefix and year; incremented inside the filing
-- transaction, so numbers are gap-free and never race.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cases (
    id               INTEGER PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,
    citizen_id       INTEGER NOT NULL REFERENCES users(id),
    category         TEXT NOT NULL,
    district         TEXT NOT NULL,
    text             TEXT NOT NULL,
    latitude         REAL,
    longitude        REAL,
    contact_shared   INTEGER NOT NULL DEFAULT 0,
    track            TEXT CHECK (track IN ('special', 'routine', 'coordinated', 'high_level')),
    state            TEXT NOT NULL CHECK (state IN
                        ('new', 'assigned', 'in_progress', 'answered', 'replied', 'closed', 'rejected')),
    round            INTEGER NOT NULL DEFAULT 1,
    lead_unit        TEXT REFERENCES units(code),
    filed_at         INTEGER NOT NULL,
    reject_reason    TEXT,
    reject_note      TEXT,
    duplicate_of     TEXT,
    returns_count    INTEGER NOT NULL DEFAULT 0,
    co_input_waived  INTEGER NOT NULL DEFAULT 0,
    published_at     INTEGER,
    callback_due     INTEGER,
    callback_reminded INTEGER NOT NULL DEFAULT 0,
    closed_at        INTEGER,
    close_reason     TEXT,
    escalation_level TEXT,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX cases_by_filed_at ON cases(filed_at);
CREATE INDEX cases_by_citizen ON cases(citizen_id, filed_at);
CREATE INDEX cases_open_by_state ON cases(state, category, district)
    WHERE state NOT IN ('closed', 'rejected');
CREATE INDEX cases_callback_due ON cases(callback_due) WHERE callback_due IS NOT NULL;

-- One unit's assignment on one round of a case, with its stages and on-time flags.
CREATE TABLE assignments (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER NOT NULL REFERENCES cases(id),
    unit_code       TEXT NOT NULL REFERENCES units(code),
    role            TEXT NOT NULL CHECK (role IN ('lead', 'co')),
    round           INTEGER NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                        ('assigned', 'signed', 'returned', 'reported', 'withdrawn')),
    assigned_at     INTEGER NOT NULL,
    sign_due        INTEGER,                      -- NULL on a reopened round (no sign stage)
    reply_due       INTEGER NOT NULL,
    resolve_due     INTEGER,
    signed_at       INTEGER,
    replied_at      INTEGER,
    resolved_at     INTEGER,
    sign_on_time    INTEGER,
    reply_on_time   INTEGER,
    resolve_on_time INTEGER,
    may_return      INTEGER NOT NULL DEFAULT 1,
    returns         INTEGER NOT NULL DEFAULT 0,
    paused_at       INTEGER,
    next_check_at   INTEGER,                      -- when the deadline sweep looks again
    chase_fired     TEXT NOT NULL DEFAULT '[]'    -- chase steps already taken (JSON list)
);
CREATE INDEX assignments_by_case ON assignments(case_id);
CREATE INDEX assignments_due ON assignments(next_check_at) WHERE next_check_at IS NOT NULL;
CREATE INDEX assignments_by_unit ON assignments(unit_code, assigned_at);
CREATE INDEX assignments_by_assigned_at ON assignments(assigned_at);

CREATE TABLE answers (
    id             INTEGER PRIMARY KEY,
    case_id        INTEGER NOT NULL REFERENCES cases(id),
    round          INTEGER NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('interim', 'final', 'input')),
    unit_code      TEXT NOT NULL REFERENCES units(code),
    author_id      INTEGER,
    text           TEXT NOT NULL,
    at             INTEGER NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('published', 'pending_review', 'sent_back', 'internal')),
    review_comment TEXT,
    attachments    TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX answers_by_case ON answers(case_id);

CREATE TABLE questions (
    id           INTEGER PRIMARY KEY,
    case_id      INTEGER NOT NULL REFERENCES cases(id),
    asked_by     INTEGER,
    unit_code    TEXT REFERENCES units(code),
    text         TEXT NOT NULL,
    asked_at     INTEGER NOT NULL,
    answer       TEXT,
    answered_at  INTEGER,
    pauses_clock INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX questions_by_case ON questions(case_id);

CREATE TABLE extensions (
    id           INTEGER PRIMARY KEY,
    case_id      INTEGER NOT NULL REFERENCES cases(id),
    unit_code    TEXT NOT NULL REFERENCES units(code),
    requested_by INTEGER,
    new_due      INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    decision     TEXT NOT NULL CHECK (decision IN ('pending', 'approved', 'denied')),
    decided_by   INTEGER,
    decided_at   INTEGER
);
CREATE INDEX extensions_by_case ON extensions(case_id);

CREATE TABLE ratings (
    id            INTEGER PRIMARY KEY,
    case_id       INTEGER NOT NULL REFERENCES cases(id),
    round         INTEGER NOT NULL,
    rating        TEXT NOT NULL CHECK (rating IN
                     ('satisfied', 'basically_satisfied', 'unsatisfied', 'not_rated')),
    unit_code     TEXT REFERENCES units(code),
    comment       TEXT,
    at            INTEGER NOT NULL,
    appeal        TEXT CHECK (appeal IN ('pending', 'approved', 'denied')),
    appeal_reason TEXT
);
CREATE INDEX ratings_by_case ON ratings(case_id);
CREATE INDEX ratings_by_at ON ratings(at);

CREATE TABLE attachments (
    id             INTEGER PRIMARY KEY,
    case_id        INTEGER NOT NULL REFERENCES cases(id),
    kind           TEXT NOT NULL,                 -- photo, document, voice, video
    file_id        TEXT NOT NULL,
    file_unique_id TEXT,
    file_name      TEXT,
    mime_type      TEXT,
    size           INTEGER,
    added_at       INTEGER NOT NULL
);
CREATE INDEX attachments_by_case ON attachments(case_id);

-- The timeline: append-only, enforced by the triggers below.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    case_id    INTEGER REFERENCES cases(id),
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   INTEGER,
    actor_role TEXT NOT NULL,
    unit_code  TEXT,
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_case ON events(case_id, id);
CREATE INDEX events_by_kind ON events(kind, at);
CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

-- Messages a state change causes, written in the same transaction and drained by the
-- sender. Rendered at send time in the recipient's language from key + params.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER REFERENCES cases(id),
    event_id        INTEGER REFERENCES events(id),
    recipient_kind  TEXT NOT NULL CHECK (recipient_kind IN
                        ('user', 'dispatch', 'supervision', 'leaders', 'unit')),
    recipient_ref   TEXT,                          -- user id or unit code
    message_key     TEXT NOT NULL,
    params          TEXT NOT NULL DEFAULT '{}',
    card_key        TEXT,                          -- set for cards that are edited in place
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    chat_id         INTEGER,
    message_id      INTEGER,
    error           TEXT
);
CREATE INDEX outbox_pending ON outbox(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_by_case ON outbox(case_id);

-- The message that shows a card, so later changes edit it in place.
CREATE TABLE cards (
    card_key   TEXT PRIMARY KEY,
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Telegram update ids already handled: a redelivered update changes nothing twice.
CREATE TABLE processed_updates (
    update_id    INTEGER PRIMARY KEY,
    processed_at INTEGER NOT NULL
);
