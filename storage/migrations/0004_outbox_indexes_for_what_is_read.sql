-- The outbox's indexes for the reads the bot makes, and none for reads it never makes.
--
-- 1. outbox_by_case: no query reads the outbox by case (a case's history comes from its
--    events) and cases are never deleted, so the foreign key needs no index either; yet
--    every row paid for it, the deadline sweep's thousand at once, in an index as large
--    as the outbox.
DROP INDEX outbox_by_case;

-- 2. A citizen's reply to the bot's question (Telegram's "reply to") is matched to its
--    case by the message it answers; that read scanned the whole outbox, which keeps
--    every message ever sent. Only questions are looked up, so only they are indexed.
CREATE INDEX outbox_questions_by_message ON outbox(chat_id, message_id)
    WHERE message_key = 'citizen.question' OR message_key = 'citizen.contact';
