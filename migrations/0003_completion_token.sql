-- node-hookd migration 0003: remember which claim completed a delivery.
--
-- * completed_claim_token: the fencing token of the claim whose completion was last applied.
--   Completing clears claim_token, so when the answer to a completion is lost (the connection
--   drops after COMMIT) the writer's retry no longer matches claim_token and would be told its
--   claim was lost; the delivery's success would then never be reported. A retry presenting the
--   token stored here is recognised as the write that already happened.

ALTER TABLE {{prefix}}_hookd_deliveries ADD COLUMN completed_claim_token text;
