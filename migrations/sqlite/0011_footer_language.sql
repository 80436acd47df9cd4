-- The language of the unsubscribe footer (and of the unsubscribe page's
-- first view): 'auto' follows the template's language; a task's setting
-- other than 'auto' wins over its customer's.
ALTER TABLE customers ADD COLUMN footer_language TEXT NOT NULL DEFAULT 'auto'
    CHECK (footer_language IN ('auto', 'zh', 'en', 'both'));
ALTER TABLE tasks ADD COLUMN footer_language TEXT NOT NULL DEFAULT 'auto'
    CHECK (footer_language IN ('auto', 'zh', 'en', 'both'));
