-- Conversation state and per-user scratch data (drafts of a filing), so a citizen halfway
-- through /new can go on after the bot restarts.

CREATE TABLE conversations (
    name  TEXT NOT NULL,
    key   TEXT NOT NULL,          -- JSON of PTB's conversation key (chat id, user id)
    state TEXT NOT NULL,          -- JSON of the state
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (name, key)
) WITHOUT ROWID;

CREATE TABLE user_sessions (
    user_id    INTEGER PRIMARY KEY,
    data       TEXT NOT NULL,     -- JSON
    updated_at INTEGER NOT NULL
);

-- The sender keeps each chat's messages in order: it must see a recipient's oldest
-- pending row cheaply.
CREATE INDEX outbox_pending_by_recipient ON outbox(recipient_kind, recipient_ref, id)
    WHERE state = 'pending';
