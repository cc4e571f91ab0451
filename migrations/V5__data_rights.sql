-- Customers' data rights: forgetting a customer must be able to redact what the timeline
-- recorded of them (a refund request's reason is their own words). Nothing else about a
-- timeline row may ever change, and a changed detail must say it was redacted.
DROP TRIGGER order_events_no_update;

CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
WHEN NEW.id IS NOT OLD.id OR NEW.order_id IS NOT OLD.order_id OR NEW.at IS NOT OLD.at
    OR NEW.kind IS NOT OLD.kind OR NEW.from_status IS NOT OLD.from_status
    OR NEW.to_status IS NOT OLD.to_status OR NEW.actor IS NOT OLD.actor
    OR json_extract(NEW.detail, '$.redacted') IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'order_events is append-only: only a redaction may change a detail');
END;

-- When an order's answers and report were erased (forgotten, or past retention).
ALTER TABLE orders ADD COLUMN erased_at INTEGER;

-- A delivered report's overall score (0-100), kept beside the order so that its page does
-- not read the report; NULL when no report was written or no pillar could be scored.
ALTER TABLE orders ADD COLUMN score INTEGER;
UPDATE orders SET score = (SELECT json_extract(CAST(a.content AS TEXT), '$.scores.overall')
                           FROM artifacts a WHERE a.order_id = orders.id AND a.kind = 'json');

-- What the retention purge looks at on every `process` pass.
CREATE INDEX orders_unerased ON orders (created_at) WHERE erased_at IS NULL;
