-- A `message.created` event no longer keeps a copy of its message: its row names the message by
-- `message_seq` (in the event's conversation) with an empty `data`, and reading events joins the
-- message back (`read::events_since`). The copy was a third of the bytes a message took on disk.
-- Rows written before keep their copy (`message_seq` NULL) and read as before. Messages are never
-- changed once stored, and erasing a conversation removes its events with its messages.
ALTER TABLE events ADD COLUMN message_seq INTEGER;
