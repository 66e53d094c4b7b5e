-- The token bill: generated tokens the grammar forced (jump-forward decoding appends them in
-- one batch instead of one decoding step each). Part of gen_tokens.
ALTER TABLE jobs ADD COLUMN forced_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN forced_tokens INTEGER NOT NULL DEFAULT 0;
