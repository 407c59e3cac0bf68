-- A customer's login (a client user), so that erasing a user's personal
-- data erases their customer record with it.
ALTER TABLE customers ADD COLUMN user_id text;
CREATE INDEX customers_user ON customers (user_id);

-- The rows so far have no login: the marketing read model is rebuilt from
-- the log (position 0) when the server starts next.
DELETE FROM campaigns;
DELETE FROM leads;
DELETE FROM contracts;
DELETE FROM customers;
DELETE FROM files;
DELETE FROM campaign_facts;
DELETE FROM read_model_names WHERE consumer = 'marketing';
UPDATE consumer_checkpoints SET position = 0 WHERE name = 'marketing';
