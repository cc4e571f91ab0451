-- A refund row is claimed before Stripe is asked, so that two compass processes (serve right
-- after approving a request, and a process pass) do not both ask. The Idempotency-Key still
-- makes a repeated call harmless; the claim saves the call. A claim that runs out (its
-- process died mid-call) lets the next pass ask again, with the same key.
ALTER TABLE refunds ADD COLUMN claimed_until INTEGER;
