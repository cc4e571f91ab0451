-- The consultant's review: with `[delivery] review = true` a written report waits in
-- `awaiting_review` until the operator approves it, has it written again with a note, or edits
-- it. The orders table is rebuilt for the new status (SQLite cannot change a CHECK in place; see
-- V7 for the procedure), and gains when the report began to wait, how long it waited before (so
-- the refund window's clock stops while it waits), and the note for the rewrite.
PRAGMA legacy_alter_table = ON;
ALTER TABLE orders RENAME TO orders_v7;
CREATE TABLE orders (
    id                    TEXT PRIMARY KEY,    -- UUID v7: sortable, never reused after a restore
    customer_id           INTEGER NOT NULL REFERENCES customers (id),
    company               TEXT NOT NULL,
    tier                  TEXT NOT NULL CHECK (length(tier) BETWEEN 1 AND 40),
    amount_cents          INTEGER NOT NULL CHECK (amount_cents > 0),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    status                TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'generating',
                              'completed', 'failed', 'refund_requested', 'refunding', 'refunded',
                              'expired', 'disputed', 'awaiting_review')),
    questionnaire         TEXT NOT NULL CHECK (json_valid(questionnaire)),
    status_token          TEXT NOT NULL UNIQUE, -- the customer's only key to the status page
    attempts              INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at       INTEGER,
    lease_owner           TEXT,
    lease_expires_at      INTEGER,
    refunded_cents        INTEGER NOT NULL DEFAULT 0,
    downloads             INTEGER NOT NULL DEFAULT 0,
    last_downloaded_at    INTEGER,
    disputed_from         TEXT,
    last_error            TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    paid_at               INTEGER,
    completed_at          INTEGER,
    erased_at             INTEGER,
    score                 INTEGER,
    lease_tried           INTEGER NOT NULL DEFAULT 0 CHECK (lease_tried IN (0, 1)),
    rescues               INTEGER NOT NULL DEFAULT 0 CHECK (rescues >= 0),
    method_version        TEXT REFERENCES method_versions (version),
    review_since          INTEGER,             -- a written report waits for the consultant
    reviewed_secs         INTEGER NOT NULL DEFAULT 0 CHECK (reviewed_secs >= 0),
    review_note           TEXT,                -- the consultant's instruction for the rewrite
    CHECK (refunded_cents BETWEEN 0 AND amount_cents),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
) STRICT;
INSERT INTO orders (id, customer_id, company, tier, amount_cents, currency, status,
    questionnaire, status_token, attempts, next_attempt_at, lease_owner, lease_expires_at,
    refunded_cents, downloads, last_downloaded_at, disputed_from, last_error, created_at,
    updated_at, paid_at, completed_at, erased_at, score, lease_tried, rescues, method_version)
SELECT id, customer_id, company, tier, amount_cents, currency, status,
    questionnaire, status_token, attempts, next_attempt_at, lease_owner, lease_expires_at,
    refunded_cents, downloads, last_downloaded_at, disputed_from, last_error, created_at,
    updated_at, paid_at, completed_at, erased_at, score, lease_tried, rescues, method_version
FROM orders_v7;
DROP TABLE orders_v7;
PRAGMA legacy_alter_table = OFF;

CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_status_created ON orders (status, created_at);
CREATE INDEX orders_customer_created ON orders (customer_id, created_at);
CREATE INDEX orders_due ON orders (status, next_attempt_at) WHERE status = 'paid';
CREATE INDEX orders_leased ON orders (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX orders_unerased ON orders (created_at) WHERE erased_at IS NULL;
