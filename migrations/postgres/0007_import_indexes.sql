-- Faster file imports (issue 3).
--
-- Every query on addresses names the customer, so the primary key can be
-- (customer_id, id) and serve customer-wide paging too: one b-tree fewer to
-- update on every insert. Ids still come from the identity column.
ALTER TABLE addresses DROP CONSTRAINT addresses_pkey, ADD PRIMARY KEY (customer_id, id);
DROP INDEX addresses_customer;

-- Stored file chunks are 1 MiB of mostly text: pglz compressing them on
-- upload and decompressing them on every read cost more than the disk they
-- save. New chunks are kept as they are.
ALTER TABLE file_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
