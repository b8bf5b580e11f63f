-- bench/explain_indexes.py: 20,000 orders and what they write, by plain SQL (psql -f), on a migrated database.
INSERT INTO order_view (order_id, version, status, buyer_id, supplier_id, currency, total, next_timer_at,
  dispute_status, dispute_opened_at, client_reference, metadata, state, created_at, updated_at)
SELECT 'ord_' || lpad(g::text, 8, '0'), 8,
  (ARRAY['placed','accepted','partially_paid','held','shipped','delivered','completed','completed','completed','settled','cancelled','disputed','refunded'])[1 + g % 13],
  'buyer_' || (g % 200), 'supp_' || (g % 50), 'USD', 10000 + g,
  CASE WHEN g % 13 < 6 THEN now() + ((g % 1000) || ' minutes')::interval - interval '200 minutes' END,
  CASE WHEN g % 13 = 11 THEN (ARRAY['open','escalated','resolved'])[1 + g % 3] END,
  CASE WHEN g % 13 = 11 THEN now() - (g || ' seconds')::interval END,
  CASE WHEN g % 2 = 0 THEN 'ref-' || g END,
  CASE WHEN g % 2 = 0 THEN jsonb_build_object('po', 'PO-' || (g % 5000), 'team', 't' || (g % 7)) END,
  jsonb_build_object('id', 'ord_' || g, 'pad', repeat('x', 900)),
  now() - ((20000 - g) || ' minutes')::interval, now()
FROM generate_series(1, 20000) g;

INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at, transaction_id)
SELECT 'ord_' || lpad(o::text, 8, '0'), v, gen_random_uuid(),
  (ARRAY['order.placed','order.accepted','payment.received','order.shipped','order.delivered','receipt.confirmed','funds.released','payout.paid'])[v],
  1, jsonb_build_object('pad', repeat('y', 200)), '{}'::jsonb, now(),
  ((o - 1) * 8 + v + 1000)::text::xid8
FROM generate_series(1, 20000) o, generate_series(1, 8) v
ORDER BY o, v;

INSERT INTO party_balances (party_id, currency, order_id, position, held, released, refunded, fees)
SELECT CASE WHEN s = 0 THEN 'buyer_' || (g % 200) ELSE 'supp_' || (g % 50) END, 'USD',
  'ord_' || lpad(g::text, 8, '0'), g * 8, 100, 50, 0, 1
FROM generate_series(1, 20000) g, generate_series(0, 1) s;

INSERT INTO money_out (id, kind, order_id, party_id, currency, amount, status, created_at, updated_at)
SELECT CASE WHEN g % 3 = 0 THEN 're_' ELSE 'po_' END || g, CASE WHEN g % 3 = 0 THEN 'refund' ELSE 'payout' END,
  'ord_' || lpad(g::text, 8, '0'), CASE WHEN g % 3 = 0 THEN 'buyer_' || (g % 200) ELSE 'supp_' || (g % 50) END,
  'USD', 100, (ARRAY['pending','paid','failed'])[1 + g % 3], now() - ((20000 - g) || ' minutes')::interval, now()
FROM generate_series(1, 20000, 2) g;

INSERT INTO ledger_postings (transfer_id, order_id, event_id, at, account, currency, amount, phase, pending_id, legacy)
SELECT 'tr_' || g || '_' || k, 'ord_' || lpad(g::text, 8, '0'), 'ev', now() - ((20000 - g) || ' minutes')::interval,
  (ARRAY['buyer:buyer_' || (g % 200) || ':paid', 'escrow:USD:held', 'supplier:supp_' || (g % 50) || ':available'])[k],
  'USD', 100, 'posted', NULL, false
FROM generate_series(1, 20000) g, generate_series(1, 3) k;
VACUUM ANALYZE;
