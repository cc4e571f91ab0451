-- Operator alerts go through the same outbox as the customers' emails: stored by the change
-- that raised them, sent by `process`, retried, visible in `orders show`. An alert has no
-- customer and must go out once per fact, so `emails` is rebuilt (SQLite cannot drop a NOT
-- NULL in place) with `customer_id` nullable and two columns for alerts.
--
-- The old table is renamed first, so that the new one's `resend_of` refers to itself and the
-- old one can be dropped with foreign keys on: nothing refers to it any more.
ALTER TABLE emails RENAME TO emails_v3;

CREATE TABLE emails (
    id               INTEGER PRIMARY KEY,
    order_id         TEXT REFERENCES orders (id),
    customer_id      INTEGER REFERENCES customers (id), -- NULL for an operator alert only
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,               -- 'operator' for an alert: sent to mail.operator
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
    updated_at       INTEGER NOT NULL,
    link_token       TEXT,
    fact             TEXT,                        -- what an alert is about: one alert per fact
    message          TEXT,                        -- an alert's text, with the command to run
    CHECK ((kind = 'operator_alert') = (fact IS NOT NULL)),
    CHECK ((kind = 'operator_alert') = (customer_id IS NULL)),
    CHECK ((kind = 'operator_alert') = (message IS NOT NULL))
) STRICT;

INSERT INTO emails (id, order_id, customer_id, kind, recipient, resend_of, status, attempts,
                    next_attempt_at, claimed_until, last_error, message_id, sent_at, created_at,
                    updated_at, link_token)
SELECT id, order_id, customer_id, kind, recipient, resend_of, status, attempts, next_attempt_at,
       claimed_until, last_error, message_id, sent_at, created_at, updated_at, link_token
FROM emails_v3 ORDER BY id;

DROP TABLE emails_v3;

-- One email per (order, kind): a redelivered webhook or a retried step cannot queue a second.
CREATE UNIQUE INDEX emails_once ON emails (order_id, kind) WHERE resend_of IS NULL AND fact IS NULL;
CREATE UNIQUE INDEX emails_alert_once ON emails (fact) WHERE fact IS NOT NULL;
CREATE INDEX emails_order ON emails (order_id);
CREATE INDEX emails_customer ON emails (customer_id);
CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status IN ('queued', 'sending');
