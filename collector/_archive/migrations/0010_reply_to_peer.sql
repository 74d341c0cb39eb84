-- stepwise
-- 0010: replies to a message in another chat (issue 17, item 6). Additive only, NULL for every archived row.
-- Until now a reply whose header names another chat (`reply_to_peer_id` in Telegram's MessageReplyHeader, the
-- same key in a Desktop export) lost the reply entirely: `reply_to_message_id` keeps its meaning (a post of the
-- same channel) and stayed NULL. These two columns keep the other chat's post:
--   reply_to_peer_id          the bare channel id of the chat replied to (a channel or a supergroup); NULL when
--                             the post is no cross-chat reply, and for a reply to a private chat or a basic
--                             group (a person or a small group: its id is not kept, as for forward origins)
--   reply_to_peer_message_id  the id of the message replied to, in that chat (set for every cross-chat reply)
-- Stepwise, through the runner's big-table helper (collector/_archive/big_alter.py): inside the archive's
-- memory cap on archives of any size (issue 14, item 4).
ALTER TABLE posts ADD COLUMN IF NOT EXISTS reply_to_peer_id BIGINT;
ALTER TABLE posts ADD COLUMN IF NOT EXISTS reply_to_peer_message_id BIGINT;
