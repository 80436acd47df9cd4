-- Faster file imports (issue 3): PostgreSQL's 0007 makes (customer_id, id)
-- its primary key, one b-tree fewer. SQLite keeps its indexes: the table is
-- ordered by its rowid (id) and cannot take that key, and customer-wide
-- paging by id still needs addresses_customer. Here to keep the two
-- migration sets numbered alike.
SELECT 1;
