-- Migration 0013: a person's name in pinyin, for the English view
-- Applied in one transaction by `watchpost db migrate`; recorded in schema_migrations.

-- The console and the family page are Chinese; the English view shows the pinyin when the
-- registry gives it, else the name as written.
ALTER TABLE persons ADD COLUMN IF NOT EXISTS name_pinyin text;
