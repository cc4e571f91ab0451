-- Invoices and credit notes. The terms of an order's sale (seller, buyer, tax) are fixed when it
-- is placed, so the invoice says what the customer was shown. An invoice is numbered in the
-- transaction that confirms the payment, a credit note in the one that records a refund; each
-- kind runs in its own sequence per year with no gaps (the next number is the year's highest
-- plus one, inside an IMMEDIATE transaction, and the pair is unique). A document's PDF is
-- rendered once and kept with its SHA-256; nothing about an issued document changes after, and
-- no document is ever deleted (a legal retention duty, kept even when a customer is forgotten).
CREATE TABLE sale_terms (
    order_id     TEXT PRIMARY KEY REFERENCES orders (id),
    terms        TEXT NOT NULL CHECK (json_valid(terms)), -- invoice::Terms: seller, buyer, sale
    net_cents    INTEGER NOT NULL CHECK (net_cents > 0),
    tax_cents    INTEGER NOT NULL CHECK (tax_cents >= 0),
    tax_rate_bp  INTEGER NOT NULL CHECK (tax_rate_bp BETWEEN 0 AND 9999), -- 1900 = 19 %
    treatment    TEXT NOT NULL CHECK (treatment IN ('taxed', 'reverse_charge'))
) STRICT;

CREATE TABLE invoices (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    year           INTEGER NOT NULL,
    seq            INTEGER NOT NULL CHECK (seq > 0),
    number         TEXT NOT NULL UNIQUE,           -- INV-2026-000123
    order_id       TEXT NOT NULL REFERENCES orders (id),
    refund_number  INTEGER,                        -- a credit note's refund; NULL: made in Stripe
    issued_at      INTEGER NOT NULL,
    currency       TEXT NOT NULL CHECK (length(currency) = 3),
    net_cents      INTEGER NOT NULL CHECK (net_cents >= 0),
    tax_cents      INTEGER NOT NULL CHECK (tax_cents >= 0),
    gross_cents    INTEGER NOT NULL CHECK (gross_cents > 0 AND gross_cents = net_cents + tax_cents),
    pdf            BLOB,
    sha256         TEXT,
    UNIQUE (kind, year, seq),
    CHECK ((pdf IS NULL) = (sha256 IS NULL))
) STRICT;

CREATE UNIQUE INDEX invoices_one_per_order ON invoices (order_id) WHERE kind = 'invoice';
CREATE INDEX invoices_order ON invoices (order_id);
CREATE INDEX invoices_issued ON invoices (issued_at);
CREATE INDEX invoices_unrendered ON invoices (id) WHERE pdf IS NULL;

CREATE TRIGGER invoices_are_kept BEFORE DELETE ON invoices
BEGIN
    SELECT RAISE(ABORT, 'invoices and credit notes are kept');
END;

-- The one change allowed: the PDF, stored once.
CREATE TRIGGER invoices_are_issued_once BEFORE UPDATE ON invoices
WHEN OLD.pdf IS NOT NULL
    OR NEW.kind IS NOT OLD.kind OR NEW.year IS NOT OLD.year OR NEW.seq IS NOT OLD.seq
    OR NEW.number IS NOT OLD.number OR NEW.order_id IS NOT OLD.order_id
    OR NEW.refund_number IS NOT OLD.refund_number OR NEW.issued_at IS NOT OLD.issued_at
    OR NEW.currency IS NOT OLD.currency OR NEW.net_cents IS NOT OLD.net_cents
    OR NEW.tax_cents IS NOT OLD.tax_cents OR NEW.gross_cents IS NOT OLD.gross_cents
BEGIN
    SELECT RAISE(ABORT, 'an issued invoice or credit note never changes');
END;

CREATE TRIGGER sale_terms_are_kept BEFORE DELETE ON sale_terms
BEGIN
    SELECT RAISE(ABORT, 'the terms of a sale are kept with its invoices');
END;
