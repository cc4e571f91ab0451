-- An attempt counts when a process run asks for the report, not when it claims the order: a
-- run killed while the order waited for a worker used no attempt. The lease records whether its
-- run started the attempt; leases that ran out before that are counted apart (rescues), so a
-- run that dies at every start still ends the order.
ALTER TABLE orders ADD COLUMN lease_tried INTEGER NOT NULL DEFAULT 0 CHECK (lease_tried IN (0, 1));
ALTER TABLE orders ADD COLUMN rescues INTEGER NOT NULL DEFAULT 0 CHECK (rescues >= 0);

-- Leases held while upgrading were counted at their claim, as before: keep them counted.
UPDATE orders SET lease_tried = 1 WHERE lease_owner IS NOT NULL;
