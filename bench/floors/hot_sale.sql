-- The frozen floor of a hot-SKU sale: one unit of one SKU that many tills and orders want at once,
-- written by hand and never recaptured from the application.  The order and its rows go in first;
-- the conditional stock update is taken last, so the hot row is locked only for the commit; a sale
-- that finds the stock gone rolls back.  Variables (pgbench -D): stores, store0, warehouse0,
-- hot_sku, hot_level.
\set k :client_id % :stores
\set store_id :store0 + :k
BEGIN;
INSERT INTO orders_order (number, channel, partner, request_hash, fulfillment, status, customer_name,
    customer_phone, ship_address, subtotal, discount_total, total, paid_total, refunded_total, currency,
    needs_transfer, created_at, updated_at, version, coupon_code, coupon_cost_ecommerce, coupon_cost_store,
    coupon_discount, store_id, client_uuid, paid_at, handed_over_at, ship_postcode, remark, cash_rounding)
  VALUES ('PSH' || nextval('o2o_document_number_seq'), 'pos', '', '', 'in_store', 'completed', '', '', '',
    199.00, 0, 199.00, 199.00, 0, 'CNY', false, now(), now(), 1, '', 0, 0, 0, :store_id, gen_random_uuid(),
    now(), now(), '', '', 0)
  RETURNING id AS order_id, substr(number, 4) AS n \gset
INSERT INTO orders_orderline (order_id, line_no, sku_id, sku_code, name, unit_price, qty, discount, line_total,
    qty_shipped, qty_returned, refunded_amount, warehouse_id, coupon_discount)
  VALUES (:order_id, 1, :hot_sku, 'HOT', 'floor', 199.00, 1, 0, 199.00, 1, 0, 0, :warehouse0, 0);
INSERT INTO payments_payment (number, reference, tender, provider, amount, currency, status, payment_code,
    refunded_amount, refunding_amount, created_at, captured_at, store_id, method)
  VALUES ('PYH' || nextval('o2o_document_number_seq'), 'PSH' || :n, 'cash', '', 199.00, 'CNY', 'captured', '',
          0, 0, now(), now(), :store_id, '');
INSERT INTO inventory_stockmove (level_id, warehouse_id, sku_id, bucket, qty, reason, reference, note, created_at)
  VALUES (:hot_level, :warehouse0, :hot_sku, 'sellable', -1, 'sale', 'PSH' || :n, '', now());
WITH moved AS (
  UPDATE inventory_stocklevel SET on_hand = on_hand - 1 WHERE id = :hot_level AND on_hand - reserved >= 1
    RETURNING id)
SELECT count(*) AS sold FROM moved \gset
\if :sold
COMMIT;
\else
ROLLBACK;
\endif
