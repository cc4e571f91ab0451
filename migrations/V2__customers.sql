-- Customers without the operator: sign-in links for "my orders", and the outbox's sending.

-- A link that shows a customer all their orders. Only the SHA-256 of its token is kept; the
-- token itself lives in the email row that carries it until that email is sent (below).
CREATE TABLE sign_in_links (
    token_sha256  TEXT PRIMARY KEY,
    customer_id   INTEGER NOT NULL REFERENCES customers (id),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    CHECK (expires_at > created_at)
) STRICT;

CREATE INDEX sign_in_links_customer ON sign_in_links (customer_id, created_at);

-- The sign-in link a queued email carries; cleared when the email is sent or given up.
ALTER TABLE emails ADD COLUMN link_token TEXT;
