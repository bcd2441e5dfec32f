-- The frozen floor of a POS sale: the least PostgreSQL work a 5-line counter sale with a member,
-- points earned (frozen) and two tenders (cash + card) can be, written by hand against the schema
-- and never recaptured from the application, so it does not move when the application does.
--
--   the order inserted once in its final state; its lines, payments and stock moves as multi-row
--   inserts; the points lot, entry and balance in one statement; the order event and one outbox row
--   in one statement; one set-based conditional stock update for all lines, taken last.
--
-- 7 statements between BEGIN and COMMIT.  Variables come from the bench fixture (pgbench -D):
-- stores, blocks, skus, store0, warehouse0, level0, sku0, member0, members.  Each client sells at
-- its own store from its own block of SKUs to its own member, as the load generator does.
\set k :client_id % :stores
\set blk (:client_id % :blocks) * 5
\set store_id :store0 + :k
\set warehouse_id :warehouse0 + :k
\set member_id :member0 + (:client_id % :members)
\set s0 :sku0 + :blk
\set s1 :sku0 + :blk + 1
\set s2 :sku0 + :blk + 2
\set s3 :sku0 + :blk + 3
\set s4 :sku0 + :blk + 4
\set l0 :level0 + :k * :skus + :blk
\set l1 :level0 + :k * :skus + :blk + 1
\set l2 :level0 + :k * :skus + :blk + 2
\set l3 :level0 + :k * :skus + :blk + 3
\set l4 :level0 + :k * :skus + :blk + 4
BEGIN;
INSERT INTO orders_order (number, channel, partner, request_hash, fulfillment, status, customer_name,
    customer_phone, ship_address, subtotal, discount_total, total, paid_total, refunded_total, currency,
    needs_transfer, created_at, updated_at, version, coupon_code, coupon_cost_ecommerce, coupon_cost_store,
    coupon_discount, store_id, member_id, client_uuid, paid_at, handed_over_at, ship_postcode, remark, cash_rounding)
  VALUES ('PSF' || nextval('o2o_document_number_seq'), 'pos', '', '', 'in_store', 'completed', '', '', '',
    249.50, 0, 249.50, 249.50, 0, 'CNY', false, now(), now(), 1, '', 0, 0, 0, :store_id, :member_id,
    gen_random_uuid(), now(), now(), '', '', 0)
  RETURNING id AS order_id, substr(number, 4) AS n \gset
INSERT INTO orders_orderline (order_id, line_no, sku_id, sku_code, name, unit_price, qty, discount, line_total,
    qty_shipped, qty_returned, refunded_amount, warehouse_id, coupon_discount)
  VALUES (:order_id, 1, :s0, 'S', 'floor', 49.90, 1, 0, 49.90, 1, 0, 0, :warehouse_id, 0),
         (:order_id, 2, :s1, 'S', 'floor', 49.90, 1, 0, 49.90, 1, 0, 0, :warehouse_id, 0),
         (:order_id, 3, :s2, 'S', 'floor', 49.90, 1, 0, 49.90, 1, 0, 0, :warehouse_id, 0),
         (:order_id, 4, :s3, 'S', 'floor', 49.90, 1, 0, 49.90, 1, 0, 0, :warehouse_id, 0),
         (:order_id, 5, :s4, 'S', 'floor', 49.90, 1, 0, 49.90, 1, 0, 0, :warehouse_id, 0);
INSERT INTO payments_payment (number, reference, tender, provider, amount, currency, status, payment_code,
    refunded_amount, refunding_amount, created_at, captured_at, store_id, member_id, method)
  VALUES ('PYF' || nextval('o2o_document_number_seq'), 'PSF' || :n, 'cash', '', 200.00, 'CNY', 'captured', '',
          0, 0, now(), now(), :store_id, :member_id, ''),
         ('PYF' || nextval('o2o_document_number_seq'), 'PSF' || :n, 'unionpay_card', '', 49.50, 'CNY', 'captured',
          '', 0, 0, now(), now(), :store_id, :member_id, '');
INSERT INTO inventory_stockmove (level_id, warehouse_id, sku_id, bucket, qty, reason, reference, note, created_at)
  VALUES (:l0, :warehouse_id, :s0, 'sellable', -1, 'sale', 'PSF' || :n, '', now()),
         (:l1, :warehouse_id, :s1, 'sellable', -1, 'sale', 'PSF' || :n, '', now()),
         (:l2, :warehouse_id, :s2, 'sellable', -1, 'sale', 'PSF' || :n, '', now()),
         (:l3, :warehouse_id, :s3, 'sellable', -1, 'sale', 'PSF' || :n, '', now()),
         (:l4, :warehouse_id, :s4, 'sellable', -1, 'sale', 'PSF' || :n, '', now());
WITH lot AS (
  INSERT INTO members_pointslot (member_id, kind, status, order_number, channel, amount, remaining, frozen_until,
      expires_at, paid_amount, returned_amount, reversed_points, detail, created_at, store_id)
    VALUES (:member_id, 'earned', 'frozen', 'PSF' || :n, 'pos', 249, 249, now() + interval '7 days',
            now() + interval '1 year', 249.50, 0, 0, '{}', now(), :store_id)
    RETURNING id),
entry AS (
  INSERT INTO members_pointsentry (member_id, lot_id, kind, available_delta, frozen_delta, debt_delta, written_off,
      order_number, reference, reason, created_at)
    SELECT :member_id, lot.id, 'earn', 0, 249, 0, 0, 'PSF' || :n, '', '', now() FROM lot)
UPDATE members_member SET points_frozen = points_frozen + 249 WHERE id = :member_id;
WITH event AS (
  INSERT INTO orders_orderevent (order_id, kind, from_status, to_status, reason, data, created_at)
    VALUES (:order_id, 'status', '', 'completed', '', '{}', now()))
INSERT INTO o2o_outboxmessage (topic, key, payload, created_at, available_at, attempts, last_error)
  VALUES ('order.paid', 'order:PSF' || :n, '{}', now(), now(), 0, '');
UPDATE inventory_stocklevel SET on_hand = on_hand - 1
  WHERE id IN (:l0, :l1, :l2, :l3, :l4) AND on_hand - reserved >= 1;
COMMIT;
