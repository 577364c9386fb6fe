-- The deadline sweep writes a thousand events and two thousand outbox rows at once; two
-- costs on those inserts go.
--
-- 1. The outbox's `x IN ('a', 'b', ...)` CHECKs: SQLite builds a lookup table for an IN
--    list each time a statement runs, once per row of an executemany, which made an outbox
--    insert twice as slow. The same checks written as comparisons cost next to nothing.
--    SQLite cannot change a CHECK in place: the table is rebuilt (its 12-step recipe).
CREATE TABLE outbox_rebuilt (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER REFERENCES cases(id),
    event_id        INTEGER REFERENCES events(id),
    recipient_kind  TEXT NOT NULL CHECK (recipient_kind = 'user' OR recipient_kind = 'dispatch'
                        OR recipient_kind = 'supervision' OR recipient_kind = 'leaders'
                        OR recipient_kind = 'unit'),
    recipient_ref   TEXT,                          -- user id or unit code
    message_key     TEXT NOT NULL,
    params          TEXT NOT NULL DEFAULT '{}',
    card_key        TEXT,                          -- set for cards that are edited in place
    state           TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    chat_id         INTEGER,
    message_id      INTEGER,
    error           TEXT
);
INSERT INTO outbox_rebuilt SELECT id, case_id, event_id, recipient_kind, recipient_ref,
    message_key, params, card_key, state, attempts, next_attempt_at, created_at, sent_at,
    chat_id, message_id, error FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_by_case ON outbox(case_id);
CREATE INDEX outbox_pending_by_recipient ON outbox(recipient_kind, recipient_ref, id)
    WHERE state = 'pending';

-- 2. events_by_kind: no query reads events by kind (reports count from the cases and
--    assignments tables; a case's timeline comes through events_by_case), and every
--    event paid for it.
DROP INDEX events_by_kind;
