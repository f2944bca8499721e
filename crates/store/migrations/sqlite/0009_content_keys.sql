-- ZIP passwords (per sender pattern) and the S/MIME key (PKCS#12 and its
-- password), sealed together in a slot of their own: they are the
-- importer's content keys, apart from the mailbox secret and the sink's.
ALTER TABLE importers ADD COLUMN content_keys_sealed BLOB;
