-- A sink's own credential (a webhook's bearer token, later object-storage
-- keys), sealed like the importer's secret but in a slot of its own, so an
-- importer can hold both.
ALTER TABLE importers ADD COLUMN sink_secret_sealed BLOB;
