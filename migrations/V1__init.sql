-- The whole product's schema. Times are Unix seconds (UTC); money is in the currency's smallest
-- unit. Released migrations are never edited: add V2__... instead.

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,          -- normalised: trimmed, lower case
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE orders (
    id                    TEXT PRIMARY KEY,    -- UUID v7: sortable, never reused after a restore
    customer_id           INTEGER NOT NULL REFERENCES customers (id),
    company               TEXT NOT NULL,
    tier                  TEXT NOT NULL CHECK (tier IN ('starter', 'standard', 'premium')),
    amount_cents          INTEGER NOT NULL CHECK (amount_cents > 0),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    status                TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'generating',
                              'completed', 'failed', 'refund_requested', 'refunding', 'refunded',
                              'expired', 'disputed')),
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
    CHECK (refunded_cents BETWEEN 0 AND amount_cents),
    CHECK ((lease_owner IS NULL) = (lease_expires_at IS NULL))
) STRICT;

CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_status_created ON orders (status, created_at);
CREATE INDEX orders_customer_created ON orders (customer_id, created_at);
CREATE INDEX orders_due ON orders (status, next_attempt_at) WHERE status = 'paid';
CREATE INDEX orders_leased ON orders (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

CREATE TABLE payments (
    id                  INTEGER PRIMARY KEY,
    order_id            TEXT NOT NULL REFERENCES orders (id),
    payment_intent_id   TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL,        -- Stripe's PaymentIntent status, as last read
    amount_cents        INTEGER NOT NULL,
    currency            TEXT NOT NULL,
    charge_id           TEXT,
    last_error          TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_charge ON payments (charge_id) WHERE charge_id IS NOT NULL;

CREATE TABLE refunds (
    id                TEXT PRIMARY KEY,       -- UUID v7
    order_id          TEXT NOT NULL REFERENCES orders (id),
    number            INTEGER NOT NULL CHECK (number > 0), -- 1, 2, ... within the order
    stripe_refund_id  TEXT UNIQUE,
    idempotency_key   TEXT NOT NULL UNIQUE,   -- compass-refund-{order_id}-{number}
    amount_cents      INTEGER NOT NULL CHECK (amount_cents > 0),
    currency          TEXT NOT NULL,
    source            TEXT NOT NULL CHECK (source IN ('customer', 'operator', 'automatic', 'stripe')),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'canceled')),
    reason            TEXT NOT NULL DEFAULT '',
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (order_id, number)
) STRICT;

CREATE INDEX refunds_pending ON refunds (created_at) WHERE status = 'pending';

CREATE TABLE stripe_events (
    id               TEXT PRIMARY KEY,        -- Stripe's event id: a redelivery is a no-op
    type             TEXT NOT NULL,
    payload          TEXT NOT NULL,           -- the raw body, as signed
    object_id        TEXT,                    -- the PaymentIntent, charge, refund or dispute
    order_id         TEXT,                    -- no foreign key: the order may not be here yet
    stripe_created   INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    handled_at       INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    last_error       TEXT
) STRICT;

CREATE INDEX stripe_events_unhandled ON stripe_events (next_attempt_at) WHERE handled_at IS NULL;
CREATE INDEX stripe_events_order ON stripe_events (order_id);
CREATE INDEX stripe_events_object ON stripe_events (object_id, type);

CREATE TABLE emails (
    id               INTEGER PRIMARY KEY,
    order_id         TEXT REFERENCES orders (id),
    customer_id      INTEGER NOT NULL REFERENCES customers (id),
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    resend_of        INTEGER REFERENCES emails (id), -- set on a deliberate resend
    status           TEXT NOT NULL DEFAULT 'queued'
                         CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    claimed_until    INTEGER,
    last_error       TEXT,
    message_id       TEXT,
    sent_at          INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- One email per (order, kind): a redelivered webhook or a retried step cannot queue a second.
CREATE UNIQUE INDEX emails_once ON emails (order_id, kind) WHERE resend_of IS NULL;
CREATE INDEX emails_order ON emails (order_id);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status IN ('queued', 'sending');

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    kind        TEXT NOT NULL CHECK (kind IN ('html', 'pdf', 'json')),
    content     BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (order_id, kind)
) STRICT;

CREATE TABLE llm_calls (
    id                     INTEGER PRIMARY KEY,
    order_id               TEXT REFERENCES orders (id),
    model                  TEXT NOT NULL,
    request_id             TEXT,
    outcome                TEXT NOT NULL,     -- ok, retryable, permanent
    http_status            INTEGER,
    input_tokens           INTEGER NOT NULL DEFAULT 0,
    output_tokens          INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_micros            INTEGER NOT NULL DEFAULT 0, -- millionths of the billing currency
    duration_ms            INTEGER NOT NULL,
    error                  TEXT,
    created_at             INTEGER NOT NULL
) STRICT;

CREATE INDEX llm_calls_order ON llm_calls (order_id);

CREATE TABLE order_events (
    id           INTEGER PRIMARY KEY,
    order_id     TEXT NOT NULL REFERENCES orders (id),
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    from_status  TEXT,                        -- NULL for the event that created the order
    to_status    TEXT NOT NULL,
    actor        TEXT NOT NULL,               -- web, stripe, process, operator
    detail       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
) STRICT;

CREATE INDEX order_events_order ON order_events (order_id, id);

CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;

CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only');
END;

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    order_id  TEXT,
    detail    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
) STRICT;

CREATE INDEX audit_log_order ON audit_log (order_id);
CREATE INDEX audit_log_at ON audit_log (at);
