-- Address keys are ASCII (A-label form, lower case: D-15) and only ever
-- compared for equality, but under the database's default collation (often
-- C.UTF-8 or en_US) every b-tree comparison on them went through strcoll.
-- Byte order is the same order for ASCII and costs a memcmp: some 7 % of the
-- backend's CPU in a file import (issue 3). Suppressions too, since a task's
-- queueing compares the two columns. The indexes on them are rebuilt; the
-- tables are not rewritten.
ALTER TABLE addresses ALTER COLUMN address_key TYPE TEXT COLLATE "C";
ALTER TABLE suppressions ALTER COLUMN address_key TYPE TEXT COLLATE "C";
